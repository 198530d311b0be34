"""Report ↔ volume retrieval over a split: Recall@1/5/10/50/100, median and mean rank, in bounded memory.

    python eval/retrieval.py --model outputs/benchmark/distilled/final --query speech
    python eval/retrieval.py --model outputs/benchmark/teacher/final --query text

Directions: query → CT and CT → query, with the query a spoken (speech tower) or written (text tower) report; with
`--query speech` also speech → text. Similarities are computed in chunks of queries (`--chunk_size`), so a pool of
50,000 × 50,000 never materialises. Pairing is by volume: the reports of a volume are correct for it (CT-CLIP's
pairing); ties count against the query. Writes to --output_dir `retrieval.json` (with `provenance`: the model's
revision, a hash of the split tables, the package version), `retrieval.md`, `retrieval_ranks.csv` (each query's rank,
for `eval/paired_bootstrap.py`) and `recall_at_k.png` (Recall@k for
every k, each direction). Metrics are computed by the package's `retrieval_recall` evaluate module (loaded offline);
files are written atomically.

`--faiss` (needs `pip install faiss-cpu`) takes the Recall@k figures from an exact FAISS inner-product index
(`modeling_speechct.evaluation.faiss_search.faiss_recall_at_k`) and still the median/mean rank (and the plot) from
the exact
chunked path; `--faiss_only` skips the exact path, so only Recall@k is reported and no plot is drawn (the index
returns each query's top k only). Either way `retrieval.json` says which method gave what under "method".
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

import torch

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.evaluation.metric_modules import load_metric
from modeling_speechct.evaluation.plots import plot_recall_curve
from modeling_speechct.evaluation.split import RETRIEVAL_KS, ct_embeddings, speech_embeddings, text_embeddings
from modeling_speechct.files.provenance import evaluation_provenance, write_json_atomic, write_text_atomic


def _method(faiss_only: bool) -> dict[str, str]:
    """Which computation gave which figures (written only with --faiss / --faiss_only)."""
    method = {"R@k": "faiss.IndexFlatIP top-k search (modeling_speechct.evaluation.faiss_search.faiss_recall_at_k)"}
    if faiss_only:
        method["median_rank/mean_rank"] = "not computed (--faiss_only: the index returns the top k only)"
    else:
        method["median_rank/mean_rank"] = "exact chunked path (retrieval_recall evaluate module)"
    return method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data_dir", default="data/benchmark")
    parser.add_argument("--cache_dir", default="outputs/cache")
    parser.add_argument("--split", default="test")
    parser.add_argument("--query", choices=("speech", "text"), default="speech")
    parser.add_argument("--chunk_size", type=int, default=4096)
    parser.add_argument("--output_dir", default=None, help="default: <model>/eval")
    parser.add_argument("--faiss", action="store_true", help="Recall@k from a FAISS index (pip install faiss-cpu)")
    parser.add_argument("--faiss_only", action="store_true", help="--faiss without the exact path: Recall@k only")
    args = parser.parse_args()

    out = Path(args.output_dir or Path(args.model) / "eval")
    out.mkdir(parents=True, exist_ok=True)
    model = SpeechCTClipModel.from_pretrained(args.model).eval()
    processor = SpeechCTClipProcessor.from_pretrained(args.model)
    rows = list(load_ct_rate(args.data_dir, args.split, require_speech=args.query == "speech"))
    ids = [r["volume_name"].rsplit("_", 1)[0] for r in rows]  # a volume's reconstructions share its scan's reports
    with torch.no_grad():
        ct = ct_embeddings(model, processor, rows, args.cache_dir).numpy()
        text = text_embeddings(model, processor, rows, args.cache_dir).numpy()
        queries = {"text": text}
        if args.query == "speech":
            queries["speech"] = speech_embeddings(model, processor, rows, args.cache_dir).numpy()
    pairs = {f"{args.query}_to_ct": (queries[args.query], ct), f"ct_to_{args.query}": (ct, queries[args.query])}
    if args.query == "speech":
        pairs["speech_to_text"] = (queries["speech"], text)
    results, ranks = {}, {}
    recall = load_metric("retrieval_recall", "embeddings")
    use_faiss = args.faiss or args.faiss_only
    for name, (q, g) in pairs.items():
        if not args.faiss_only:
            kwargs = {"ks": RETRIEVAL_KS, "chunk_size": args.chunk_size, "return_ranks": True}
            results[name] = recall.compute(query_embeddings=q, gallery_embeddings=g, ids=ids, **kwargs)
            ranks[name] = results[name].pop("ranks")
        if use_faiss:
            from modeling_speechct.evaluation.faiss_search import faiss_recall_at_k

            fast = faiss_recall_at_k(q, g, ids, ids, ks=RETRIEVAL_KS, chunk_size=args.chunk_size)
            fast.pop("ranks")
            results[name] = {**results.get(name, {}), **fast}
    record = {
        "model": args.model,
        "data_dir": args.data_dir,
        "split": args.split,
        "pool": len(rows),
        "command": " ".join(sys.argv),
        "results": results,
        **({"method": _method(args.faiss_only)} if use_faiss else {}),
        "provenance": evaluation_provenance(args.model, args.data_dir, [args.split]),
    }
    write_json_atomic(out / "retrieval.json", record)
    if ranks:
        plot_recall_curve(ranks, out / "recall_at_k.png")
        _write_ranks(out / "retrieval_ranks.csv", [r["volume_name"] for r in rows], ranks)
    head = ["direction", *(f"R@{k}" for k in RETRIEVAL_KS)] + ([] if args.faiss_only else ["median rank", "mean rank"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [f"{r[f'R@{k}']:.3f}" for k in RETRIEVAL_KS]
        if not args.faiss_only:
            cells += [f"{r['median_rank']:.0f}", f"{r['mean_rank']:.1f}"]
        lines.append("| " + " | ".join([name.replace("_", " "), *cells]) + " |")
    write_text_atomic(out / "retrieval.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"pool: {len(rows)} volumes of {args.split}; written to {out}")


def _write_ranks(path: Path, names: list[str], ranks: dict[str, Any]) -> None:
    """One row per (direction, query volume): the 1-based rank of its match — what `eval/paired_bootstrap.py` needs
    to compare two models query by query."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["direction", "VolumeName", "rank"])
    for direction, values in ranks.items():
        writer.writerows([direction, name, int(rank)] for name, rank in zip(names, values, strict=True))
    write_text_atomic(path, buffer.getvalue())


if __name__ == "__main__":
    main()
