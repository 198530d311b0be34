"""Evaluate a SpeechCT-CLIP model on a split: zero-shot classification (prompts written or spoken) under CT-CLIP's
protocol and the standard one, and report → volume retrieval. Embeddings of frozen towers come from the caches;
each volume is encoded once and each prompt once per model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.spoken_prompts import synthesize_prompts
from ..labels import CT_RATE_LABELS
from ..modeling_speechct_clip import SpeechPrefix
from ..training.embedding_cache import CTVolumeCache, EmbeddingCache, SpeechPrefixCache
from ..zero_shot import (
    DEFAULT_TEMPLATES,
    Prompt,
    pair_probabilities,
    prompt_pairs,
    speech_prompt_embeddings,
    text_prompt_embeddings,
)
from .metrics import (
    auroc_per_label,
    bootstrap_ci,
    ctclip_protocol,
    mean_auroc,
    mean_defined,
    rank_summary,
    recall_at_k,
    retrieval_ranks,
    standard_protocol,
)

RETRIEVAL_KS = (1, 5, 10, 50, 100)


def ct_embeddings(model: Any, processor: Any, rows: list[dict], cache_dir: str | os.PathLike, cache_ct_values=True):
    volumes = CTVolumeCache(cache_dir, processor) if cache_ct_values else None
    return EmbeddingCache(cache_dir, model, processor, "ct", volume_cache=volumes)([r["volume"] for r in rows])


def text_embeddings(model: Any, processor: Any, rows: list[dict], cache_dir: str | os.PathLike) -> torch.Tensor:
    return EmbeddingCache(cache_dir, model, processor, "text")([r["findings"] for r in rows])


@torch.no_grad()
def speech_embeddings(
    model: Any, processor: Any, rows: list[dict], cache_dir: str | os.PathLike, batch_size: int = 16
) -> torch.Tensor:
    """Spoken reports through the student: the frozen prefix from the cache, the trained top run here."""
    from ..training.embedding_cache import collate_prefixes

    model.eval()
    entries = SpeechPrefixCache(cache_dir, model, processor).get([r["speech"] for r in rows])
    out = []
    for start in range(0, len(entries), batch_size):
        prefix = collate_prefixes(entries[start : start + batch_size], SpeechPrefix)
        out.append(model.get_speech_features_from_prefix(prefix, batch_size=len(entries[start : start + batch_size])))
    return torch.cat(out)


def prompt_embeddings(
    model: Any,
    processor: Any,
    modality: str,
    labels: list[str] = CT_RATE_LABELS,
    templates: tuple[str, str] = DEFAULT_TEMPLATES,
    prompt_dir: str | os.PathLike | None = None,
    num_voices: int = 4,
    prompts: Sequence[tuple[Prompt, Prompt]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(present, absent) prompt embeddings of `labels`, written or spoken: the `templates` pair, or `prompts`
    (one pair per label, e.g. `data.report_prompts.report_sentence_prompts` ensembles) when given."""
    if prompts is not None and len(prompts) != len(labels):
        raise ValueError(f"prompts holds {len(prompts)} pairs for {len(labels)} labels")
    pairs = list(prompts) if prompts is not None else prompt_pairs(labels, templates)
    if modality == "text":
        return text_prompt_embeddings(model, processor, pairs)
    if modality != "speech":
        raise ValueError(f"modality must be 'text' or 'speech', got {modality!r}")
    if prompt_dir is None:
        raise ValueError("spoken prompts need a prompt_dir to synthesise into")
    return speech_prompt_embeddings(model, processor, synthesize_prompts(pairs, Path(prompt_dir), num_voices))


def evaluate_split(
    ct: dict[str, torch.Tensor],
    labels: dict[str, np.ndarray],
    prompts: tuple[torch.Tensor, torch.Tensor],
    logit_scale: float,
    reports: torch.Tensor,
    test: str = "test",
    val: str = "valid",
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """All metrics of one model/modality. `ct[split]` CT embeddings, `labels[split]` (N, L) 0/1, `prompts` the
    (present, absent) prompt embeddings, `reports` the test split's report embeddings (text or speech), paired
    with `ct[test]` row by row."""
    probs = {s: pair_probabilities(ct[s], *prompts, logit_scale).numpy() for s in (test, val)}
    auroc = auroc_per_label(labels[test], probs[test])
    mean_score, excluded = mean_defined(auroc)

    ci = bootstrap_ci(mean_auroc, labels[test], probs[test], n_resamples=n_resamples, seed=seed)
    ctclip = ctclip_protocol(labels[test], probs[test])
    standard = standard_protocol(labels[val], probs[val], labels[test], probs[test])
    ranks = retrieval_ranks(reports.numpy(), ct[test].numpy())
    reverse = retrieval_ranks(ct[test].numpy(), reports.numpy())
    return {
        "auroc": mean_score,
        "auroc_ci95": [ci.low, ci.high],
        # for choosing settings (λ, prompts) on validation without looking at the test split
        "valid_auroc": mean_defined(auroc_per_label(labels[val], probs[val]))[0],
        "auroc_excluded_labels": [CT_RATE_LABELS[i] for i in excluded]
        if len(auroc) == len(CT_RATE_LABELS)
        else excluded,
        "auroc_per_label": auroc.tolist(),
        "ctclip_f1_weighted": ctclip["mean"]["f1_weighted"],
        "ctclip_accuracy": ctclip["mean"]["accuracy"],
        "ctclip_precision": ctclip["mean"]["precision"],
        "standard_f1": standard["mean"]["f1"],
        "standard_precision": standard["mean"]["precision"],
        "standard_recall": standard["mean"]["recall"],
        "standard_accuracy": standard["mean"]["accuracy"],
        "retrieval_report_to_ct": {**recall_at_k(ranks, RETRIEVAL_KS), **rank_summary(ranks)},
        "retrieval_ct_to_report": {**recall_at_k(reverse, RETRIEVAL_KS), **rank_summary(reverse)},
        "scores": {s: probs[s].tolist() for s in probs},
        # per-query ranks of the test split, kept for paired comparisons of two models (paired_comparison)
        "ranks": {"report→CT": ranks.tolist(), "CT→report": reverse.tolist()},
    }
