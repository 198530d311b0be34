"""Linear probe of a frozen tower (AcuLa's protocol): logistic regression per label on train, AUROC on test, 5 seeds.

    python eval/linear_probe.py --model outputs/benchmark/distilled/final --tower speech
    python eval/linear_probe.py --model outputs/benchmark/teacher/final --tower ct --val_split ''   # fixed C
    python eval/linear_probe.py --embeddings train=tr.npz valid=va.npz test=te.npz --output_dir out/probe
    python eval/linear_probe.py --embeddings train=tr.safetensors test=te.safetensors --task multiclass

With --model, embeddings of the chosen tower (CT volumes, written findings or spoken findings) are computed over
--data_dir's splits with the evaluation caches and probed on CT-RATE's 18 labels (or --labels). With --embeddings,
any `.npz` / `.safetensors` files with keys `embeddings` (rows, dim) and `labels` are probed: (rows, labels) 0/1
for the multi-label task, one integer column for --task multiclass (multinomial probe, macro one-vs-rest AUROC).

Protocol (details in `modeling_speechct/linear_probe.py`): features standardised on train only; each seed fits on
a stratified random --train_fraction of train; C chosen per label on the validation split from --c_grid (or fixed
--default_c without one); labels with one class in train or test are undefined and excluded, with a note.
Writes `linear_probe.json` (every number, the protocol, seeds, C, command) and `linear_probe.md` to --output_dir.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import sklearn

from modeling_speechct.evaluation.linear_probe import (
    DEFAULT_C,
    DEFAULT_C_GRID,
    DEFAULT_MAX_ITER,
    DEFAULT_SEEDS,
    DEFAULT_TRAIN_FRACTION,
    TASKS,
    check_split,
    linear_probe,
    load_embedding_file,
    probe_markdown,
)
from modeling_speechct.files.provenance import jsonable, write_text_atomic

SPLIT_KEYS = ("train", "valid", "test")


def model_embeddings(args: argparse.Namespace) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str], dict]:
    """{split: (embeddings, labels)} of one tower of a SpeechCT-CLIP folder over a CT-RATE-layout data folder."""
    import torch

    from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
    from modeling_speechct.data.ctrate import load_ct_rate
    from modeling_speechct.evaluation.split import ct_embeddings, speech_embeddings, text_embeddings
    from modeling_speechct.labels import CT_RATE_LABELS

    labels = args.labels.split(",") if args.labels else list(CT_RATE_LABELS)
    unknown = [label for label in labels if label not in CT_RATE_LABELS]
    if unknown:
        raise SystemExit(f"--labels: {unknown} are not CT-RATE labels (known: {', '.join(CT_RATE_LABELS)})")
    columns = [CT_RATE_LABELS.index(label) for label in labels]
    model = SpeechCTClipModel.from_pretrained(args.model).eval()
    processor = SpeechCTClipProcessor.from_pretrained(args.model)
    encode = {"ct": ct_embeddings, "text": text_embeddings, "speech": speech_embeddings}[args.tower]
    splits = {"train": args.train_split, "valid": args.val_split, "test": args.test_split}
    data, sources = {}, {}
    for key, split in splits.items():
        if not split:
            continue
        rows = list(load_ct_rate(args.data_dir, split, require_speech=args.tower == "speech"))
        with torch.no_grad():
            embeds = encode(model, processor, rows, args.cache_dir).float().numpy()
        data[key] = (embeds, np.array([r["labels"] for r in rows])[:, columns])
        sources[key] = f"{args.data_dir} split {split}"
    return data, labels, sources


def file_embeddings(specs: list[str], task: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """{split: (embeddings, labels)} from SPLIT=PATH specs, each file checked under its own name."""
    data, sources = {}, {}
    for spec in specs:
        key, sep, path = spec.partition("=")
        if not sep or key not in SPLIT_KEYS or not path:
            raise SystemExit(f"--embeddings: {spec!r} is not SPLIT=PATH with SPLIT one of {SPLIT_KEYS}")
        if key in data:
            raise SystemExit(f"--embeddings: split {key!r} given twice")
        data[key] = check_split(*load_embedding_file(path), name=path, task=task)
        sources[key] = path
    missing = [key for key in ("train", "test") if key not in data]
    if missing:
        raise SystemExit(f"--embeddings: missing {missing} (train and test are required, valid is optional)")
    return data, sources


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a SpeechCT-CLIP folder (model + processor)")
    source.add_argument("--embeddings", nargs="+", metavar="SPLIT=PATH", help="train=… [valid=…] test=… files")
    parser.add_argument("--tower", choices=("ct", "text", "speech"), default="ct", help="with --model")
    parser.add_argument("--data_dir", default="data/benchmark")
    parser.add_argument("--cache_dir", default="outputs/cache")
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--val_split", default="valid", help="chooses C ('' to use --default_c)")
    parser.add_argument("--test_split", default="test")
    parser.add_argument("--labels", default=None, help="comma-separated CT-RATE labels (with --model; default: 18)")
    parser.add_argument("--task", choices=TASKS, default="multilabel")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--train_fraction", type=float, default=DEFAULT_TRAIN_FRACTION)
    parser.add_argument("--c_grid", type=float, nargs="+", default=list(DEFAULT_C_GRID))
    parser.add_argument("--default_c", type=float, default=DEFAULT_C)
    parser.add_argument("--max_iter", type=int, default=DEFAULT_MAX_ITER)
    parser.add_argument("--output_dir", default=None, help="default: <model>/eval, or beside the test embeddings")
    args = parser.parse_args(argv)

    try:
        if args.model:
            data, names, sources = model_embeddings(args)
        else:
            data, sources = file_embeddings(args.embeddings, args.task)
            names = None
        result = linear_probe(
            (data["train"][0], data["train"][1]),
            (data["test"][0], data["test"][1]),
            data.get("valid"),
            task=args.task,
            seeds=args.seeds,
            train_fraction=args.train_fraction,
            c_grid=args.c_grid,
            default_c=args.default_c,
            label_names=names,
            max_iter=args.max_iter,
        )
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"linear_probe: {err}") from err
    if args.output_dir:
        out = Path(args.output_dir)
    elif args.model:
        out = Path(args.model) / "eval"
    else:
        out = Path(sources["test"]).parent
    record = {
        "model": args.model,
        "tower": args.tower if args.model else None,
        "data": sources,
        "command": " ".join(sys.argv if argv is None else ["eval/linear_probe.py", *argv]),
        "sklearn_version": sklearn.__version__,
        **result,
    }
    write_text_atomic(out / "linear_probe.json", json.dumps(jsonable(record), indent=1))
    table = probe_markdown(result)
    write_text_atomic(out / "linear_probe.md", table)
    print(table)
    print(f"written to {out}")
    return record


if __name__ == "__main__":
    main()
