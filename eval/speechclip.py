"""Evaluate saved SpeechCLIP / SpeechCLIP+ models on one split, with 95 % intervals and paired differences.

    python eval/speechclip.py --models parallel=outputs/speechclip/parallel/final \\
        hybrid=outputs/speechclip/hybrid/final --data_dir data/scenes_benchmark --split test \\
        --compare "hybrid:parallel:parallel speech→image R@10" --ratio "parallel:parallel speech→image R@10"

Every figure per model and branch: speech ↔ image R@1/5/10 both ways, zero-shot speech ↔ text R@1/5/10 against
CLIP's text embeddings of the transcripts, and the keyword hit rate (top-1, top-5) of the cascaded path; and CLIP's
own written caption ↔ image R@k on the same images (the bar). Intervals and paired differences resample images
(`modeling_speechct/evaluation/speechclip_eval.py` says why). --compare A:B:FIGURE (or A:B:FIGURE_A|FIGURE_B) gives
A − B with its paired interval; --ratio MODEL:FIGURE gives FIGURE over CLIP's text counterpart. Writes
speechclip_eval.json (every figure, the command, provenance) and speechclip_eval.md to --output_dir.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transformers.utils import logging as hf_logging

from modeling_speechct.data.flickr8k import flickr8k_revision
from modeling_speechct.evaluation.speechclip_report import report, score_model
from modeling_speechct.files.provenance import evaluation_provenance, write_json_atomic, write_text_atomic


def named(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{value!r}: expected NAME=MODEL_FOLDER")
    return name, path


def triple(value: str) -> tuple[str, str, str]:
    parts = value.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"{value!r}: expected MODEL_A:MODEL_B:FIGURE")
    return parts[0], parts[1], parts[2]


def pair(value: str) -> tuple[str, str]:
    name, sep, figure = value.partition(":")
    if not sep or not name or not figure:
        raise argparse.ArgumentTypeError(f"{value!r}: expected MODEL:FIGURE")
    return name, figure


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=named, required=True, help="NAME=MODEL_FOLDER ...")
    parser.add_argument("--data_dir", default="data/scenes_benchmark")
    parser.add_argument("--split", default="test")
    parser.add_argument("--cache_dir", default="outputs/cache")
    parser.add_argument("--compare", nargs="*", type=triple, default=[])
    parser.add_argument("--ratio", nargs="*", type=pair, default=[])
    parser.add_argument("--n_resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/speechclip_eval")
    args = parser.parse_args(argv)
    names = [n for n, _ in args.models]
    if len(set(names)) != len(names):
        parser.error(f"--models: each name once, got {names}")
    for name in [a for a, b, _ in args.compare] + [b for _, b, _ in args.compare] + [n for n, _ in args.ratio]:
        if name not in names:
            parser.error(f"--compare / --ratio name {name!r} is not one of --models {names}")
    return args


def main(argv: list[str] | None = None) -> dict:
    hf_logging.disable_progress_bar()
    args = parse(argv)
    counts, clip = {}, None
    for name, path in args.models:
        print(f"[{name}] scoring {path} on {args.data_dir} ({args.split})", flush=True)
        counts[name], model_clip = score_model(path, args.data_dir, args.split, args.cache_dir)
        clip = clip if clip is not None else model_clip
        if any((model_clip[f][0] != clip[f][0]).any() for f in set(clip) & set(model_clip)):
            raise SystemExit(f"[{name}] has another CLIP than {args.models[0][0]}: evaluate them apart.")
        clip = {**model_clip, **clip}  # a cascaded model adds the no-speech keyword guess
    record = report(counts, clip, args.compare, args.ratio, args.n_resamples, args.seed)
    record["command"] = " ".join(["python", "eval/speechclip.py", *(sys.argv[1:] if argv is None else argv)])
    data = flickr8k_revision(args.data_dir, [args.split])
    record["provenance"] = {n: evaluation_provenance(p, args.data_dir, [args.split], data) for n, p in args.models}
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "speechclip_eval.json", {k: v for k, v in record.items() if k != "markdown"})
    write_text_atomic(out / "speechclip_eval.md", record["markdown"])
    print(record["markdown"])
    return record


if __name__ == "__main__":
    main()
