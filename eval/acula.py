"""AcuLa's evaluation: linear probes of frozen audio towers on an AcuLa manifest's tasks, before vs after alignment.

    python eval/acula.py --models before=modeling_speechct/pretrained/spectrogram-mae \\
        both=outputs/acula/both/final --compare both:before --output_dir outputs/acula/evaluation
    python eval/acula.py --data_dir /data/icbhi --models opera=... acula=... --compare acula:opera

Each model is an AcuLa folder (its tower is probed) or a bare audio-tower folder (a spectrogram MAE: the unaligned
"before" row). Per task, over the recordings where its label is known: embeddings standardised on train, an L2
logistic regression fitted on a stratified 0.8 of train per seed (5 seeds), C chosen on validation, AUROC on test
(mean ± std over seeds), then the mean over tasks and over the acoustics-only and metadata-dependent tasks.
`--compare a:b` adds a − b with a paired 95 % interval over seeds and a patient bootstrap of the test split;
aligned models also get test audio ↔ report R@k. Writes acula_eval.json and acula_eval.md to --output_dir.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transformers.utils import logging as hf_logging

from modeling_speechct.evaluation.acula_eval import acula_markdown, evaluate_acula
from modeling_speechct.evaluation.linear_probe import DEFAULT_C_GRID, DEFAULT_SEEDS, DEFAULT_TRAIN_FRACTION
from modeling_speechct.files.provenance import write_json_atomic, write_text_atomic


def pairs(values: list[str], what: str, separator: str) -> list[tuple[str, str]]:
    """`name=path` or `a:b` arguments as pairs; a malformed one stops with its flag and value."""
    out = []
    for value in values:
        fields = value.split(separator, 1)
        if len(fields) != 2 or not all(fields):
            raise SystemExit(f"{what} {value!r}: expected two names joined by {separator!r}")
        out.append((fields[0], fields[1]))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="name=folder (AcuLa or audio-tower folder)")
    parser.add_argument("--data_dir", default="data/auscultation")
    parser.add_argument("--compare", nargs="*", default=[], help="a:b → a − b with a paired interval")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--train_fraction", type=float, default=DEFAULT_TRAIN_FRACTION)
    parser.add_argument("--c_grid", type=float, nargs="+", default=list(DEFAULT_C_GRID))
    parser.add_argument("--n_resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's draws")
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/acula/evaluation"))
    parser.add_argument("--no_progress", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="write the files, do not print the table (a caller does)")
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    models = dict(pairs(args.models, "--models", "="))
    compare = pairs(args.compare, "--compare", ":")
    record = evaluate_acula(models, args.data_dir, compare, seeds=args.seeds, train_fraction=args.train_fraction,
                            c_grid=args.c_grid, n_resamples=args.n_resamples, seed=args.seed,
                            progress=not args.no_progress)  # fmt: skip
    record["command"] = " ".join(["python", "eval/acula.py", *(argv if argv is not None else sys.argv[1:])])
    markdown = acula_markdown(record)
    write_json_atomic(args.output_dir / "acula_eval.json", record)
    write_text_atomic(args.output_dir / "acula_eval.md", markdown)
    if not args.quiet:
        print("\n" + markdown)
    return record


if __name__ == "__main__":
    main()
