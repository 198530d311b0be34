"""Distillation step throughput (samples/s): frozen-tower outputs cached vs recomputed, bf16 autocast on vs off.

The embedded default's student (benchmark CT-ViT + MiniLM teacher, the shipped speech tower with its top layer,
attention pooling and projection trainable) on inputs of the benchmark's sizes: 24 × 48 × 48 volumes, 37 s of
speech (the built reports' mean), 200-token reports. "Recomputed" runs every tower every step (the speech tower
whole, its frozen part without gradients); "cached" reads CT and text embeddings and the frozen speech layers'
output, as `train/distill.py` does. One process, alternating repeats; prints ratios and absolute figures.

    python bench/bench_distill.py [--batch-size 8] [--repeats 3] [--steps 3]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from modeling_speechct.training.teacher import build_student, build_teacher


def make_inputs(model, processor, batch: int, seconds: float, tokens: int) -> tuple[dict, dict]:
    generator = torch.Generator().manual_seed(0)
    shape = processor.ct_feature_extractor.target_shape
    raw = {
        "ct_values": torch.rand(batch, 1, *shape, generator=generator) * 2 - 1,
        "speech_values": 0.1 * torch.randn(batch, int(seconds * 16000), generator=generator),
        "input_ids": torch.randint(1000, 20000, (batch, tokens), generator=generator),
        "attention_mask": torch.ones(batch, tokens, dtype=torch.long),
    }
    with torch.no_grad():
        cached = {
            "speech_prefix": model.get_speech_prefix(raw["speech_values"]),
            "ct_embeds": model.get_ct_features(raw["ct_values"]).pooler_output,
            "text_embeds": model.get_text_features(raw["input_ids"], raw["attention_mask"]).pooler_output,
        }
    return raw, cached


def samples_per_second(model, inputs: dict, batch: int, steps: int, bf16: bool) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    start = time.perf_counter()
    for _ in range(steps):
        with autocast:
            loss = model(**inputs, return_loss=True).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=37.0)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--teacher", default=None, help="a teacher folder (default: a fresh benchmark teacher)")
    args = parser.parse_args()
    torch.manual_seed(0)
    teacher = args.teacher
    if teacher is None:
        import tempfile

        teacher = tempfile.mkdtemp()
        model, processor = build_teacher("benchmark", "minilm", "projection", 512, 256)
        model.save_pretrained(teacher)
        processor.save_pretrained(teacher)
    model, processor = build_student(teacher, "shipped", 1, "attention", 1.0)
    raw, cached = make_inputs(model, processor, args.batch_size, args.seconds, args.tokens)
    runs = {(name, bf16): [] for name in ("recomputed", "cached") for bf16 in (False, True)}
    for _ in range(args.repeats):
        for name, bf16 in runs:
            inputs = raw if name == "recomputed" else cached
            runs[name, bf16].append(samples_per_second(model, inputs, args.batch_size, args.steps, bf16))
    best = {k: max(v) for k, v in runs.items()}
    print(f"distillation step, batch {args.batch_size}, {args.seconds:.0f} s speech, best of {args.repeats}:")
    for (name, bf16), value in best.items():
        print(f"  {name:<10} bf16={'on ' if bf16 else 'off'}  {value:8.2f} samples/s")
    print(f"cache speed-up: {best['cached', False] / best['recomputed', False]:.1f}x (fp32), "
          f"{best['cached', True] / best['recomputed', True]:.1f}x (bf16)")  # fmt: skip
    print(f"bf16 autocast / fp32: cached {best['cached', True] / best['cached', False]:.2f}x, "
          f"recomputed {best['recomputed', True] / best['recomputed', False]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
