"""Evaluation core for zero-shot classification and retrieval: AUROC, thresholded metrics, bootstrap CIs, ranks.

Everything is NumPy (+ scikit-learn for AUROC); torch tensors are accepted through `np.asarray` (CPU, no grad).
Inputs follow one layout: `y_true` / `scores` are (N, L) — N volumes (rows, the unit the bootstrap resamples),
L labels. A 1-D input is read as a single label.

Undefined is explicit: a metric that has no value (AUROC of a label with one class, precision with no predicted
positive, …) is NaN per label, and every mean over labels is taken over the defined entries only, returning the
excluded indices beside it (`mean_defined`) — an undefined value never enters a mean as 0.5, 0 or NaN.

Two threshold protocols exist because they answer different questions:

* `ctclip_protocol` reproduces CT-CLIP's published numbers (threshold tuned on the evaluated set itself, so its
  F1 / accuracy / precision are optimistic) — use it only to compare with CT-CLIP's tables;
* `standard_protocol` tunes the threshold on a validation split and reports the test split — use it for claims.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "CTCLIP_THRESHOLD_GRID",
    "BootstrapCI",
    "auroc_per_label",
    "bootstrap_ci",
    "ctclip_protocol",
    "ctclip_thresholds",
    "mean_auroc",
    "mean_defined",
    "paired_bootstrap_ci",
    "rank_summary",
    "recall_at_k",
    "retrieval_ranks",
    "standard_protocol",
]

# CT-CLIP's candidate thresholds: 100 evenly spaced points on [0, 1] (0, 1/99, …, 1), as `np.linspace` makes them.
CTCLIP_THRESHOLD_GRID: np.ndarray = np.linspace(0, 1, 100)


# ----------------------------------------------------------------------------------------------------------------
# helpers


def _as_2d(x: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """(N,) → (N, 1); (N, L) as is. Labels and scores share this layout so per-label loops are uniform."""
    arr = np.asarray(x, dtype=dtype)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (N, L), got shape {arr.shape}")
    return arr


def _labels_scores(y_true: Any, scores: Any, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validate a (labels, scores) pair: same shape, labels in {0, 1}, finite scores."""
    y = _as_2d(y_true, f"{prefix}y_true")
    s = _as_2d(scores, f"{prefix}scores")
    if y.shape != s.shape:
        raise ValueError(f"{prefix}y_true {y.shape} and {prefix}scores {s.shape} differ in shape")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{prefix}y_true must be binary (0/1)")
    if not np.isfinite(s).all():
        raise ValueError(f"{prefix}scores must be finite")
    return y.astype(bool), s


def _single_class(y: np.ndarray) -> np.ndarray:
    """(L,) bool: True where a label column has only positives or only negatives."""
    n_pos = y.sum(axis=0)
    return (n_pos == 0) | (n_pos == y.shape[0])


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (undefined), without NumPy's division warnings."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _counts(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-column confusion counts (TP, FP, FN, TN) of boolean (N, L) labels and predictions."""
    tp = (pred & y).sum(axis=0)
    fp = (pred & ~y).sum(axis=0)
    fn = (~pred & y).sum(axis=0)
    tn = (~pred & ~y).sum(axis=0)
    return tp, fp, fn, tn


def _summarise(per_label: dict[str, np.ndarray], notes: list[str], **extra: Any) -> dict[str, Any]:
    """Common result layout: per-label arrays, means over defined labels, excluded indices, notes."""
    mean: dict[str, float] = {}
    excluded: dict[str, list[int]] = {}
    for name, values in per_label.items():
        mean[name], excluded[name] = mean_defined(values)
    return {**extra, "per_label": per_label, "mean": mean, "excluded": excluded, "notes": notes}


# ----------------------------------------------------------------------------------------------------------------
# AUROC


def auroc_per_label(y_true: Any, scores: Any) -> np.ndarray:
    """AUROC of each label column, all at once from ranks (Mann–Whitney U): (sum of the positives' average ranks −
    n₁(n₁+1)/2) / (n₁n₀), so tied scores count one half as in scikit-learn's `roc_auc_score` (the tests' reference).
    One sklearn call per label and resample made a 1,000-resample bootstrap of 18 labels take half a minute.

    Returns shape (L,), float64, NaN where the label has one class in `y_true` — AUROC does not exist there, and
    reporting 0.5 would pass chance off as a measurement."""
    y, s = _labels_scores(y_true, scores)
    positive = y.astype(bool)
    n1 = positive.sum(axis=0).astype(np.float64)
    n0 = y.shape[0] - n1
    u = np.where(positive, rankdata(s, axis=0), 0.0).sum(axis=0) - n1 * (n1 + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(_single_class(y), np.nan, u / (n1 * n0))


def mean_defined(values: Any) -> tuple[float, list[int]]:
    """Mean over the defined (non-NaN) entries, and the indices left out.

    Callers must report the excluded indices with the mean: a mean over 16 of 18 labels is a different number
    from one over 18. If nothing is defined the mean is NaN (and every index is listed)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    undefined = np.isnan(v)
    excluded = np.flatnonzero(undefined).tolist()
    mean = float(v[~undefined].mean()) if (~undefined).any() else float("nan")
    return mean, excluded


def mean_auroc(y: Any, p: Any) -> float:
    """Mean AUROC over the labels where it is defined — the scalar every bootstrap and validation check uses."""
    return mean_defined(auroc_per_label(y, p))[0]


# ----------------------------------------------------------------------------------------------------------------
# CT-CLIP protocol


def ctclip_thresholds(y_true: Any, scores: Any) -> np.ndarray:
    """CT-CLIP's per-label operating threshold: the grid point whose ROC point is closest to the corner (0, 1).

    For each t in `CTCLIP_THRESHOLD_GRID` (np.linspace(0, 1, 100)) the prediction is `score > t` (strict), and
    d(t) = sqrt((1 - TPR)² + FPR²). CT-CLIP keeps the running best with `d <= best`, so among equal distances the
    *last* (largest) grid threshold wins. Labels with a single class get NaN (TPR or FPR is 0/0 there; CT-CLIP's
    own code fails or keeps its initial 0 on them)."""
    y, s = _labels_scores(y_true, scores)
    grid = CTCLIP_THRESHOLD_GRID
    out = np.full(y.shape[1], np.nan)
    for j in np.flatnonzero(~_single_class(y)):
        pred = s[:, j, None] > grid[None, :]  # (N, 100)
        pos = y[:, j, None]
        tpr = (pred & pos).sum(axis=0) / pos.sum()
        fpr = (pred & ~pos).sum(axis=0) / (~pos).sum()
        # Same IEEE operations, in the same order, as the scalar formula, so equal distances tie exactly as there.
        dist = np.sqrt((1 - tpr) ** 2 + fpr**2)
        out[j] = grid[len(grid) - 1 - int(np.argmin(dist[::-1]))]  # last index of the minimum
    return out


def ctclip_protocol(y_true: Any, scores: Any) -> dict[str, Any]:
    """CT-CLIP's zero-shot metrics, reproduced from `scripts/bootstrap_values.py` (`find_threshold` and the metric
    loop under it) and `scripts/eval.py` (`evaluate_internal` → `plot_roc`: AUROC by `roc_curve` + `auc`) of
    github.com/ibrahimethemhamamci/CT-CLIP.

    `scores` must be probabilities in [0, 1], as CT-CLIP's are (softmax over the prompt pair "X is present." /
    "X is not present.", first entry), because the threshold grid covers [0, 1] only.

    Per label: threshold by `ctclip_thresholds` chosen **on this same set** (CT-CLIP has no validation split, so
    the thresholded metrics are optimistic), prediction `score > threshold`, then
      * f1_weighted — scikit-learn `f1_score(average="weighted")`: the two classes' F1 averaged with weights equal
        to their support (n_neg·F1_neg + n_pos·F1_pos) / N — not the positive-class F1;
      * accuracy — `accuracy_score`;
      * precision — `precision_score` (binary, positive class); with no predicted positive scikit-learn's default
        gives 0.0, which CT-CLIP's tables contain, so it is kept as 0.0 here and flagged in `notes`;
      * recall — binary recall of the positive class (sensitivity); CT-CLIP does not report it, added for
        completeness;
      * auroc — threshold-free.
    Labels with a single class are undefined (NaN) in every metric and excluded from the means (`notes`).

    CT-CLIP's script wraps this in a 1000-iteration "bootstrap" whose resampling is commented out (it evaluates
    the full set 1000 times); use `bootstrap_ci` for real intervals.

    Returns {"thresholds": (L,), "per_label": {metric: (L,)}, "mean": {metric: float over defined labels},
    "excluded": {metric: [label indices]}, "notes": [str]}.
    """
    y, s = _labels_scores(y_true, scores)
    if s.min() < 0 or s.max() > 1:
        raise ValueError("CT-CLIP's protocol needs probabilities in [0, 1] (its threshold grid is linspace(0, 1, 100))")
    notes: list[str] = []
    single = _single_class(y)
    for j in np.flatnonzero(single):
        kind = "positives" if y[:, j].all() else "negatives"
        notes.append(f"label {j}: only {kind}; threshold and all metrics undefined, excluded from the means")

    thresholds = ctclip_thresholds(y, s)
    pred = s > np.where(single, np.inf, thresholds)[None, :]
    tp, fp, fn, tn = _counts(y, pred)
    n = y.shape[0]
    n_pos, n_neg = tp + fn, tn + fp
    # Both classes are present on defined labels, so these denominators are > 0 there.
    f1_pos = _divide(2 * tp, 2 * tp + fp + fn)
    f1_neg = _divide(2 * tn, 2 * tn + fn + fp)
    f1_weighted = (n_pos * f1_pos + n_neg * f1_neg) / n
    accuracy = (tp + tn) / n
    no_pred_pos = (tp + fp == 0) & ~single
    precision = np.where(no_pred_pos, 0.0, _divide(tp, tp + fp))
    for j in np.flatnonzero(no_pred_pos):
        notes.append(f"label {j}: no predicted positive; precision 0.0 (scikit-learn's zero_division default)")
    recall = _divide(tp, n_pos)

    per_label = {
        "auroc": auroc_per_label(y, s),
        "f1_weighted": f1_weighted,
        "accuracy": accuracy,
        "precision": precision,
        "recall": recall,
    }
    for values in per_label.values():
        values[single] = np.nan
    return _summarise(per_label, notes, thresholds=thresholds)


# ----------------------------------------------------------------------------------------------------------------
# standard protocol


def _max_f1_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """Threshold maximising binary F1 of `score >= t` over the distinct scores t of one label.

    Scores are swept from high to low; every distinct score is a candidate (a threshold between two scores
    predicts the same as the upper one), so this is the exact maximum. Ties in F1 go to the highest threshold —
    the fewest positive calls for the same F1."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    last_of_value = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # counts at `score >= this value`
    tp, fp, cand = tp[last_of_value], fp[last_of_value], s_sorted[last_of_value]
    f1 = 2 * tp / (2 * tp + fp + (y.sum() - tp))
    return float(cand[int(np.argmax(f1))])  # first maximum = highest threshold


def standard_protocol(y_val: Any, s_val: Any, y_test: Any, s_test: Any) -> dict[str, Any]:
    """Thresholds tuned on validation, metrics measured on test — the protocol for claims.

    Per label the threshold maximises binary F1 of `score >= t` on the validation split (ties → the highest t);
    F1 is chosen because it is the headline thresholded metric, and the test split never influences the
    threshold. A label with one class on validation has no meaningful F1-optimal threshold (NaN; its test
    metrics are undefined). On test, per label: binary F1 = 2TP / (2TP + FP + FN), precision, recall (positive
    class), accuracy; each NaN where its denominator is 0 (e.g. precision with no predicted positive, recall with
    no positive). `macro_f1` is the mean binary F1 over labels with a defined F1 (= `mean["f1"]`).

    Returns {"thresholds", "per_label", "mean", "excluded", "notes", "macro_f1"}, as in `ctclip_protocol`.
    """
    yv, sv = _labels_scores(y_val, s_val, "val ")
    yt, st = _labels_scores(y_test, s_test, "test ")
    if yv.shape[1] != yt.shape[1]:
        raise ValueError(f"validation has {yv.shape[1]} labels, test {yt.shape[1]}")
    notes: list[str] = []
    thresholds = np.full(yv.shape[1], np.nan)
    for j in range(yv.shape[1]):
        if _single_class(yv[:, j : j + 1])[0]:
            notes.append(f"label {j}: one class on validation; no threshold, test metrics undefined")
        else:
            thresholds[j] = _max_f1_threshold(yv[:, j], sv[:, j])
    no_threshold = np.isnan(thresholds)
    pred = st >= np.where(no_threshold, np.inf, thresholds)[None, :]
    tp, fp, fn, tn = _counts(yt, pred)
    per_label = {
        "f1": _divide(2 * tp, 2 * tp + fp + fn),
        "precision": _divide(tp, tp + fp),
        "recall": _divide(tp, tp + fn),
        "accuracy": (tp + tn) / yt.shape[0],
    }
    for values in per_label.values():
        values[no_threshold] = np.nan
    for name, values in per_label.items():
        for j in np.flatnonzero(np.isnan(values) & ~no_threshold):
            notes.append(f"label {j}: test {name} undefined (zero denominator)")
    result = _summarise(per_label, notes, thresholds=thresholds)
    result["macro_f1"] = result["mean"]["f1"]
    return result


# ----------------------------------------------------------------------------------------------------------------
# bootstrap


class BootstrapCI(tuple):
    """`(point, low, high)` — unpacks as a 3-tuple — plus `n_dropped` / `n_resamples` as attributes."""

    point: float
    low: float
    high: float
    n_dropped: int
    n_resamples: int

    def __new__(cls, point: float, low: float, high: float, n_dropped: int, n_resamples: int) -> BootstrapCI:
        obj = super().__new__(cls, (point, low, high))
        obj.point, obj.low, obj.high = point, low, high
        obj.n_dropped, obj.n_resamples = n_dropped, n_resamples
        return obj

    def __repr__(self) -> str:
        return (
            f"BootstrapCI(point={self.point!r}, low={self.low!r}, high={self.high!r}, "
            f"n_dropped={self.n_dropped}, n_resamples={self.n_resamples})"
        )


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: Any,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap CI of a scalar `metric_fn(*arrays)`, resampling rows (volumes) with replacement.

    Rows are the unit because volumes are the independent samples; all arrays are indexed by the same row draw,
    `rng.integers(0, N, N)` per resample from `np.random.default_rng(seed)`, so results are reproducible.
    `point` is the metric on the full data; `low` / `high` are the (1 - confidence)/2 and (1 + confidence)/2
    percentiles (NumPy's linear interpolation) of the resampled metrics.

    A resample on which the metric is undefined — `metric_fn` returns NaN (as `auroc_per_label` and recent
    scikit-learn do for AUROC with one class) or raises `ValueError` (as older scikit-learn did) — is dropped, not
    replaced; how many is `result.n_dropped` (report it: many
    drops mean the interval describes only the resamples where the metric exists). All dropped → NaN bounds.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    data = [np.asarray(a) for a in arrays]
    n = data[0].shape[0]
    if any(a.shape[0] != n for a in data):
        raise ValueError(f"arrays differ in row count: {[a.shape[0] for a in data]}")

    point = float(metric_fn(*data))
    rng = np.random.default_rng(seed)
    stats: list[float] = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        try:
            value = float(metric_fn(*(a[idx] for a in data)))
        except ValueError:
            continue
        if not np.isnan(value):
            stats.append(value)
    n_dropped = n_resamples - len(stats)
    if not stats:
        return BootstrapCI(point, float("nan"), float("nan"), n_dropped, n_resamples)
    alpha = 1 - confidence
    low, high = np.percentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return BootstrapCI(point, float(low), float(high), n_dropped, n_resamples)


def paired_bootstrap_ci(
    metric_fn: Callable[..., float],
    arrays_a: Sequence[Any],
    arrays_b: Sequence[Any],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap CI of `metric_fn(*arrays_a) − metric_fn(*arrays_b)` with **the same row draw for both**.

    Two models evaluated on the same volumes are correlated (an easy volume is easy for both); resampling them
    independently, or comparing two separate intervals, ignores that and hides real differences. Here every
    resample draws one index vector `rng.integers(0, N, N)` and applies it to every array of both models, so the
    interval is that of the difference itself. `arrays_a` / `arrays_b` are the arguments of `metric_fn` for each
    model (shared inputs such as the labels go in both); all must have N rows in the same order. The draw sequence
    is the one `bootstrap_ci` uses with the same seed. Resamples where either metric is undefined (NaN or
    `ValueError`) are dropped and counted in `n_dropped`.
    """
    data_a, data_b = [np.asarray(a) for a in arrays_a], [np.asarray(b) for b in arrays_b]
    if not data_a or not data_b:
        raise ValueError("paired_bootstrap_ci needs at least one array per model")
    rows = [a.shape[0] for a in (*data_a, *data_b)]
    if len(set(rows)) != 1:
        raise ValueError(f"paired arrays differ in row count: {rows} (both models must score the same rows)")

    def difference(*stacked: np.ndarray) -> float:
        return float(metric_fn(*stacked[: len(data_a)])) - float(metric_fn(*stacked[len(data_a) :]))

    return bootstrap_ci(difference, *data_a, *data_b, n_resamples=n_resamples, seed=seed, confidence=confidence)


# ----------------------------------------------------------------------------------------------------------------
# retrieval


def _l2_normalise(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, dim), got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if not np.all(norms > 0) or not np.isfinite(norms).all():
        raise ValueError(f"{name} has zero or non-finite rows; cosine similarity is undefined for them")
    return arr / norms


def retrieval_ranks(
    queries: Any,
    gallery: Any,
    query_ids: Sequence[Any] | np.ndarray | None = None,
    gallery_ids: Sequence[Any] | np.ndarray | None = None,
    chunk_size: int = 4096,
) -> np.ndarray:
    """1-based rank, per query, of its best-ranked correct gallery item under cosine similarity.

    Both sides are L2-normalised (in float64) and scored `chunk_size` queries at a time, so memory is
    O(chunk_size × G), never the full Q × G matrix when chunk_size < Q.

    Correct means same id. Without ids the data are paired (query i ↔ gallery i; Q must equal G). With ids,
    several gallery items may share an id — a volume with several reports, or a report for several volumes, as in
    CT-CLIP's pairing — and any of them counts as a hit; other correct items never push the best one down.

    Ties are pessimistic: rank = 1 + #(incorrect items with similarity >= the best correct similarity), so a
    model that scores everything equal gets the worst rank, not the best. Ties are exact float equality.
    Returns an int64 array of shape (Q,). Every query must have at least one correct item in the gallery.
    """
    q = _l2_normalise(queries, "queries")
    g = _l2_normalise(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"queries have dim {q.shape[1]}, gallery {g.shape[1]}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if (query_ids is None) != (gallery_ids is None):
        raise ValueError("pass both query_ids and gallery_ids, or neither")
    if query_ids is None:
        if q.shape[0] != g.shape[0]:
            raise ValueError(f"paired retrieval needs as many queries as gallery items ({q.shape[0]} vs {g.shape[0]})")
        q_codes = g_codes = np.arange(q.shape[0])
    else:
        qid, gid = np.asarray(query_ids), np.asarray(gallery_ids)
        if qid.shape != (q.shape[0],) or gid.shape != (g.shape[0],):
            raise ValueError("query_ids / gallery_ids must have one id per row")
        _, codes = np.unique(np.concatenate([qid, gid]), return_inverse=True)
        q_codes, g_codes = codes[: len(qid)], codes[len(qid) :]
        missing = ~np.isin(q_codes, g_codes)
        if missing.any():
            raise ValueError(
                f"{int(missing.sum())} queries have no correct item in the gallery, e.g. index "
                f"{int(np.flatnonzero(missing)[0])}"
            )

    ranks = np.empty(q.shape[0], dtype=np.int64)
    for start in range(0, q.shape[0], chunk_size):
        stop = min(start + chunk_size, q.shape[0])
        sim = q[start:stop] @ g.T  # (chunk, G)
        correct = q_codes[start:stop, None] == g_codes[None, :]
        best = np.where(correct, sim, -np.inf).max(axis=1, keepdims=True)
        ranks[start:stop] = 1 + ((sim >= best) & ~correct).sum(axis=1)
    return ranks


def recall_at_k(ranks: Any, ks: Sequence[int] = (1, 5, 10, 50, 100)) -> dict[str, float]:
    """Recall@k = fraction of queries whose correct item ranks within the top k; keys "R@k"."""
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0 or (r < 1).any():
        raise ValueError("ranks must be a non-empty 1-D array of 1-based ranks")
    return {f"R@{k}": float(np.mean(r <= k)) for k in ks}


def rank_summary(ranks: Any) -> dict[str, float]:
    """Median and mean rank (1-based; lower is better) and the number of queries."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or (r < 1).any():
        raise ValueError("ranks must be a non-empty 1-D array of 1-based ranks")
    return {"median_rank": float(np.median(r)), "mean_rank": float(np.mean(r)), "n_queries": int(r.size)}
