"""Score saved SpeechCLIP models on one split of a Flickr8k-layout folder and lay the figures out as a report.

`score_model` loads a model folder (model + processor, as `train/train_speechclip.py` saves them), embeds the
split's spoken captions from the cached frozen layers (one cache for every model with the same speech tower) and
returns per-image counts (`speechclip_eval`); `report` turns them into values with 95 % intervals, paired
differences and ratios between figures, and a Markdown table. `eval/speechclip.py` and the main job use both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.flickr8k import load_flickr8k
from ..modeling_speechclip import SpeechClipModel
from ..processing_speechclip import SpeechClipProcessor
from ..training.embedding_cache import SpeechLayersCache
from ..training.lora import from_pretrained_with_adapter
from ..training.speechclip_training import SpeechClipCollator, speechclip_rows
from .metrics import bootstrap_ci
from .paired_comparison import difference_table
from .speechclip_eval import (
    FREQUENT,
    Counts,
    compare,
    embed_rows,
    frequent_subword_counts,
    model_counts,
    ratio,
    retrieval_counts,
    summarise,
)

CLIP_ROW = "CLIP (written caption)"
FREQUENT_ROW = "most frequent training subwords (no speech)"
COLUMNS = (
    ("→ image R@1", "speech→image R@1"),
    ("R@5", "speech→image R@5"),
    ("R@10", "speech→image R@10"),
    ("image → R@10", "image→speech R@10"),
    ("→ text R@10", "speech→text R@10"),
    ("keyword top-1", "keyword hit top-1"),
    ("top-5", "keyword hit top-5"),
)


@torch.no_grad()
def text_features(model: SpeechClipModel, tokenizer: Any, captions: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """CLIP's projected text embedding of each caption (its own tokenizer, truncated to CLIP's positions)."""
    out = []
    for start in range(0, len(captions), batch_size):
        batch = tokenizer(list(captions[start : start + batch_size]), padding=True, truncation=True,
                          return_tensors="pt")  # fmt: skip
        out.append(model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output.float().numpy())
    return np.concatenate(out)


def score_model(path: str | Path, data_dir: str | Path, split: str, cache_dir: str | Path) -> tuple[Counts, Counts]:
    """`(the model's counts, the counts of its CLIP's written captions)` on `split` of `data_dir`."""
    model = from_pretrained_with_adapter(SpeechClipModel, path).eval()
    processor = SpeechClipProcessor.from_pretrained(path)
    captions = load_flickr8k(Path(data_dir), split)
    rows = speechclip_rows(model, processor, captions)
    cache = SpeechLayersCache(cache_dir, model, processor)
    collate = SpeechClipCollator(cache)
    cache([r["wav"] for r in rows])
    embedded = embed_rows(model, rows, collate, keywords_top_k=5)
    texts = [c.caption for c in captions]
    text_embeds = text_features(model, processor.tokenizer, texts)
    transcripts = processor.tokenizer(texts, add_special_tokens=False)["input_ids"]
    clip = retrieval_counts("CLIP", text_embeds, embedded, modality="text")
    if model.quantizer is not None and split != "train":  # the no-speech keyword guess, from the training captions
        train = [c.caption for c in load_flickr8k(Path(data_dir), "train", check_files=False)]
        clip |= frequent_subword_counts(embedded.item_ids, transcripts,
                                        processor.tokenizer(train, add_special_tokens=False)["input_ids"],
                                        model.config.num_keywords)  # fmt: skip
    return model_counts(embedded, text_embeds, texts, transcripts), clip


def relative(counts_a: Counts, figure_a: str, counts_b: Counts, figure_b: str, n_resamples: int = 1000,
             seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """`figure_a / figure_b` (e.g. speech → image R@10 over CLIP's text → image R@10 on the same images) with a
    95 % interval from the same image draws for both."""
    (na, da), (nb, db) = counts_a[figure_a], counts_b[figure_b]
    if len(na) != len(nb):
        raise ValueError(f"{figure_a} and {figure_b} are counted over {len(na)} and {len(nb)} images")
    ci = bootstrap_ci(lambda *a: ratio(a[0], a[1]) / ratio(a[2], a[3]), na, da, nb, db, n_resamples=n_resamples,
                      seed=seed)  # fmt: skip
    return {"value": ci.point, "ci95": [ci.low, ci.high], "numerator": figure_a, "denominator": figure_b}


def _cell(summary: Mapping[str, dict[str, Any]], figure: str) -> str:
    if figure not in summary:
        return "—"
    s = summary[figure]
    return f"{s['value']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"


def results_table(summaries: Mapping[str, Mapping[str, dict[str, Any]]], clip: Mapping[str, dict[str, Any]]) -> str:
    """Markdown: the written captions through CLIP, then one row per model and branch; values [95 % CI]."""
    header = "| model | branch | " + " | ".join(c for c, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    clip_cells = [_cell(clip, f"CLIP {f.replace('speech', 'text', 1)}") if f.startswith(("speech→image", "image→"))
                  else "—" for _, f in COLUMNS]  # fmt: skip
    lines.append(f"| {CLIP_ROW} | text | " + " | ".join(clip_cells) + " |")
    if f"{FREQUENT} keyword hit top-1" in clip:
        cells = [_cell(clip, f"{FREQUENT} {f}") if f.startswith("keyword") else "—" for _, f in COLUMNS]
        lines.append(f"| {FREQUENT_ROW} | — | " + " | ".join(cells) + " |")
    for name, summary in summaries.items():
        for branch in ("parallel", "cascaded"):
            if f"{branch} speech→image R@1" in summary:
                cells = [_cell(summary, f"{branch} {f}") for _, f in COLUMNS]
                lines.append(f"| {name} | {branch} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(counts: Mapping[str, Counts], clip: Counts, comparisons: Sequence[tuple[str, str, str]] = (),
           ratios: Sequence[tuple[str, str]] = (), n_resamples: int = 1000,
           seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Summaries (value + 95 % CI) of every model and of CLIP's written captions; `comparisons` as
    `(model_a, model_b, "figure_a|figure_b" or "figure")` paired differences; `ratios` as `(model, figure)` over
    CLIP's text → image counterpart (`relative`). Returns the record and its Markdown under "markdown"."""
    summaries = {name: summarise(c, n_resamples, seed) for name, c in counts.items()}
    clip_summary = summarise(clip, n_resamples, seed)
    paired = {}
    for a, b, figure in comparisons:
        for key, value in compare(counts[a], counts[b], [figure], n_resamples, seed).items():
            paired[f"{a} vs {b}: {key}"] = value
    relatives = {}
    for name, figure in ratios:
        bar = "CLIP " + figure.split(" ", 1)[1].replace("speech", "text", 1)
        relatives[f"{name} {figure} / {bar}"] = relative(counts[name], figure, clip, bar, n_resamples, seed)
    markdown = results_table(summaries, clip_summary)
    if relatives:
        markdown += "\n| ratio | value [95 % CI] |\n|---|---|\n" + "".join(
            f"| {k} | {r['value']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] |\n" for k, r in relatives.items()
        )
    if paired:
        markdown += "\n" + difference_table(paired) + "\n"
    return {"models": summaries, "clip": clip_summary, "comparisons": paired, "ratios": relatives,
            "n_resamples": n_resamples, "seed": seed, "resampled": "images", "markdown": markdown}  # fmt: skip
