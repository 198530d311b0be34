"""Is model A better than model B? Paired bootstrap of the difference on the same test volumes.

    python eval/zero_shot.py --model A --modality speech --output_dir outputs/eval/a   (and retrieval.py, same dir)
    python eval/zero_shot.py --model B --modality speech --output_dir outputs/eval/b
    python eval/paired_bootstrap.py outputs/eval/a outputs/eval/b --names distilled naive --output_dir outputs/eval/ab

Reads each folder's `zero_shot_scores.csv` (and `retrieval_ranks.csv` when both have one), aligns the two by
volume name and label — row order may differ, but the volume sets, labels and truths must be identical, or it
stops and says what differs — and writes `paired.json` and `paired.md`: mean AUROC, CT-CLIP weighted F1 and
Recall@k of A, of B, and A − B with a 95 % interval from resamples that draw the same volumes for both
(`modeling_speechct.evaluation.paired_comparison`). Files are written atomically.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from modeling_speechct.evaluation.paired_comparison import DEFAULT_KS, compare_models, difference_table
from modeling_speechct.files.provenance import write_json_atomic, write_text_atomic


def read_scores(folder: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(volume names sorted, labels in file order, truth (N, L), P(present) (N, L)) from `zero_shot_scores.csv`."""
    path = folder / "zero_shot_scores.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing — run eval/zero_shot.py with --output_dir {folder} first")
    cells: dict[tuple[str, str], tuple[float, int]] = {}
    labels: list[str] = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                key, value = (row["VolumeName"], row["label"]), (float(row["p_present"]), int(row["truth"]))
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{path}, line {line}: not a zero_shot_scores row ({error})") from None
            if key in cells:
                raise ValueError(f"{path}, line {line}: {key} appears twice")
            cells[key] = value
            if key[1] not in labels:
                labels.append(key[1])
    names = sorted({name for name, _ in cells})
    missing = [(n, lab) for n in names for lab in labels if (n, lab) not in cells]
    if missing:
        raise ValueError(f"{path}: {len(missing)} (volume, label) cells missing, e.g. {missing[0]}")
    truth = np.array([[cells[n, lab][1] for lab in labels] for n in names])
    probs = np.array([[cells[n, lab][0] for lab in labels] for n in names])
    return names, labels, truth, probs


def read_ranks(folder: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    """{direction: (N,) ranks in the order of `names`} from `retrieval_ranks.csv`, or None when there is none."""
    path = folder / "retrieval_ranks.csv"
    if not path.is_file():
        return None
    by_direction: dict[str, dict[str, int]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            by_direction.setdefault(row["direction"], {})[row["VolumeName"]] = int(row["rank"])
    out = {}
    for direction, ranks in by_direction.items():
        if set(ranks) != set(names):
            raise ValueError(f"{path}: {direction} ranks cover other volumes than zero_shot_scores.csv")
        out[direction] = np.array([ranks[n] for n in names])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="evaluation folder of model A")
    parser.add_argument("b", type=Path, help="evaluation folder of model B")
    parser.add_argument("--names", nargs=2, default=["A", "B"], metavar=("NAME_A", "NAME_B"))
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--n_resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    names_a, labels_a, truth_a, probs_a = read_scores(args.a)
    names_b, labels_b, truth_b, probs_b = read_scores(args.b)
    if names_a != names_b:
        only = sorted(set(names_a) ^ set(names_b))
        raise SystemExit(f"{args.a} and {args.b} scored different volumes ({len(only)} differ, e.g. {only[:3]})")
    if labels_a != labels_b:
        order = [labels_b.index(lab) for lab in labels_a] if sorted(labels_a) == sorted(labels_b) else None
        if order is None:
            raise SystemExit(f"{args.a} and {args.b} scored different labels: {labels_a} vs {labels_b}")
        truth_b, probs_b = truth_b[:, order], probs_b[:, order]
    if not np.array_equal(truth_a, truth_b):
        raise SystemExit(f"{args.a} and {args.b} disagree on the ground truth: not the same split or data")
    ranks_a, ranks_b = read_ranks(args.a, names_a), read_ranks(args.b, names_b)
    if ranks_a is not None and ranks_b is not None:
        shared = sorted(set(ranks_a) & set(ranks_b))
        ranks_a, ranks_b = {d: ranks_a[d] for d in shared}, {d: ranks_b[d] for d in shared}
    else:
        ranks_a = ranks_b = None
    comparison = compare_models(
        truth_a, probs_a, probs_b, ranks_a, ranks_b, ks=DEFAULT_KS, n_resamples=args.n_resamples, seed=args.seed
    )
    record = {
        "a": str(args.a), "b": str(args.b), "names": args.names, "volumes": len(names_a), "labels": labels_a,
        "n_resamples": args.n_resamples, "seed": args.seed, "command": " ".join(sys.argv), "paired": comparison,
    }  # fmt: skip
    table = difference_table(comparison, *args.names)
    write_json_atomic(args.output_dir / "paired.json", record)
    write_text_atomic(args.output_dir / "paired.md", table + "\n")
    print(table)
    print(f"{len(names_a)} volumes, {args.n_resamples} paired resamples; written to {args.output_dir}")


if __name__ == "__main__":
    main()
