"""Build the embedded benchmark in the CT-RATE + Speech-RATE layout (no download).

    python processing/build_benchmark.py --out data/benchmark --num-volumes 1500

Re-running with the same arguments skips what is already built (an interrupted build resumes). The speech's
provenance (engine, voice, rate, pitch per wav) goes to dataset/speech_manifest.csv.

    python processing/build_benchmark.py --out data/benchmark --num-volumes 1000 --manifest-only

writes that manifest for a benchmark built before builds wrote one (same arguments as its build), from its tables
and seeded speech plan, after re-speaking a sample of wavs to check the plan reproduces them byte for byte.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark, rebuild_speech_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="layout root (gets dataset/…)")
    parser.add_argument("--num-volumes", type=int, default=BuildConfig.num_volumes)
    parser.add_argument("--valid-fraction", type=float, default=BuildConfig.valid_fraction)
    parser.add_argument("--test-fraction", type=float, default=BuildConfig.test_fraction)
    parser.add_argument("--shape", type=int, nargs=3, default=BuildConfig.shape, metavar=("S", "L", "P"))
    parser.add_argument("--seed", type=int, default=BuildConfig.seed)
    parser.add_argument("--workers", type=int, default=BuildConfig.workers)
    parser.add_argument(
        "--tts-backends", default=",".join(BuildConfig.tts_backends), help="comma list: espeak, flite, kokoro"
    )
    parser.add_argument("--no-speech", action="store_true", help="volumes, reports and labels only")
    parser.add_argument(
        "--extra-train-voices",
        type=int,
        default=BuildConfig.extra_train_voices,
        help="extra recordings of each training report, each in another seeded voice (<stem>_findings_voice<k>.wav)",
    )
    parser.add_argument(
        "--manifest-only", action="store_true", help="only write the speech manifest of an existing build"
    )
    args = parser.parse_args()

    config = BuildConfig(
        out=args.out,
        num_volumes=args.num_volumes,
        valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction,
        shape=tuple(args.shape),
        seed=args.seed,
        workers=args.workers,
        tts_backends=tuple(b for b in args.tts_backends.split(",") if b),
        speech=not args.no_speech,
        extra_train_voices=args.extra_train_voices,
    )
    if args.manifest_only:
        print(f"speech manifest written to {rebuild_speech_manifest(config)}")
        return
    stats = build_benchmark(config)
    print(json.dumps(stats, indent=1, default=str))


if __name__ == "__main__":
    main()
