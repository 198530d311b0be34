"""Is model A better than model B on the same volumes? Paired bootstrap differences of the main job's metrics.

Two students scored on the same 150 test volumes have overlapping 95 % intervals even when one is better on
almost every resample: their errors are correlated. The question "does distillation help" is answered by the
interval of the *difference*, computed with one row draw per resample applied to both models
(`metrics.paired_bootstrap_ci`). Metrics: mean zero-shot AUROC, CT-CLIP's weighted F1 (its thresholds re-chosen
on each resample, as CT-CLIP chooses them on the evaluated set) and Recall@k from per-query ranks (the gallery is
the whole split; a resample draws queries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .metrics import ctclip_protocol, mean_auroc, paired_bootstrap_ci

DEFAULT_KS: tuple[int, ...] = (5, 10, 50, 100)


def ctclip_f1(y: np.ndarray, p: np.ndarray) -> float:
    return float(ctclip_protocol(y, p)["mean"]["f1_weighted"])


def _recall(k: int):
    def recall(ranks: np.ndarray) -> float:
        return float(np.mean(ranks <= k))

    recall.__name__ = f"recall_at_{k}"
    return recall


def _entry(metric_fn, arrays_a, arrays_b, n_resamples: int, seed: int) -> dict[str, Any]:
    ci = paired_bootstrap_ci(metric_fn, arrays_a, arrays_b, n_resamples=n_resamples, seed=seed)
    value_a, value_b = float(metric_fn(*arrays_a)), float(metric_fn(*arrays_b))
    return {
        "a": value_a,
        "b": value_b,
        "difference": ci.point,
        "ci95": [ci.low, ci.high],
        "excludes_zero": bool(ci.low > 0 or ci.high < 0),
        "n_dropped": ci.n_dropped,
        "n_resamples": ci.n_resamples,
    }


def compare_zero_shot(
    labels: Any, probs_a: Any, probs_b: Any, n_resamples: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Paired A − B of mean AUROC and CT-CLIP weighted F1: `labels` (N, L) 0/1, `probs_*` (N, L) zero-shot
    probabilities of the same N volumes in the same order."""
    y = np.asarray(labels)
    pa, pb = np.asarray(probs_a, dtype=np.float64), np.asarray(probs_b, dtype=np.float64)
    if pa.shape != y.shape or pb.shape != y.shape:
        raise ValueError(f"labels {y.shape}, probs_a {pa.shape} and probs_b {pb.shape} must have one shape (N, L)")
    return {
        "auroc": _entry(mean_auroc, (y, pa), (y, pb), n_resamples, seed),
        "ctclip_f1_weighted": _entry(ctclip_f1, (y, pa), (y, pb), n_resamples, seed),
    }


def compare_ranks(
    ranks_a: dict[str, Any],
    ranks_b: dict[str, Any],
    ks: Sequence[int] = DEFAULT_KS,
    n_resamples: int = 1000,
    seed: int = 0,
    n_rows: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Paired A − B of Recall@k: `ranks_*` {direction: (N,) 1-based rank of each query's match}, same directions
    and the same queries in the same order for both models; `n_rows`, when given, is the N every direction must
    have. Returns {"<direction> R@k": entry}."""
    if set(ranks_a) != set(ranks_b):
        raise ValueError(f"ranks of A ({sorted(ranks_a)}) and B ({sorted(ranks_b)}) cover different directions")
    arrays = {d: (np.asarray(ranks_a[d]), np.asarray(ranks_b[d])) for d in ranks_a}
    for direction, (ra, rb) in arrays.items():
        n = ra.shape[0] if n_rows is None and ra.ndim == 1 else n_rows
        if ra.shape != (n,) or rb.shape != (n,):
            raise ValueError(f"{direction}: ranks must both have shape ({n},), got {ra.shape} / {rb.shape}")
    return {
        f"{direction} R@{k}": _entry(_recall(k), (ra,), (rb,), n_resamples, seed)
        for direction, (ra, rb) in arrays.items()
        for k in ks
    }


def compare_models(
    labels: Any,
    probs_a: Any,
    probs_b: Any,
    ranks_a: dict[str, Any] | None = None,
    ranks_b: dict[str, Any] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Every paired difference A − B the main job reports: `compare_zero_shot` then `compare_ranks`.

    Returns {"auroc" | "ctclip_f1_weighted" | "<direction> R@k": {"a", "b", "difference", "ci95", "excludes_zero",
    "n_dropped", "n_resamples"}}. The same seed gives the same draws to every metric. Inputs are checked before
    any resampling, so a mismatch fails at once.
    """
    ranks_a, ranks_b = ranks_a or {}, ranks_b or {}
    n = np.asarray(labels).shape[0]
    compare_ranks(ranks_a, ranks_b, ks=(), n_rows=n)  # validation only (no k → no resampling)
    return {
        **compare_zero_shot(labels, probs_a, probs_b, n_resamples, seed),
        **compare_ranks(ranks_a, ranks_b, ks, n_resamples, seed, n_rows=n),
    }


def difference_table(comparison: dict[str, dict[str, Any]], name_a: str = "A", name_b: str = "B") -> str:
    """Markdown: one row per metric with both values, the difference and its paired 95 % interval."""
    lines = [f"| metric | {name_a} | {name_b} | {name_a} − {name_b} [95 % CI] | excludes 0 |", "|---|---|---|---|---|"]
    for metric, r in comparison.items():
        lines.append(
            f"| {metric} | {r['a']:.3f} | {r['b']:.3f} | {r['difference']:+.3f} [{r['ci95'][0]:+.3f}, "
            f"{r['ci95'][1]:+.3f}] | {'yes' if r['excludes_zero'] else 'no'} |"
        )
    return "\n".join(lines)
