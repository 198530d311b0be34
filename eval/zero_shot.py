"""Zero-shot classification of CT volumes with prompt pairs, written (text tower) or spoken (speech tower).

    python eval/zero_shot.py --model outputs/benchmark/distilled/final --modality speech
    python eval/zero_shot.py --model outputs/benchmark/teacher/final --modality text --split test --val_split valid
    python eval/zero_shot.py ... --labels "Cardiomegaly,Pleural effusion" --templates "{label} seen." "No {label}."

Writes to --output_dir: `zero_shot.json` (every number: per label and means, CT-CLIP's protocol and the standard
one, the AUROC's bootstrap interval, the model, data, command), `zero_shot.md` (the table) and
`zero_shot_scores.csv` (one row per volume: label, P(present), truth — enough to recompute every metric).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.ctrate import load_ct_rate
from modeling_speechct.evaluation import ct_embeddings, prompt_embeddings
from modeling_speechct.labels import CT_RATE_LABELS
from modeling_speechct.metrics import auroc_per_label, bootstrap_ci, ctclip_protocol, mean_defined, standard_protocol
from modeling_speechct.zero_shot import DEFAULT_TEMPLATES, pair_probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a SpeechCT-CLIP folder (model + processor)")
    parser.add_argument("--data_dir", default="data/benchmark")
    parser.add_argument("--cache_dir", default="outputs/cache")
    parser.add_argument("--split", default="test")
    parser.add_argument("--val_split", default="valid", help="thresholds of the standard protocol ('' to skip)")
    parser.add_argument("--modality", choices=("text", "speech"), default="text")
    parser.add_argument("--labels", default=None, help="comma-separated labels (default: CT-RATE's 18)")
    parser.add_argument("--templates", nargs=2, default=list(DEFAULT_TEMPLATES))
    parser.add_argument("--num_voices", type=int, default=4)
    parser.add_argument("--n_resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default=None, help="default: <model>/eval")
    args = parser.parse_args()

    labels = args.labels.split(",") if args.labels else list(CT_RATE_LABELS)
    unknown = [label for label in labels if label not in CT_RATE_LABELS]
    if unknown:
        raise SystemExit(f"--labels: {unknown} are not CT-RATE labels (known: {', '.join(CT_RATE_LABELS)})")
    columns = [CT_RATE_LABELS.index(label) for label in labels]
    out = Path(args.output_dir or Path(args.model) / "eval")
    out.mkdir(parents=True, exist_ok=True)
    model = SpeechCTClipModel.from_pretrained(args.model).eval()
    processor = SpeechCTClipProcessor.from_pretrained(args.model)
    scale = (model.logit_scale if args.modality == "text" else model.speech_logit_scale).exp().item()
    with torch.no_grad():
        prompts = prompt_embeddings(
            model, processor, args.modality, labels, tuple(args.templates), out / "spoken_prompts", args.num_voices
        )
    splits = [args.split] + ([args.val_split] if args.val_split else [])
    rows, probs, truth = {}, {}, {}
    for split in splits:
        rows[split] = list(load_ct_rate(args.data_dir, split, require_speech=False))
        ct = ct_embeddings(model, processor, rows[split], args.cache_dir)
        probs[split] = pair_probabilities(ct, *prompts, scale).numpy()
        truth[split] = np.array([r["labels"] for r in rows[split]])[:, columns]

    y, p = truth[args.split], probs[args.split]
    auroc = auroc_per_label(y, p)
    mean_auroc, excluded = mean_defined(auroc)
    ci = bootstrap_ci(lambda a, b: mean_defined(auroc_per_label(a, b))[0], y, p, n_resamples=args.n_resamples,
                      seed=args.seed)  # fmt: skip
    result = {
        "model": str(args.model),
        "data": {"data_dir": args.data_dir, "split": args.split, "val_split": args.val_split, "volumes": len(y)},
        "modality": args.modality,
        "templates": args.templates,
        "labels": labels,
        "command": " ".join(sys.argv),
        "auroc": {
            "per_label": auroc.tolist(),
            "mean": mean_auroc,
            "ci95": [ci.low, ci.high],
            "excluded": [labels[i] for i in excluded],
            "bootstrap_dropped": ci.n_dropped,
        },
        "ctclip_protocol": _jsonable(ctclip_protocol(y, p)),
    }
    if excluded:
        result["auroc"]["note"] = "labels without positives (or negatives) have no AUROC and are left out of the mean"
    if args.val_split:
        result["standard_protocol"] = _jsonable(standard_protocol(truth[args.val_split], probs[args.val_split], y, p))
    (out / "zero_shot.json").write_text(json.dumps(result, indent=1))
    with open(out / "zero_shot_scores.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["VolumeName", "label", "p_present", "truth"])
        for i, row in enumerate(rows[args.split]):
            for j, label in enumerate(labels):
                writer.writerow([row["volume_name"], label, f"{p[i, j]:.6f}", int(y[i, j])])
    table = _markdown(result, labels)
    (out / "zero_shot.md").write_text(table)
    print(table)
    print(f"written to {out}")


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [None if np.isnan(x) else float(x) for x in value.ravel()]
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _markdown(result: dict, labels: list[str]) -> str:
    ctclip = result["ctclip_protocol"]["per_label"]
    std = result.get("standard_protocol", {}).get("per_label", {})
    lines = ["| label | AUROC | F1 (CT-CLIP weighted) | F1 (val threshold) |", "|---|---|---|---|"]

    def fmt(x):
        return "undefined" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"

    for j, label in enumerate(labels):
        f1 = std.get("f1", [None] * len(labels))[j]
        lines.append(
            f"| {label} | {fmt(result['auroc']['per_label'][j])} | {fmt(ctclip['f1_weighted'][j])} | {fmt(f1)} |"
        )
    low, high = result["auroc"]["ci95"]
    lines.append(f"| **mean** | **{result['auroc']['mean']:.3f}** [{low:.3f}, {high:.3f}] | "
                 f"{fmt(result['ctclip_protocol']['mean']['f1_weighted'])} | "
                 f"{fmt(result.get('standard_protocol', {}).get('mean', {}).get('f1'))} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
