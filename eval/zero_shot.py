"""Zero-shot classification of CT volumes with prompt pairs, written (text tower) or spoken (speech tower).

    python eval/zero_shot.py --model outputs/benchmark/distilled/final --modality speech
    python eval/zero_shot.py --model outputs/benchmark/teacher/final --modality text --split test --val_split valid
    python eval/zero_shot.py ... --labels "Cardiomegaly,Pleural effusion" --templates "{label} seen." "No {label}."
    python eval/zero_shot.py ... --prompts report_sentences    # the training reports' own sentences as prompts

Writes to --output_dir: `zero_shot.json` (every number: per label and means, CT-CLIP's protocol and the standard
one, the AUROC's bootstrap interval, the model, data, command, and `provenance`: the model's revision, a hash of
the split tables, the package version), `zero_shot.md` (the table), `zero_shot_scores.csv` (one row per volume:
label, P(present), truth — enough to recompute every metric) and `roc_curves.png` (one ROC panel per label).
Metrics are computed by the package's `evaluate` modules (`modeling_speechct.evaluation.metric_modules`, loaded
offline); files are written atomically.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
import torch

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.data.report_prompts import add_prompt_arguments, training_report_prompts
from modeling_speechct.evaluation.metric_modules import load_metric
from modeling_speechct.evaluation.plots import plot_roc_curves
from modeling_speechct.evaluation.split import ct_embeddings, prompt_embeddings
from modeling_speechct.files.provenance import evaluation_provenance, jsonable, write_json_atomic, write_text_atomic
from modeling_speechct.labels import CT_RATE_LABELS
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
    add_prompt_arguments(parser, default="template")  # 'template' reads --templates
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
        ensembles = None
        if args.prompts == "report_sentences":
            ensembles = training_report_prompts(args.data_dir, labels, args.prompt_sentences, args.seed)
        prompts = prompt_embeddings(
            model,
            processor,
            args.modality,
            labels,
            tuple(args.templates),
            out / ("spoken_prompts" if ensembles is None else "spoken_prompts_report_sentences"),
            args.num_voices,
            prompts=ensembles,
        )
    splits = [args.split] + ([args.val_split] if args.val_split else [])
    rows, probs, truth = {}, {}, {}
    for split in splits:
        rows[split] = list(load_ct_rate(args.data_dir, split, require_speech=False))
        ct = ct_embeddings(model, processor, rows[split], args.cache_dir)
        probs[split] = pair_probabilities(ct, *prompts, scale).numpy()
        truth[split] = np.array([r["labels"] for r in rows[split]])[:, columns]

    y, p = truth[args.split], probs[args.split]
    # Every number comes from our evaluate modules (loaded from the package, offline), which call metrics.py.
    auroc = load_metric("multilabel_auroc").compute(
        predictions=p, references=y, label_names=labels, n_resamples=args.n_resamples, seed=args.seed
    )
    result = {
        "model": str(args.model),
        "data": {"data_dir": args.data_dir, "split": args.split, "val_split": args.val_split, "volumes": len(y)},
        "modality": args.modality,
        "templates": args.templates,
        "prompts": args.prompts if ensembles is None else {"source": args.prompts, "pairs": ensembles},
        "labels": labels,
        "command": " ".join(sys.argv),
        "auroc": {
            "per_label": jsonable(auroc["per_label"]),  # undefined → null (JSON has no NaN)
            "mean": auroc["mean"],
            "ci95": jsonable(list(auroc.get("ci", [float("nan")] * 2))),
            "excluded": auroc["excluded_labels"],
            "bootstrap_dropped": auroc.get("bootstrap_dropped", 0),
        },
        "ctclip_protocol": jsonable(load_metric("ctclip_zero_shot").compute(predictions=p, references=y)),
    }
    if auroc["excluded"]:
        result["auroc"]["note"] = "labels without positives (or negatives) have no AUROC and are left out of the mean"
    if args.val_split:
        split_column = [args.val_split] * len(truth[args.val_split]) + [args.split] * len(y)
        standard = load_metric("threshold_transfer").compute(
            predictions=np.concatenate([probs[args.val_split], p]),
            references=np.concatenate([truth[args.val_split], y]),
            split=split_column,
            validation_split=args.val_split,
            test_split=args.split,
        )
        result["standard_protocol"] = jsonable(standard)
    result["provenance"] = evaluation_provenance(args.model, args.data_dir, splits)
    write_json_atomic(out / "zero_shot.json", result)
    scores = io.StringIO(newline="")
    writer = csv.writer(scores)
    writer.writerow(["VolumeName", "label", "p_present", "truth"])
    for i, row in enumerate(rows[args.split]):
        for j, label in enumerate(labels):
            writer.writerow([row["volume_name"], label, f"{p[i, j]:.6f}", int(y[i, j])])
    write_text_atomic(out / "zero_shot_scores.csv", scores.getvalue())
    plot_roc_curves(y, p, labels, out / "roc_curves.png")
    table = _markdown(result, labels)
    write_text_atomic(out / "zero_shot.md", table)
    print(table)
    print(f"written to {out}")


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
    lines.append(f"| **mean** | **{fmt(result['auroc']['mean'])}** [{fmt(low)}, {fmt(high)}] | "
                 f"{fmt(result['ctclip_protocol']['mean']['f1_weighted'])} | "
                 f"{fmt(result.get('standard_protocol', {}).get('mean', {}).get('f1'))} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
