"""Voice robustness in one command: the held-out TTS engine (Piper) against the training voices.

    python eval/voice_robustness.py --model outputs/benchmark/distilled/final --data_dir data/benchmark \\
        --split test --num_reports 40 --output_dir outputs/voice_robustness

Speaks the first --num_reports reports of --split by Piper (and uses the benchmark's own training-voice wavs, plus
a second training voice), then measures speech → text and speech → CT retrieval, spoken-prompt zero-shot AUROC,
cross-voice cosines and the demo's top-5 figure for both, with their ratios held-out / training and bootstrap
intervals (see `modeling_speechct.evaluation.voice_robustness`). Writes voice_robustness.json, .md and
_embeddings.npz to --output_dir (atomically) and caches the speech there: a rerun reuses it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from modeling_speechct.data.report_prompts import add_prompt_arguments
from modeling_speechct.evaluation.voice_robustness import RobustnessConfig, run_voice_robustness
from modeling_speechct.evaluation.voice_robustness_report import markdown


def main(argv: list[str] | None = None) -> dict:
    defaults = RobustnessConfig(model=Path(), data_dir=Path(), output_dir=Path())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a SpeechCT-CLIP folder (model + processor)")
    parser.add_argument("--data_dir", type=Path, default=Path("data/benchmark"))
    parser.add_argument("--split", default=defaults.split)
    parser.add_argument("--num_reports", type=int, default=defaults.num_reports)
    parser.add_argument("--demo_reports", type=int, default=defaults.demo_reports, help="gallery size of the demo")
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/voice_robustness"))
    parser.add_argument("--cache_dir", type=Path, default=Path("outputs/cache"), help="embedding caches")
    parser.add_argument("--training_engines", default=",".join(defaults.training_engines))
    parser.add_argument("--prompt_voices", type=int, default=defaults.prompt_voices)
    add_prompt_arguments(parser, default=defaults.prompts)
    parser.add_argument("--n_resamples", type=int, default=defaults.n_resamples)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    config = RobustnessConfig(
        model=args.model,
        data_dir=args.data_dir,
        output_dir=args.output_dir,
        split=args.split,
        num_reports=args.num_reports,
        demo_reports=args.demo_reports,
        cache_dir=args.cache_dir,
        training_engines=tuple(e for e in args.training_engines.split(",") if e),
        prompt_voices=args.prompt_voices,
        prompts=args.prompts,
        prompt_sentences=args.prompt_sentences,
        n_resamples=args.n_resamples,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
    )
    command = shlex.join(["python", "eval/voice_robustness.py", *(argv if argv is not None else sys.argv[1:])])
    try:
        record = run_voice_robustness(config, command=command)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"voice_robustness: {err}") from err
    print("\n" + markdown(record))
    print(f"written to {args.output_dir}")
    return record


if __name__ == "__main__":
    main()
