"""Publish a SpeechCT-CLIP folder to the Hugging Face Hub: model, processor, remote code, pipelines, card, results.

    python model_cards/publish.py --model outputs/benchmark/distilled/final --output_dir outputs/hub/distilled \\
        --repo_id my-org/speechct-clip-benchmark --dry-run           # write the folder only, exactly as uploaded
    python model_cards/publish.py --model outputs/benchmark/distilled/final --repo_id my-org/speechct-clip-benchmark

Evaluation JSON next to the model is picked up (`<model>/eval/zero_shot.json`, `<model>/eval/retrieval.json`, and a
benchmark run's `results.json` for `<run>/<teacher|naive|distilled>/final`); give more with --results. Without
--dry-run the Hub access is checked first (offline mode, token, network: a clear message and exit status 1, nothing
written), then the folder is uploaded in one commit. The folder is assembled in a temporary sibling and renamed into
place, so an interrupted run leaves no partial folder. The logic is `modeling_speechct.hub.publish`.
"""

from __future__ import annotations

import argparse
import sys

from modeling_speechct.hub.publish import PublishError, publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved SpeechCT-CLIP folder (model + processor)")
    parser.add_argument("--repo_id", default=None, help="Hub repository, org/name (required unless --dry-run)")
    parser.add_argument("--output_dir", default=None, help="where the folder is written (required with --dry-run)")
    parser.add_argument("--results", nargs="*", default=[], help="evaluation JSON files (zero_shot, retrieval, …)")
    parser.add_argument("--no_discover", action="store_true", help="do not add the JSON files found next to --model")
    parser.add_argument("--results_entry", default=None, help="this model's name in a run_benchmark results.json")
    parser.add_argument("--dataset", choices=("ct-rate", "benchmark"), default=None, help="when data_dir is unclear")
    parser.add_argument("--title", default="SpeechCT-CLIP")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true", help="write, do not upload")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output_dir")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--commit_message", default=None)
    args = parser.parse_args(argv)
    try:
        folder = publish(
            args.model,
            args.repo_id,
            args.output_dir,
            args.results,
            dry_run=args.dry_run,
            private=args.private,
            commit_message=args.commit_message,
            title=args.title,
            benchmark_entry=args.results_entry,
            dataset=args.dataset,
            discover=not args.no_discover,
            overwrite=args.overwrite,
        )
    except (PublishError, FileNotFoundError, ValueError) as err:
        print(f"publish: {err}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(f"dry run: the folder that would be uploaded is {folder}")
    else:
        print(f"uploaded to https://huggingface.co/{args.repo_id}" + (f" (folder kept in {folder})" if folder else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
