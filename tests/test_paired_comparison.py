"""Paired bootstrap differences, checked against an independent float64 loop with scikit-learn's AUROC."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from modeling_speechct.evaluation.metrics import bootstrap_ci, paired_bootstrap_ci
from modeling_speechct.evaluation.paired_comparison import (
    compare_models,
    compare_ranks,
    compare_zero_shot,
    difference_table,
)

N, L = 120, 5


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random((N, L)) < 0.35).astype(int)
    base = y + rng.normal(0, 1.2, (N, L))
    probs_a = 1 / (1 + np.exp(-(base + 0.3 * y)))  # A separates the classes a little better
    probs_b = 1 / (1 + np.exp(-(base + rng.normal(0, 0.3, (N, L)))))
    return y, probs_a, probs_b


def _sk_mean_auroc(y: np.ndarray, p: np.ndarray) -> float:
    values = [roc_auc_score(y[:, j], p[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    return float(np.mean(values)) if values else float("nan")


def _reference_paired(y, pa, pb, n_resamples: int, seed: int) -> tuple[float, float, float]:
    """The textbook paired bootstrap, written out: one draw per resample, applied to both models."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(y), len(y))
        d = _sk_mean_auroc(y[idx], pa[idx]) - _sk_mean_auroc(y[idx], pb[idx])
        if not np.isnan(d):
            diffs.append(d)
    point = _sk_mean_auroc(y, pa) - _sk_mean_auroc(y, pb)
    return point, float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def test_auroc_difference_matches_independent_loop():
    y, pa, pb = _data()
    got = compare_zero_shot(y, pa, pb, n_resamples=100, seed=3)["auroc"]
    point, low, high = _reference_paired(y, pa, pb, n_resamples=100, seed=3)
    assert got["difference"] == pytest.approx(point, abs=1e-12)
    assert got["ci95"] == pytest.approx([low, high], abs=1e-12)
    assert got["a"] - got["b"] == pytest.approx(point, abs=1e-12)


def test_identical_models_differ_by_exactly_zero():
    y, pa, _ = _data(1)
    ranks = np.random.default_rng(1).integers(1, 60, N)
    got = compare_models(y, pa, pa.copy(), {"report→CT": ranks}, {"report→CT": ranks.copy()}, n_resamples=30)
    for metric, r in got.items():
        assert r["difference"] == 0.0 and r["ci95"] == [0.0, 0.0] and not r["excludes_zero"], metric


def test_pairing_detects_a_consistent_gain_that_separate_intervals_miss():
    # B's ranks are random; A equals B except 8 queries moved from rank 11 to rank 1 — a small, consistent gain.
    rng = np.random.default_rng(5)
    ranks_b = rng.integers(1, 40, 150)
    ranks_b[:8] = 11
    ranks_a = ranks_b.copy()
    ranks_a[:8] = 1

    def recall(r):
        return float(np.mean(r <= 10))

    sep_a = bootstrap_ci(recall, ranks_a, n_resamples=500, seed=0)
    sep_b = bootstrap_ci(recall, ranks_b, n_resamples=500, seed=0)
    assert sep_a.low < sep_b.high, "the separate intervals must overlap for this test to mean anything"
    paired = paired_bootstrap_ci(recall, (ranks_a,), (ranks_b,), n_resamples=500, seed=0)
    assert paired.point == pytest.approx(8 / 150)
    assert paired.low > 0


def test_recall_difference_matches_independent_loop():
    rng = np.random.default_rng(7)
    ra, rb = rng.integers(1, 30, N), rng.integers(1, 30, N)
    got = compare_ranks({"d": ra}, {"d": rb}, ks=(5,), n_resamples=300, seed=11)["d R@5"]
    draw = np.random.default_rng(11)
    diffs = []
    for _ in range(300):
        idx = draw.integers(0, N, N)
        diffs.append(np.mean(ra[idx] <= 5) - np.mean(rb[idx] <= 5))
    assert got["ci95"] == pytest.approx(np.percentile(diffs, [2.5, 97.5]).tolist(), abs=1e-12)
    assert got["difference"] == pytest.approx(np.mean(ra <= 5) - np.mean(rb <= 5))


def test_mismatched_inputs_are_refused():
    y, pa, pb = _data()
    with pytest.raises(ValueError, match="one shape"):
        compare_models(y, pa[:-1], pb)
    with pytest.raises(ValueError, match="different directions"):
        compare_models(y, pa, pb, {"a": np.ones(N)}, {"b": np.ones(N)})
    with pytest.raises(ValueError, match=r"shape \(120,\)"):
        compare_models(y, pa, pb, {"a": np.ones(N - 1)}, {"a": np.ones(N)})
    with pytest.raises(ValueError, match="row count"):
        paired_bootstrap_ci(np.mean, (np.ones(3),), (np.ones(4),))


def test_difference_table_lists_every_metric():
    y, pa, pb = _data()
    comparison = compare_models(y, pa, pb, {"d": np.arange(1, N + 1)}, {"d": np.ones(N)}, n_resamples=10)
    table = difference_table(comparison, "distilled", "naive")
    assert "distilled − naive" in table.splitlines()[0]
    assert all(f"| {metric} |" in table for metric in comparison)
