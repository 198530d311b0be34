"""Evaluation metrics against independent scikit-learn / NumPy re-computations and hand-derived numbers."""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from modeling_speechct.evaluation.metrics import (
    CTCLIP_THRESHOLD_GRID,
    auroc_per_label,
    bootstrap_ci,
    ctclip_protocol,
    mean_defined,
    rank_summary,
    recall_at_k,
    retrieval_ranks,
    standard_protocol,
)

# ----------------------------------------------------------------------------------------------------------------
# data


def _random_multilabel(rng: np.random.Generator, n: int, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with varied prevalence; scores in [0, 1] that carry some signal (so AUROC / thresholds vary)."""
    prevalence = rng.uniform(0.1, 0.6, n_labels)
    y = (rng.random((n, n_labels)) < prevalence).astype(int)
    y[0], y[1] = 1, 0  # both classes in every label
    logits = 1.2 * y + rng.normal(size=(n, n_labels))
    return y, 1 / (1 + np.exp(-logits))


def _adversarial() -> tuple[np.ndarray, np.ndarray]:
    """Columns: heavy ties (scores on a 0.1 grid), scores exactly on CT-CLIP's threshold grid, one positive only,
    all scores equal, all positive, no positive."""
    rng = np.random.default_rng(7)
    n = 40
    y = np.zeros((n, 6), dtype=int)
    s = np.zeros((n, 6))
    y[:, 0] = rng.random(n) < 0.4
    s[:, 0] = np.round(np.clip(0.5 + 0.3 * (y[:, 0] - 0.5) + 0.25 * rng.normal(size=n), 0, 1), 1)
    y[:, 1] = rng.random(n) < 0.5
    s[:, 1] = CTCLIP_THRESHOLD_GRID[rng.integers(0, 100, n)]
    y[3, 2] = 1
    s[:, 2] = rng.random(n)
    y[::2, 3] = 1
    s[:, 3] = 0.5
    y[:, 4] = 1
    s[:, 4] = rng.random(n)
    s[:, 5] = rng.random(n)
    return y, s


def _auroc_mann_whitney(y: np.ndarray, s: np.ndarray) -> float:
    """P(score_pos > score_neg) + ½ P(tie), over all positive–negative pairs."""
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


# ----------------------------------------------------------------------------------------------------------------
# AUROC and means


@pytest.mark.parametrize("case", ["random", "adversarial"])
def test_auroc_matches_mann_whitney_and_sklearn(case):
    y, s = _random_multilabel(np.random.default_rng(0), 80, 5) if case == "random" else _adversarial()
    got = auroc_per_label(y, s)
    assert got.shape == (y.shape[1],)
    for j in range(y.shape[1]):
        if len(np.unique(y[:, j])) < 2:
            assert np.isnan(got[j])
        else:
            assert got[j] == pytest.approx(_auroc_mann_whitney(y[:, j], s[:, j]), abs=1e-12)
            assert got[j] == pytest.approx(roc_auc_score(y[:, j], s[:, j]), abs=1e-12)


def test_undefined_auroc_is_excluded_from_mean_and_reported():
    y, s = _adversarial()
    values = auroc_per_label(y, s)
    assert np.isnan(values[[3, 4, 5]]).tolist() == [False, True, True]  # all-equal scores: defined (0.5)
    mean, excluded = mean_defined(values)
    assert excluded == [4, 5]
    expected = np.mean([_auroc_mann_whitney(y[:, j], s[:, j]) for j in (0, 1, 2, 3)])
    assert mean == pytest.approx(expected, abs=1e-12)
    # Neither 0.5 nor 0 stood in for the undefined labels.
    assert mean != pytest.approx(np.mean(np.r_[values[:4], 0.5, 0.5]))


def test_mean_defined():
    assert mean_defined([0.8, np.nan, 0.6, np.nan]) == (pytest.approx(0.7), [1, 3])
    mean, excluded = mean_defined([np.nan, np.nan])
    assert math.isnan(mean) and excluded == [0, 1]


# ----------------------------------------------------------------------------------------------------------------
# CT-CLIP protocol


def _ctclip_reference(y: np.ndarray, s: np.ndarray) -> tuple[float, dict[str, float]]:
    """Scalar statement of CT-CLIP's rule: scan linspace(0, 1, 100), predict `s > t`, keep t when
    sqrt((1-TPR)² + FPR²) <= best so far; then scikit-learn's metrics at that t."""
    best_t, best_d = math.nan, math.inf
    for t in np.linspace(0, 1, 100):
        tn, fp, fn, tp = confusion_matrix(y, (s > t).astype(int), labels=[0, 1]).ravel()
        d = math.sqrt((1 - tp / (tp + fn)) ** 2 + (fp / (fp + tn)) ** 2)
        if d <= best_d:
            best_t, best_d = t, d
    pred = (s > best_t).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        metrics = {
            "f1_weighted": f1_score(y, pred, average="weighted"),
            "accuracy": accuracy_score(y, pred),
            "precision": precision_score(y, pred),  # CT-CLIP's call: default zero_division → 0.0
            "recall": recall_score(y, pred),
            "auroc": roc_auc_score(y, s),
        }
    return best_t, metrics


@pytest.mark.parametrize("case", ["random", "adversarial"])
def test_ctclip_protocol_matches_reference(case):
    y, s = _random_multilabel(np.random.default_rng(1), 70, 6) if case == "random" else _adversarial()
    out = ctclip_protocol(y, s)
    defined = []
    for j in range(y.shape[1]):
        if len(np.unique(y[:, j])) < 2:
            assert np.isnan(out["thresholds"][j])
            assert all(np.isnan(v[j]) for v in out["per_label"].values())
            assert any(note.startswith(f"label {j}:") for note in out["notes"])
            continue
        defined.append(j)
        t, ref = _ctclip_reference(y[:, j], s[:, j])
        assert out["thresholds"][j] == t
        for name, value in ref.items():
            assert out["per_label"][name][j] == pytest.approx(value, abs=1e-12), (j, name)
    for name, values in out["per_label"].items():
        assert out["excluded"][name] == [j for j in range(y.shape[1]) if j not in defined]
        assert out["mean"][name] == pytest.approx(np.mean(values[defined]), abs=1e-12)
    if case == "adversarial":
        # All-equal scores: every grid point is at distance 1, the last (t = 1) wins, nothing is predicted positive.
        assert out["thresholds"][3] == 1.0
        assert out["per_label"]["precision"][3] == 0.0
        assert any(note.startswith("label 3: no predicted positive") for note in out["notes"])


def test_ctclip_protocol_hand_worked_example():
    # Derivation (CT-CLIP: t over linspace(0, 1, 100) = k/99, predict s > t, d = sqrt((1-TPR)² + FPR²), ties → last t).
    # Label 0: y = 1 1 0 0, s = .8 .4 .6 .2
    #   k 0..19  (t < .2):      all predicted        TPR 1,  FPR 1   d = 1
    #   k 20..39 (.2 <= t < .4): {.8 .4 .6}          TPR 1,  FPR .5  d = .5
    #   k 40..59 (.4 <= t < .6): {.8 .6}             TPR .5, FPR .5  d = .707
    #   k 60..79 (.6 <= t < .8): {.8}                TPR .5, FPR 0   d = .5   (exactly equal to k 20..39)
    #   k 80..99 (t >= .8):     none                TPR 0,  FPR 0   d = 1
    #   → last minimum k = 79, t = 79/99 (a first-wins rule would give k = 20); pred 1 0 0 0: TP 1 FN 1 FP 0 TN 2.
    #   accuracy 3/4; precision 1/1; recall 1/2;
    #   weighted F1 = (n_pos·F1_pos + n_neg·F1_neg)/N = (2·(2·1/(2+0+1)) + 2·(2·2/(4+1+0)))/4 = (2/3 + 4/5)/2 = 11/15;
    #   AUROC: pos–neg pairs (.8,.6) (.8,.2) (.4,.6) (.4,.2) → 3 of 4 ordered = 3/4.
    # Label 1: y = 1 1 0 0, s = 0 .9 0 .95
    #   k 0..89 (t <= 89/99 < .9): {.9 .95}          TPR .5, FPR .5  d = .707 (s = 0 is never > t: strict)
    #   k 90..94 (.9 < t < .95):   {.95}              TPR 0,  FPR .5  d = 1.118
    #   k 95..99:                  none               d = 1
    #   → k = 89, t = 89/99; pred 0 1 0 1: TP 1 FN 1 FP 1 TN 1: accuracy, precision, recall, F1_pos, F1_neg all 1/2,
    #   weighted F1 1/2; AUROC: (0 vs 0) tie ½, (0 vs .95) 0, (.9 vs 0) 1, (.9 vs .95) 0 → 1.5/4 = 3/8.
    # Label 2: all positive → undefined everywhere, excluded from the means.
    # Means over labels 0, 1: F1 (11/15 + 1/2)/2 = 37/60; accuracy 5/8; precision 3/4; recall 1/2; AUROC 9/16.
    y = np.array([[1, 1, 1], [1, 1, 1], [0, 0, 1], [0, 0, 1]])
    s = np.array([[0.8, 0.0, 0.3], [0.4, 0.9, 0.7], [0.6, 0.0, 0.1], [0.2, 0.95, 0.9]])
    out = ctclip_protocol(y, s)
    np.testing.assert_allclose(out["thresholds"][:2], [79 / 99, 89 / 99], rtol=0, atol=1e-15)
    assert np.isnan(out["thresholds"][2])
    expected = {
        "f1_weighted": [11 / 15, 1 / 2],
        "accuracy": [3 / 4, 1 / 2],
        "precision": [1, 1 / 2],
        "recall": [1 / 2, 1 / 2],
        "auroc": [3 / 4, 3 / 8],
    }
    means = {"f1_weighted": 37 / 60, "accuracy": 5 / 8, "precision": 3 / 4, "recall": 1 / 2, "auroc": 9 / 16}
    for name, values in expected.items():
        np.testing.assert_allclose(out["per_label"][name][:2], values, rtol=0, atol=1e-12, err_msg=name)
        assert np.isnan(out["per_label"][name][2])
        assert out["mean"][name] == pytest.approx(means[name], abs=1e-12)
        assert out["excluded"][name] == [2]
    assert any("label 2: only positives" in note for note in out["notes"])


def test_ctclip_protocol_rejects_non_probabilities():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ctclip_protocol(np.array([1, 0, 1]), np.array([2.0, 0.1, 0.3]))


# ----------------------------------------------------------------------------------------------------------------
# standard protocol


def _max_f1_threshold_reference(y: np.ndarray, s: np.ndarray) -> float:
    """Brute force: every distinct validation score as `s >= t`, scikit-learn's F1, ties → highest t."""
    best_t, best_f1 = math.nan, -1.0
    for t in np.unique(s)[::-1]:
        f1 = f1_score(y, (s >= t).astype(int), zero_division=0)
        if f1 > best_f1:
            best_t, best_f1 = t, f1
    return best_t


@pytest.mark.parametrize("case", ["random", "adversarial"])
def test_standard_protocol_matches_sklearn(case):
    rng = np.random.default_rng(2)
    if case == "random":
        y_val, s_val = _random_multilabel(rng, 90, 5)
        y_test, s_test = _random_multilabel(rng, 110, 5)
    else:
        y, s = _adversarial()
        y_val, s_val, y_test, s_test = y[:20], s[:20], y[20:].copy(), s[20:]
        y_test[:, 0] = 0  # a defined threshold, but no positive on test: recall and maybe F1 undefined
    out = standard_protocol(y_val, s_val, y_test, s_test)
    n_labels = y_val.shape[1]
    for j in range(n_labels):
        if len(np.unique(y_val[:, j])) < 2:
            assert np.isnan(out["thresholds"][j])
            assert all(np.isnan(v[j]) for v in out["per_label"].values())
            continue
        t = _max_f1_threshold_reference(y_val[:, j], s_val[:, j])
        assert out["thresholds"][j] == t
        pred = (s_test[:, j] >= t).astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            ref = {
                "f1": f1_score(y_test[:, j], pred, zero_division=np.nan),
                "precision": precision_score(y_test[:, j], pred, zero_division=np.nan),
                "recall": recall_score(y_test[:, j], pred, zero_division=np.nan),
                "accuracy": accuracy_score(y_test[:, j], pred),
            }
        for name, value in ref.items():
            got = out["per_label"][name][j]
            assert (np.isnan(got) and np.isnan(value)) or got == pytest.approx(value, abs=1e-12), (j, name)
    for name, values in out["per_label"].items():
        undefined = [j for j in range(n_labels) if np.isnan(values[j])]
        assert out["excluded"][name] == undefined
        assert out["mean"][name] == pytest.approx(np.nanmean(values), abs=1e-12)
    assert out["macro_f1"] == out["mean"]["f1"]
    if case == "random":
        preds = (s_test >= out["thresholds"]).astype(int)
        assert out["macro_f1"] == pytest.approx(f1_score(y_test, preds, average="macro"), abs=1e-12)
    else:
        assert np.isnan(out["per_label"]["recall"][0]) and 0 in out["excluded"]["recall"]
        assert np.isnan(out["thresholds"][[4, 5]]).all()  # all-positive / no-positive on validation
        assert out["excluded"]["accuracy"] == [4, 5]


def test_standard_protocol_hand_worked_tie():
    # Validation y = 1 0 0 1 0, s = .9 .8 .7 .6 .1; F1 of `s >= t` = 2TP / (2TP + FP + FN), P = 2:
    #   t = .9: TP 1 FP 0 → 2/3;  t = .8: 2/4;  t = .7: 2/5;  t = .6: TP 2 FP 2 → 4/6 = 2/3;  t = .1: 4/7.
    #   Tie at 2/3 between .9 and .6 → the highest, .9.
    # Test y = 1 1 0 0, s = .95 .7 .3 .1 at t = .9: pred 1 0 0 0 → F1 2/3, precision 1, recall 1/2, accuracy 3/4
    # (t = .6 would have given F1 1).
    out = standard_protocol(
        np.array([1, 0, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.6, 0.1]), np.array([1, 1, 0, 0]), [0.95, 0.7, 0.3, 0.1]
    )
    assert out["thresholds"].tolist() == [0.9]
    expected = {"f1": 2 / 3, "precision": 1.0, "recall": 0.5, "accuracy": 0.75}
    assert {k: float(v[0]) for k, v in out["per_label"].items()} == pytest.approx(expected, abs=1e-12)
    assert out["macro_f1"] == pytest.approx(2 / 3, abs=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# bootstrap


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    """AUROC that raises ValueError on one class (recent scikit-learn warns and returns NaN instead)."""
    if len(np.unique(y)) < 2:
        raise ValueError("one class")
    return float(roc_auc_score(y, s))


def test_bootstrap_is_a_seeded_row_percentile_bootstrap():
    rng = np.random.default_rng(3)
    y = (rng.random(150) < 0.3).astype(int)
    s = y + rng.normal(size=150)
    ci = bootstrap_ci(_auroc, y, s, n_resamples=300, seed=11, confidence=0.9)
    # Independent re-computation: same generator, row indices per resample, 5th / 95th percentiles.
    draw = np.random.default_rng(11)
    stats = []
    for _ in range(300):
        idx = draw.integers(0, 150, 150)
        stats.append(roc_auc_score(y[idx], s[idx]))
    assert ci.point == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert ci.low == pytest.approx(np.percentile(stats, 5), abs=1e-12)
    assert ci.high == pytest.approx(np.percentile(stats, 95), abs=1e-12)
    assert ci.n_dropped == 0
    point, low, high = ci
    assert (point, low, high) == (ci.point, ci.low, ci.high)
    assert bootstrap_ci(_auroc, y, s, n_resamples=300, seed=12).low != ci.low


def test_bootstrap_interval_contains_point_and_shrinks_with_n():
    rng = np.random.default_rng(4)
    widths = {}
    for n in (200, 5000):
        y = (rng.random(n) < 0.3).astype(int)
        s = y + 1.5 * rng.normal(size=n)
        point, low, high = bootstrap_ci(_auroc, y, s, n_resamples=200, seed=0)
        assert low < point < high
        widths[n] = high - low
    # Width scales like 1/sqrt(n): 5000 rows should be about 5x narrower than 200.
    assert widths[5000] < widths[200] / 3


def test_bootstrap_width_of_a_mean_matches_theory():
    x = np.random.default_rng(5).normal(size=2000)
    point, low, high = bootstrap_ci(np.mean, x, n_resamples=1000, seed=0, confidence=0.95)
    assert point == pytest.approx(x.mean())
    theory = 2 * 1.959964 * x.std() / math.sqrt(x.size)
    assert high - low == pytest.approx(theory, rel=0.15)
    _, low99, high99 = bootstrap_ci(np.mean, x, n_resamples=1000, seed=0, confidence=0.99)
    assert high99 - low99 > high - low


def test_bootstrap_drops_and_counts_undefined_resamples():
    y = np.zeros(25, dtype=int)
    y[[3, 17]] = 1  # rare positives: many resamples have none
    s = np.random.default_rng(6).random(25)
    draw = np.random.default_rng(0)
    expected_dropped = sum(y[draw.integers(0, 25, 25)].sum() == 0 for _ in range(400))
    assert expected_dropped > 0
    raising = bootstrap_ci(_auroc, y, s, n_resamples=400, seed=0)
    # the same AUROC, returning NaN on one class instead of raising (auroc_per_label's ranks differ from sklearn
    # in the last bit, which is not what this test is about)
    nan_returning = bootstrap_ci(
        lambda a, b: _auroc(a, b) if len(np.unique(a)) > 1 else float("nan"), y, s, n_resamples=400, seed=0
    )
    assert raising.n_dropped == nan_returning.n_dropped == expected_dropped
    assert raising.n_resamples == 400
    assert (raising.low, raising.high) == (nan_returning.low, nan_returning.high)
    assert not math.isnan(raising.low)


# ----------------------------------------------------------------------------------------------------------------
# retrieval


def _ranks_reference(q: np.ndarray, g: np.ndarray, qid: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Full Q×G cosine matrix; sort each row by score descending with incorrect items first among ties
    (pessimistic); rank = 1 + position of the first correct item."""
    sim = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T
    ranks = []
    for i in range(q.shape[0]):
        correct = gid == qid[i]
        order = np.lexsort((correct, -sim[i]))  # last key primary: score desc; then False (incorrect) first
        ranks.append(1 + int(np.flatnonzero(correct[order])[0]))
    return np.array(ranks)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 10_000])
def test_retrieval_ranks_paired_match_full_matrix(chunk_size):
    rng = np.random.default_rng(8)
    g = rng.normal(size=(64, 16))
    q = g + 1.5 * rng.normal(size=(64, 16))  # noisy pairs: ranks spread over 1..64
    got = retrieval_ranks(q.astype(np.float32), g, chunk_size=chunk_size)
    ref = _ranks_reference(q.astype(np.float32).astype(np.float64), g, np.arange(64), np.arange(64))
    np.testing.assert_array_equal(got, ref)
    assert got.min() == 1 and got.max() > 5


@pytest.mark.parametrize("chunk_size", [1, 5, 37, 1000])
def test_retrieval_ranks_duplicate_ids_and_ties_match_full_matrix(chunk_size):
    # ±1 vectors in 16 dims: normalised entries are ±1/4, so every cosine is exact and ties are real ties.
    rng = np.random.default_rng(9)
    g = rng.choice([-1.0, 1.0], size=(50, 16))
    g[10:20] = g[0:10]  # duplicated gallery vectors → exact score ties between different ids
    gid = rng.integers(0, 20, 50)  # several gallery items per id (a volume with several reports)
    qid = rng.choice(np.unique(gid), 37)
    q = g[rng.integers(0, 50, 37)].copy()
    q[:, :3] *= -1
    got = retrieval_ranks(q, g, qid, gid, chunk_size=chunk_size)
    np.testing.assert_array_equal(got, _ranks_reference(q, g, qid, gid))
    sim = q @ g.T
    assert any(len(np.unique(row)) < row.size for row in sim)  # the ties are there


def test_retrieval_ties_are_pessimistic():
    g = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    gid = np.array(["a", "b", "c", "b"])
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    # query "b": correct items 1 and 3 tie with incorrect item 0 → rank 2 (not 1); query "a" likewise ties with
    # 1 and 3 (incorrect for it) → rank 3.
    np.testing.assert_array_equal(retrieval_ranks(np.vstack([q[0], q[0]]), g, ["b", "a"], gid), [2, 3])
    # All-equal similarities: the correct item ranks last among 4.
    flat = np.ones((4, 3))
    np.testing.assert_array_equal(retrieval_ranks(flat, flat, chunk_size=2), [4, 4, 4, 4])
    with pytest.raises(ValueError, match="no correct item"):
        retrieval_ranks(q, g, ["z", "a"], gid)


def test_retrieval_memory_is_bounded_by_chunk():
    rng = np.random.default_rng(10)
    q, g = rng.normal(size=(1500, 8)), rng.normal(size=(1500, 8))
    full_matrix_bytes = 1500 * 1500 * 8
    tracemalloc.start()
    try:
        retrieval_ranks(q, g, chunk_size=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < full_matrix_bytes / 4


def test_recall_at_k_and_rank_summary():
    rng = np.random.default_rng(11)
    ranks = rng.integers(1, 300, 501)
    got = recall_at_k(ranks, ks=(1, 5, 10, 50, 100))
    for k in (1, 5, 10, 50, 100):
        assert got[f"R@{k}"] == pytest.approx(np.count_nonzero(ranks <= k) / ranks.size)
    summary = rank_summary(ranks)
    assert summary["median_rank"] == float(np.sort(ranks)[250])
    assert summary["mean_rank"] == pytest.approx(ranks.sum() / ranks.size)
    assert summary["n_queries"] == 501
    assert recall_at_k([1, 2, 3, 6], ks=(1, 5)) == {"R@1": 0.25, "R@5": 0.75}
