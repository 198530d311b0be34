"""SpeechCLIP's evaluation on one split: every figure as per-image counts, so intervals resample images.

The five captions of an image share its picture (and often its words), so they are not independent samples: a
bootstrap over captions would give intervals too narrow. Every figure here is a ratio of sums over images —
R@k = Σ hits / Σ queries, a keyword hit rate = Σ hit slots / Σ slots — kept as two `(images,)` arrays, and
intervals (`bootstrap_ci`) and paired differences between models (`paired_bootstrap_ci`) draw images.

Figures of one model (each branch it has: parallel, cascaded):
- speech → image and image → speech R@k (the papers' protocol: `speechclip_metrics.speech_image_retrieval`);
- zero-shot speech → text and text → speech R@k against CLIP's text embeddings of the split's transcripts (never
  trained for: the speech side only ever saw images). A spoken caption's correct texts are its own words; a
  transcript's correct recordings are every recording of the same words;
- the keyword hit rate, top-1 and top-5 (`speechclip_metrics.keyword_hits`).
And the bar they are set against, CLIP's own text → image and image → text R@k on the same images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .metrics import bootstrap_ci, paired_bootstrap_ci, retrieval_ranks
from .speechclip_metrics import keyword_hits

KS: tuple[int, ...] = (1, 5, 10)
BRANCHES: tuple[str, ...] = ("parallel", "cascaded")
SPEECH_INPUTS = ("speech_layers", "speech_frame_mask", "speech_values", "speech_attention_mask")


@dataclass
class SplitEmbeddings:
    """One model's outputs on a split's rows (one row per spoken caption), in the rows' order."""

    item_ids: np.ndarray  # (rows,) the image of each row
    image_embeds: np.ndarray  # (rows, dim) CLIP's embedding of each row's image
    speech: dict[str, np.ndarray] = field(default_factory=dict)  # branch → (rows, dim)
    keyword_ids: np.ndarray | None = None  # (rows, slots, top_k) nearest subwords first
    keyword_mask: np.ndarray | None = None  # (rows, slots)


@torch.no_grad()
def embed_rows(model: Any, rows: Sequence[dict[str, Any]], collate: Any, batch_size: int = 64,
               keywords_top_k: int = 0) -> SplitEmbeddings:  # fmt: skip
    """Every branch's speech embedding of `rows` (dicts with "wav", "image_embeds", "item_ids", as
    `training.speechclip_training.speechclip_rows` makes them) from their cached frozen layers or their audio
    (`collate`), and,
    with `keywords_top_k`, each keyword slot's nearest subwords."""
    model.eval()
    speech: dict[str, list[np.ndarray]] = {}
    keyword_ids, keyword_mask = [], []
    for start in range(0, len(rows), batch_size):
        batch = collate(rows[start : start + batch_size])
        cached = {k: batch[k] for k in SPEECH_INPUTS if k in batch}  # cached layers, or audio
        out = model.get_speech_features(**cached)
        for name in BRANCHES:
            embeds = getattr(out, f"{name}_embeds")
            if embeds is not None:
                speech.setdefault(name, []).append(embeds.float().numpy())
        if keywords_top_k and model.quantizer is not None:
            ids, _, mask = model.get_keywords(top_k=keywords_top_k, **cached)
            keyword_ids.append(ids.numpy())
            keyword_mask.append(mask.numpy())
    ids = mask = None
    if keyword_ids:  # CIF rows differ in slots from batch to batch: pad to the widest
        slots = max(k.shape[1] for k in keyword_ids)
        ids = np.concatenate([np.pad(k, ((0, 0), (0, slots - k.shape[1]), (0, 0)), constant_values=-1)
                              for k in keyword_ids])  # fmt: skip
        mask = np.concatenate([np.pad(m, ((0, 0), (0, slots - m.shape[1]))) for m in keyword_mask])
    return SplitEmbeddings(
        item_ids=np.array([r["item_ids"] for r in rows]),
        image_embeds=torch.stack([r["image_embeds"] for r in rows]).float().numpy(),
        speech={name: np.concatenate(parts) for name, parts in speech.items()},
        keyword_ids=ids,
        keyword_mask=mask,
    )


def _per_image(values: np.ndarray, image_index: np.ndarray, n_images: int) -> np.ndarray:
    return np.bincount(image_index, weights=values.astype(np.float64), minlength=n_images)


def _recall_counts(name: str, ranks: np.ndarray, image_index: np.ndarray, n_images: int,
                   ks: Sequence[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    queries = _per_image(np.ones(len(ranks)), image_index, n_images)
    return {f"{name} R@{k}": (_per_image(ranks <= k, image_index, n_images), queries) for k in ks}


Counts = dict[str, tuple[np.ndarray, np.ndarray]]  # figure → (numerator per image, denominator per image)


def retrieval_counts(prefix: str, embeds: np.ndarray, split: SplitEmbeddings, texts: np.ndarray | None = None,
                     text_embeds: np.ndarray | None = None, ks: Sequence[int] = KS,
                     modality: str = "speech") -> Counts:  # fmt: skip
    """`{"<prefix> <modality>→image R@k": (hits per image, queries per image), …}` for `embeds` (rows, dim)
    against the split's images both ways and, with `text_embeds` (rows, dim) of the rows' transcripts, against the
    transcripts both ways (`texts` (rows,): equal codes for equal words)."""
    images, first, image_index = np.unique(split.item_ids, return_index=True, return_inverse=True)
    n = len(images)
    gallery = split.image_embeds[first]
    counts = _recall_counts(f"{prefix} {modality}→image", retrieval_ranks(embeds, gallery, split.item_ids, images),
                            image_index, n, ks)  # fmt: skip
    counts |= _recall_counts(f"{prefix} image→{modality}", retrieval_ranks(gallery, embeds, images, split.item_ids),
                             np.arange(n), n, ks)  # fmt: skip
    if text_embeds is not None:
        distinct, text_first = np.unique(texts, return_index=True)
        counts |= _recall_counts(
            f"{prefix} speech→text",
            retrieval_ranks(embeds, text_embeds[text_first], texts, distinct),
            image_index,
            n,
            ks,
        )
        counts |= _recall_counts(f"{prefix} text→speech", retrieval_ranks(text_embeds, embeds, texts, texts),
                                 image_index, n, ks)  # fmt: skip
    return counts


def keyword_counts(prefix: str, split: SplitEmbeddings, transcripts: Sequence[Sequence[int]],
                   ks: Sequence[int] = (1, 5)) -> Counts:  # fmt: skip
    """`{"<prefix> keyword hit top-k": (hit slots per image, real slots per image)}`."""
    _, image_index = np.unique(split.item_ids, return_inverse=True)
    n = int(image_index.max()) + 1
    slots = _per_image(split.keyword_mask.sum(axis=1), image_index, n)
    return {f"{prefix} keyword hit top-{k}": (_per_image(keyword_hits(split.keyword_ids, split.keyword_mask,
                                                                      transcripts, k).sum(axis=1), image_index, n),
                                              slots) for k in ks}  # fmt: skip


def frequent_subword_counts(item_ids: np.ndarray, transcripts: Sequence[Sequence[int]],
                            train_transcripts: Sequence[Sequence[int]], slots: int = 8) -> Counts:  # fmt: skip
    """The keyword hit rate of a guess that hears nothing: every slot of every utterance names the training
    transcripts' most frequent subwords (nearest first). On a small vocabulary ("a", "the", "on" in almost every
    caption) it is high; a hit rate means something only by how far it is above this."""
    counts = np.bincount([t for transcript in train_transcripts for t in transcript])
    top = np.argsort(-counts, kind="stable")[:5]
    split = SplitEmbeddings(item_ids=np.asarray(item_ids), image_embeds=np.zeros((len(item_ids), 1)))
    split.keyword_ids = np.broadcast_to(top, (len(item_ids), slots, len(top)))
    split.keyword_mask = np.ones((len(item_ids), slots), dtype=bool)
    return keyword_counts(FREQUENT, split, transcripts)


FREQUENT = "frequent subwords"


def text_codes(captions: Sequence[str]) -> np.ndarray:
    """One integer per caption, equal for equal words (case and surrounding space ignored)."""
    _, codes = np.unique([" ".join(c.lower().split()) for c in captions], return_inverse=True)
    return codes


def model_counts(split: SplitEmbeddings, text_embeds: np.ndarray, captions: Sequence[str],
                 transcripts: Sequence[Sequence[int]] | None = None, ks: Sequence[int] = KS) -> Counts:  # fmt: skip
    """Every figure of one model: retrieval of each branch (images and transcripts, both ways) and, when it has
    keywords and `transcripts` (each row's CLIP subword ids) are given, the keyword hit rates."""
    texts = text_codes(captions)
    counts: Counts = {}
    for branch, embeds in split.speech.items():
        counts |= retrieval_counts(branch, embeds, split, texts, text_embeds, ks)
    if split.keyword_ids is not None and transcripts is not None:
        counts |= keyword_counts("cascaded", split, transcripts)
    return counts


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> float:
    return float(numerator.sum() / denominator.sum())


def summarise(counts: Counts, n_resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """`{figure: {"value", "ci95": [low, high]}}`, images resampled (the same draws for every figure)."""
    out = {}
    for name, (num, den) in counts.items():
        ci = bootstrap_ci(ratio, num, den, n_resamples=n_resamples, seed=seed)
        out[name] = {"value": ci.point, "ci95": [ci.low, ci.high]}
    return out


def compare(counts_a: Counts, counts_b: Counts, figures: Sequence[str] | None = None, n_resamples: int = 1000,
            seed: int = 0) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Paired A − B of each figure both have (or of `figures`; a figure of A against another of B as "a|b"),
    the same images drawn for both: `{figure: {"a", "b", "difference", "ci95", "excludes_zero"}}`."""
    pairs = [(f, f) for f in counts_a if f in counts_b] if figures is None else [
        tuple(f.split("|")) if "|" in f else (f, f) for f in figures]  # fmt: skip
    out = {}
    for name_a, name_b in pairs:
        missing = [n for n, c in ((name_a, counts_a), (name_b, counts_b)) if n not in c]
        if missing:
            raise KeyError(f"no figure {missing[0]!r} to compare; have {sorted(counts_a)} / {sorted(counts_b)}")
        ci = paired_bootstrap_ci(ratio, counts_a[name_a], counts_b[name_b], n_resamples=n_resamples, seed=seed)
        out[name_a if name_a == name_b else f"{name_a} − {name_b}"] = {
            "a": ratio(*counts_a[name_a]), "b": ratio(*counts_b[name_b]), "difference": ci.point,
            "ci95": [ci.low, ci.high], "excludes_zero": bool(ci.low > 0 or ci.high < 0)}  # fmt: skip
    return out
