"""The figures of a voice-robustness run, held-out voice against training voice, from embeddings alone (NumPy).

Each figure is a metric of one set of rows (reports, or volumes for zero-shot), computed for the held-out voice and
for the training voice on the same rows, with percentile bootstrap intervals (`metrics.bootstrap_ci`, 95 %) for
both and for their ratio held-out / training. All three use the same seed, hence the same row draws: the ratio's
interval is that of a paired quantity. The ratio above chance, (held-out − chance) / (training − chance), is
reported beside it, because a plain ratio of two near-chance numbers can pass while the model hears nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .metrics import bootstrap_ci, mean_auroc, retrieval_ranks

TARGET_RATIO = 0.90  # held-out / training, every figure
TARGET_CROSS_VOICE = 0.80  # cos(held-out voice, training voice) of the same report

__all__ = [
    "TARGET_CROSS_VOICE",
    "TARGET_RATIO",
    "compare",
    "cross_voice_cosine",
    "report_vectors",
    "unit",
    "zero_shot_figure",
]


def unit(x: Any) -> np.ndarray:
    """Rows scaled to length one, in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def report_vectors(speech: Any, text: Any, ct: Any) -> dict[str, np.ndarray]:
    """Per-report values whose means are the report figures: speech → text hits at 1 and 5 among the reports,
    cos(speech, text of the same report), speech → CT hits at 5 and 10 among the reports' volumes."""
    text_ranks = retrieval_ranks(speech, text)
    ct_ranks = retrieval_ranks(speech, ct)
    return {
        "speech_text_R@1": (text_ranks <= 1).astype(np.float64),
        "speech_text_R@5": (text_ranks <= 5).astype(np.float64),
        "speech_text_cosine": np.sum(unit(speech) * unit(text), axis=1),
        "speech_ct_R@5": (ct_ranks <= 5).astype(np.float64),
        "speech_ct_R@10": (ct_ranks <= 10).astype(np.float64),
    }


def cross_voice_cosine(a: Any, b: Any) -> np.ndarray:
    """cos(embedding in voice a, embedding in voice b) per report."""
    return np.sum(unit(a) * unit(b), axis=1)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator != 0 else float("nan")


def _interval(ci: Any) -> dict[str, Any]:
    return {"value": ci.point, "ci95": [ci.low, ci.high]}


def compare(
    held_out: tuple[np.ndarray, ...],
    training: tuple[np.ndarray, ...],
    chance: float | None,
    metric: Callable[..., float] = _mean,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """One figure: `metric(*held_out)` against `metric(*training)` (the same rows), their ratio, and whether the
    ratio meets `TARGET_RATIO`. Inputs share their first axis (the bootstrap's rows)."""
    k = len(held_out)
    h = bootstrap_ci(metric, *held_out, n_resamples=n_resamples, seed=seed)
    t = bootstrap_ci(metric, *training, n_resamples=n_resamples, seed=seed)
    r = bootstrap_ci(
        lambda *a: _ratio(metric(*a[:k]), metric(*a[k:])), *held_out, *training, n_resamples=n_resamples, seed=seed
    )
    above = _ratio(h.point - chance, t.point - chance) if chance is not None else None
    return {
        "chance": chance,
        "held_out": _interval(h),
        "training": _interval(t),
        "ratio": _interval(r),
        "ratio_above_chance": above,
        "pass_ratio": bool(np.isfinite(r.point) and r.point >= TARGET_RATIO),
    }


def zero_shot_figure(
    labels: np.ndarray, held_out: np.ndarray, training: np.ndarray, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Mean AUROC (over the labels defined on the volumes) with held-out- against training-voice prompts."""
    return compare((labels, held_out), (labels, training), 0.5, mean_auroc, n_resamples, seed)
