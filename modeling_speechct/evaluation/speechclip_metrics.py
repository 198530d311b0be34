"""SpeechCLIP's figures: speech ↔ image retrieval both ways, and the spoken keywords' hit rate.

Retrieval follows the papers' protocol on Flickr8k: every spoken caption queries the split's distinct images
(its own image is the one correct item), and every image queries the spoken captions (any of its five captions is
correct). The keyword hit rate (SpeechCLIP's "keyword hit rate", never released with its code): a keyword slot
*hits* when any of its top-k nearest subwords occurs among the subwords of the caption's transcript (CLIP's BPE
tokenisation); reported per slot and averaged over slots, for top-1 and top-5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .metrics import recall_at_k, retrieval_ranks


def speech_image_retrieval(
    speech: Any, images: Any, item_ids: Sequence[int], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, dict[str, float]]:
    """R@k speech → image and image → speech. `speech` `(captions, dim)`; `images` `(captions, dim)` — each
    caption's image embedding, repeated for the captions of one image — with `item_ids` naming the image of each
    row; the gallery of images keeps one row per id."""
    ids = np.asarray(item_ids)
    images = np.asarray(images, dtype=np.float64)
    if ids.shape != (len(images),) or len(np.asarray(speech)) != len(images):
        raise ValueError(f"speech {np.shape(speech)}, images {images.shape} and item_ids {ids.shape} must align")
    unique, first = np.unique(ids, return_index=True)
    gallery = images[first]
    return {
        "speech_to_image": recall_at_k(retrieval_ranks(speech, gallery, ids, unique), ks),
        "image_to_speech": recall_at_k(retrieval_ranks(gallery, speech, unique, ids), ks),
    }


def keyword_hits(keyword_ids: Any, slot_mask: Any, transcripts: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """`(utterances, slots)` bool: slot j of utterance i is real and one of its `k` nearest subwords is among the
    subwords of transcript i (the arguments as `keyword_hit_rate`'s)."""
    ids, mask = np.asarray(keyword_ids), np.asarray(slot_mask, dtype=bool)
    if k > ids.shape[2]:
        raise ValueError(f"top-{k} hit rate needs at least {k} nearest subwords per slot, got {ids.shape[2]}")
    hits = np.zeros(mask.shape, dtype=bool)
    for i, transcript in enumerate(transcripts):
        words = set(int(t) for t in transcript)
        hits[i] = [bool(words & set(ids[i, j, :k].tolist())) for j in range(ids.shape[1])]
    return hits & mask


def keyword_hit_rate(
    keyword_ids: Any, slot_mask: Any, transcripts: Sequence[Sequence[int]], ks: Sequence[int] = (1, 5)
) -> dict[str, dict[str, Any]]:
    """Hit rates of spoken keywords. `keyword_ids` `(utterances, slots, k_max)`, nearest first (as
    `SpeechClipModel.get_keywords` returns them); `slot_mask` `(utterances, slots)` (False: no keyword, e.g. a CIF
    row with fewer tokens); `transcripts[i]` the subword ids of utterance i's caption.

    Returns `{"top1": {"per_slot": [...], "mean": …}, "top5": …}`: `per_slot[j]` is the share of utterances whose
    slot j hits (over utterances that have a slot j), `mean` the share over every real slot of every utterance."""
    ids = np.asarray(keyword_ids)
    mask = np.asarray(slot_mask, dtype=bool)
    if ids.ndim != 3 or mask.shape != ids.shape[:2] or len(transcripts) != ids.shape[0]:
        raise ValueError(
            f"keyword_ids {ids.shape} must be (utterances, slots, k), slot_mask {mask.shape} (utterances, slots), "
            f"with one transcript per utterance ({len(transcripts)} given)"
        )
    out = {}
    for k in ks:
        hits = keyword_hits(ids, mask, transcripts, k)
        per_slot = [float(hits[:, j].sum() / mask[:, j].sum()) if mask[:, j].any() else float("nan")
                    for j in range(mask.shape[1])]  # fmt: skip
        out[f"top{k}"] = {"per_slot": per_slot, "mean": float(hits.sum() / max(mask.sum(), 1))}
    return out
