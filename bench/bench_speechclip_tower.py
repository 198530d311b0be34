"""Which frozen speech tower SpeechCLIP's embedded default can afford: the real cost of encoding short spoken captions
(the scenes benchmark's, ≈ 2 s) with every hidden layer kept (the weighted layer sum needs them), and what caching
those layers would take on disk.

    python bench/bench_speechclip_tower.py [--captions 32] [--threads 2]

Baseline: OpenAI Whisper tiny.en's encoder (the main job's speech tower), which pads every input to 30 s; against it
the package's CTC tower, which runs on the recording's own length. One process, the same waveforms, median of
repeats; prints the ratio and absolute figures.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from transformers import AutoFeatureExtractor

from modeling_speechct.towers import encode_frames, load_tower
from modeling_speechct.training.teacher import speech_tower_path


def waveforms(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Speech-like noise of 1.5–2.5 s (the scenes' captions last that long): the cost does not depend on content."""
    return [(0.1 * rng.standard_normal(int(rng.uniform(1.5, 2.5) * 16000))).astype(np.float32) for _ in range(count)]


def tower(name: str):
    path = speech_tower_path(name)
    model = load_tower(path).eval()  # the task head dropped on purpose, without a load report
    model = model.get_encoder() if model.config.is_encoder_decoder else model
    return model, AutoFeatureExtractor.from_pretrained(path)


@torch.no_grad()
def encode(model, extractor, waves: list[np.ndarray]) -> tuple[float, int]:
    """Seconds to encode `waves` in batches of 8 with every hidden layer, and the floats those layers hold."""
    floats = 0
    padding = "max_length" if hasattr(extractor, "n_samples") else "longest"  # Whisper takes 30 s windows only
    start = time.perf_counter()
    for i in range(0, len(waves), 8):
        batch = extractor(waves[i : i + 8], sampling_rate=16000, return_tensors="pt", padding=padding,
                          return_attention_mask=True)  # fmt: skip
        values = batch.get("input_features", batch.get("input_values"))
        _, frames, outputs = encode_frames(model, values, batch["attention_mask"], all_layers=True)
        floats += int(frames.sum()) * len(outputs.hidden_states) * outputs.hidden_states[0].shape[-1]
    return time.perf_counter() - start, floats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    waves = waveforms(args.captions, np.random.default_rng(0))
    audio = sum(len(w) for w in waves) / 16000
    results = {}
    for name in ("whisper-tiny.en", "shipped"):
        model, extractor = tower(name)
        encode(model, extractor, waves[:8])  # warm-up
        runs = [encode(model, extractor, waves) for _ in range(args.repeats)]
        results[name] = (statistics.median(t for t, _ in runs), runs[0][1])
    base = results["whisper-tiny.en"][0]
    print(f"{args.captions} captions, {audio:.0f} s of audio, {args.threads} threads")
    print("| tower | s per caption | audio s per s | speed vs Whisper tiny.en | all-layer cache per caption (fp16) |")
    print("|---|---|---|---|---|")
    for name, (seconds, floats) in results.items():
        print(f"| {name} | {seconds / args.captions:.3f} | {audio / seconds:.1f} | {base / seconds:.1f}× | "
              f"{floats * 2 / args.captions / 1e6:.2f} MB |")  # fmt: skip


if __name__ == "__main__":
    main()
