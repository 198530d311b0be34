"""Benchmark build throughput and the embedding cache's effect on a distillation epoch.

1. Build: `build_benchmark` on N volumes (fresh folder): volumes per second (generation + NIfTI writing, process
   pool) and seconds of speech synthesised per wall second (TTS thread pool).
2. Distillation epoch over the built train split with a small model: the student's loss with the frozen CT and
   text towers recomputed every step (baseline) against their embeddings read from `EmbeddingCache` (filled
   beforehand, as a real run fills it once). Same batches, same model, one process; prints the ratio.

    python bench/bench_build.py [--num-volumes 120] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertTokenizerFast, WhisperFeatureExtractor

from modeling_speechct import CTFeatureExtractor, SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.data import ctrate
from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark
from modeling_speechct.training.embedding_cache import EmbeddingCache
from modeling_speechct.training.tiny import tiny_ct_config, tiny_speech_config, tiny_speechct_config

TEACHERS = {
    # CT tower at the benchmark's 48 × 96 × 96 grid: a small one, and one with CT-CLIP's width and depth.
    "small": dict(patch_size=16, tubelet_size=8, hidden_size=64, head_dim=16, intermediate_size=128,
                  num_spatial_layers=2, num_temporal_layers=2),
    "ctclip-width": dict(patch_size=8, tubelet_size=4, hidden_size=512, num_attention_heads=8, head_dim=32,
                         intermediate_size=1365, num_spatial_layers=4, num_temporal_layers=4),
}  # fmt: skip


def bench_model_and_processor(root: Path, teacher: str) -> tuple[SpeechCTClipModel, SpeechCTClipProcessor]:
    """A CT teacher of the chosen size, a 2-layer BERT text teacher, a tiny Whisper-like student (30 s windows)."""
    words = {w.strip(".,").lower() for r in ctrate.load_ct_rate(root, "train")["findings"] for w in r.split()}
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(w for w in words if w)]))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    ct = tiny_ct_config(image_size=96, num_slices=48, **TEACHERS[teacher])
    text = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    speech = tiny_speech_config("whisper", max_source_positions=1500)  # 30 s windows, as Whisper
    config = tiny_speechct_config(ct_config=ct, text_config=text, speech_config=speech)
    processor = SpeechCTClipProcessor(
        CTFeatureExtractor(target_spacing=(6.0, 4.0, 4.0), target_shape=(48, 96, 96)),
        WhisperFeatureExtractor(feature_size=16),
        tokenizer,
    )
    return SpeechCTClipModel(config), processor


def epoch(model, processor, rows, batch_size, caches=None) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    start = time.perf_counter()
    for i in range(0, len(rows), batch_size):
        part = rows[i : i + batch_size]
        if caches is None:
            batch = processor(ct=[r["volume"] for r in part], audio=[r["speech"] for r in part],
                              text=[r["findings"] for r in part], ct_kwargs={"is_hu": True})  # fmt: skip
        else:
            batch = dict(processor(audio=[r["speech"] for r in part]))
            batch["ct_embeds"] = caches["ct"]([r["volume"] for r in part])
            batch["text_embeds"] = caches["text"]([r["findings"] for r in part])
        loss = model(**batch, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-volumes", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--teachers", default=",".join(TEACHERS), help="comma list of " + ", ".join(TEACHERS))
    args = parser.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        stats = build_benchmark(
            BuildConfig(out=root, num_volumes=args.num_volumes, workers=args.workers), progress=False
        )
        speech = stats["speech"]
        print(f"build: {stats['volumes']} volumes in {stats['volume_seconds']:.1f} s = "
              f"{stats['volumes'] / stats['volume_seconds']:.1f} volumes/s; speech: {speech['seconds_of_audio']:.0f} s "
              f"of audio in {speech['wall_seconds']:.1f} s = {speech['seconds_of_audio'] / speech['wall_seconds']:.0f} "
              "s of speech per s")  # fmt: skip

        rows = list(ctrate.load_ct_rate(root, "train"))
        print(f"distillation epoch over {len(rows)} train volumes, batch {args.batch_size}, student = tiny Whisper:")
        for teacher in args.teachers.split(","):
            torch.manual_seed(0)
            model, processor = bench_model_and_processor(root, teacher)
            caches = {t: EmbeddingCache(Path(tmp) / "cache", model, processor, t) for t in ("ct", "text")}
            fill_start = time.perf_counter()
            caches["ct"]([r["volume"] for r in rows])
            caches["text"]([r["findings"] for r in rows])
            fill = time.perf_counter() - fill_start
            recompute = epoch(model, processor, rows, args.batch_size)
            cached = epoch(model, processor, rows, args.batch_size, caches)
            print(
                f"  CT teacher {teacher:<13} recomputing frozen towers {recompute:6.2f} s | cached {cached:6.2f} s "
                f"| speed-up {recompute / cached:4.1f}x (cache filled once in {fill:.2f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
