"""What a SpeechCLIP training step costs on a CPU at each frame stride, from cached frozen layers (the main job's
step: layer weights, branch layer, projections, and for the cascaded path CLIP's frozen text encoder).

    python bench/bench_speechclip_step.py [--batch 64] [--frames 290] [--threads 2]

Baseline: `frame_stride=1` (the papers' 50 frames a second), measured in the same process on the same tensors;
against it strides 2 and 4. A batch of the scenes' spoken captions holds ≈ 290 padded frames of the shipped CTC
tower (7 hidden states, 192 wide). Median of repeats of forward + backward + optimiser step; prints ratios and
absolute times. Then what LoRA on the tower costs (`--lora_r`): the tower runs on the audio every step instead of
its cached layers, against the cached step at stride 4 (the main job's), both measured here.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from modeling_speechct import SpeechClipModel
from modeling_speechct.training.lora import add_speech_lora
from modeling_speechct.training.scenes_clip import SHIPPED_SCENES_CLIP
from modeling_speechct.training.teacher import speech_tower_path


def step_seconds(model: SpeechClipModel, batch: dict[str, torch.Tensor], repeats: int) -> float:
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    times = []
    for _ in range(repeats + 1):  # the first step warms allocators up and is dropped
        start = time.perf_counter()
        model(**batch, return_loss=True).loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=290)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    speech = speech_tower_path("shipped")
    g = torch.Generator().manual_seed(0)
    for mode in ("parallel", "hybrid_plus"):
        results = {}
        for stride in (1, 2, 4):
            torch.manual_seed(0)
            config = {"mode": mode, "frame_stride": stride, "cif_max_tokens": 30}  # what scenes-CLIP's 32 positions fit
            model = SpeechClipModel.from_tower_pretrained(speech=speech, clip=str(SHIPPED_SCENES_CLIP),
                                                          config_kwargs=config)  # fmt: skip
            width, layers = model.config.speech_config.hidden_size, model.config.speech_config.num_hidden_layers + 1
            lengths = torch.randint(args.frames // 2, args.frames + 1, (args.batch,), generator=g)
            lengths[0] = args.frames
            batch = {
                "speech_layers": torch.randn(args.batch, layers, args.frames, width, generator=g),
                "speech_frame_mask": torch.arange(args.frames)[None, :] < lengths[:, None],
                "image_embeds": torch.randn(args.batch, model.config.clip_config.projection_dim, generator=g),
                "item_ids": torch.arange(args.batch),
                "cif_target_lengths": torch.full((args.batch,), 8),
            }
            results[stride] = step_seconds(model, batch, args.repeats)
        base = results[1]
        print(f"{mode}: " + ", ".join(f"stride {s} {base / t:.1f}× ({t:.2f} s a step)" for s, t in results.items())
              + f"  [batch {args.batch}, {args.frames} frames, {args.threads} threads]")  # fmt: skip
    lora_cost(speech, args, g)


def lora_cost(speech: str, args: argparse.Namespace, g: torch.Generator) -> None:
    """Parallel, stride 4: cached layers (LoRA off) against audio through the tower with LoRA r = 8."""
    torch.manual_seed(0)
    config = {"mode": "parallel", "frame_stride": 4}
    model = SpeechClipModel.from_tower_pretrained(speech=speech, clip=str(SHIPPED_SCENES_CLIP), config_kwargs=config)
    samples = args.frames * 320  # the tower's 20 ms frames at 16 kHz
    audio = 0.1 * torch.randn(args.batch, samples, generator=g)
    mask = torch.ones(args.batch, samples, dtype=torch.long)
    layers, frames = model.encode_speech_layers(audio, mask)
    common = {"image_embeds": torch.randn(args.batch, model.config.clip_config.projection_dim, generator=g),
              "item_ids": torch.arange(args.batch)}  # fmt: skip
    cached = step_seconds(model, {"speech_layers": layers, "speech_frame_mask": frames, **common}, args.repeats)
    model = add_speech_lora(model, r=8, alpha=16, dropout=0.0)
    adapted = step_seconds(model, {"speech_values": audio, "speech_attention_mask": mask, **common}, args.repeats)
    print(f"parallel, stride 4: LoRA r=8 on audio {adapted / cached:.1f}× the cached step "
          f"({adapted:.2f} s against {cached:.2f} s a step)")  # fmt: skip


if __name__ == "__main__":
    main()
