"""Speed of filling the speech-prefix cache (the frozen speech tower over every spoken report), the main job's
largest fixed cost: windows cut to their real length in length-sorted groups, against encoding every window padded
to the full 30 s (the baseline, measured in the same process on the same recordings).

    python bench/bench_speech_prefix.py [--data_dir data/benchmark] [--reports 48] [--threads 2]

Uses the benchmark's spoken reports (built if --data_dir is missing) and the shipped speech tower, frozen whole
(`speech_trainable_layers=0`, the CPU default). Prints seconds of audio per second and the ratio, and the largest
difference between the two paths' pooled embeddings.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from unittest import mock

import soundfile as sf
import torch

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark
from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.training.teacher import build_teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="data/benchmark")
    parser.add_argument("--reports", type=int, default=48)
    parser.add_argument("--batch_size", type=int, default=8, help="reports per call, as the cache batches them")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (Path(args.data_dir) / "dataset").is_dir():
        build_benchmark(BuildConfig(out=Path(args.data_dir), num_volumes=max(args.reports * 2, 20)))
    rows = list(load_ct_rate(args.data_dir, "train"))[: args.reports]
    files = sorted((r["speech"] for r in rows), key=lambda f: Path(f).stat().st_size)  # as the cache orders them
    seconds = sum(sf.info(f).duration for f in files)

    # The teacher folder carries the shipped speech tower frozen whole: exactly what the students' cache encodes.
    model, processor = build_teacher("benchmark", "minilm", "projection", 512, 256)
    model.eval()
    batches = [processor(audio=files[i : i + args.batch_size]) for i in range(0, len(files), args.batch_size)]

    def run() -> tuple[float, list[torch.Tensor]]:
        start = time.perf_counter()
        with torch.no_grad():
            prefixes = [model.get_speech_prefix(b["speech_values"], b.get("speech_attention_mask")) for b in batches]
        elapsed = time.perf_counter() - start
        with torch.no_grad():
            pooled = [model.get_speech_features_from_prefix(p) for p in prefixes]
        return elapsed, pooled

    run()  # warm-up
    with mock.patch.object(SpeechCTClipModel, "_padding_is_inert", lambda self: False):
        padded, reference = run()
    trimmed, pooled = run()
    diff = max(float((a - b).abs().max()) for a, b in zip(pooled, reference, strict=True))
    print(f"{len(files)} reports, {seconds:.0f} s of speech, batches of {args.batch_size}, {args.threads} threads")
    print(f"padded windows (baseline): {seconds / padded:.1f} audio-s/s ({padded:.1f} s)")
    print(f"trimmed, grouped by length: {seconds / trimmed:.1f} audio-s/s ({trimmed:.1f} s)")
    print(f"speed-up: {padded / trimmed:.2f}×; largest embedding difference {diff:.1e}")


if __name__ == "__main__":
    main()
