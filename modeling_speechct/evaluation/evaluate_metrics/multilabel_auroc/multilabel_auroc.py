"""Per-label AUROC of multi-label scores, the mean over the labels where AUROC exists, and the labels left out."""

from __future__ import annotations

from typing import Any

import evaluate
import numpy as np

from modeling_speechct.evaluation.metric_modules import as_matrix, score_label_features
from modeling_speechct.evaluation.metrics import auroc_per_label, bootstrap_ci, mean_defined

_DESCRIPTION = """
Area under the ROC curve of every label of a multi-label task (scikit-learn's `roc_auc_score`; tied scores count
one half), and their mean over the labels where AUROC is defined.

A label whose references hold one class only (no positive, or no negative) has no AUROC: it is NaN in `per_label`,
left out of the mean, listed in `excluded` and explained in `notes`. It never enters the mean as 0.5 (that would
pass chance off as a measurement) or 0.

With `n_resamples > 0` a percentile bootstrap interval of the mean is added: rows (volumes) are resampled with
replacement; resamples on which no label is defined are dropped and counted (`bootstrap_dropped`).
Implemented by `modeling_speechct.evaluation.metrics.auroc_per_label`, `mean_defined` and `bootstrap_ci`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): scores, one row per sample (volume), one column per label; any real
        numbers (higher = more likely positive), e.g. zero-shot P(present).
    references (`list` of `list` of `int`): ground truth 0/1, same shape as `predictions`.
    label_names (`list` of `str`, *optional*): one name per column; adds `excluded_labels`.
    n_resamples (`int`, defaults to 0): bootstrap resamples for a confidence interval of the mean (0 = none).
    seed (`int`, defaults to 0): the bootstrap's `np.random.default_rng` seed.
    confidence (`float`, defaults to 0.95): the interval's coverage.
Returns:
    per_label (`np.ndarray`, (L,)): AUROC per label, NaN where undefined.
    mean (`float`): mean over the defined labels (NaN if none is defined).
    excluded (`list` of `int`): column indices left out of the mean.
    excluded_labels (`list` of `str`): their names, when `label_names` is given.
    notes (`list` of `str`): why each excluded label is undefined.
    ci (`list` of two `float`), confidence, n_resamples, bootstrap_dropped: when `n_resamples > 0`.
Examples:
    >>> from modeling_speechct.evaluation.metric_modules import load_metric
    >>> auroc = load_metric("multilabel_auroc")
    >>> out = auroc.compute(predictions=[[0.9, 0.2], [0.1, 0.4], [0.6, 0.3]], references=[[1, 0], [0, 0], [1, 0]])
    >>> float(out["mean"]), out["excluded"]
    (1.0, [1])
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultilabelAuroc(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=score_label_features(),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.roc_auc_score.html"],
        )

    def _compute(
        self,
        predictions: Any,
        references: Any,
        label_names: list[str] | None = None,
        n_resamples: int = 0,
        seed: int = 0,
        confidence: float = 0.95,
    ) -> dict[str, Any]:
        scores = as_matrix(predictions, "predictions")
        y = as_matrix(references, "references", dtype=np.int64)
        if label_names is not None and len(label_names) != y.shape[1]:
            raise ValueError(f"label_names has {len(label_names)} names for {y.shape[1]} label columns")
        if n_resamples < 0:
            raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
        per_label = auroc_per_label(y, scores)
        mean, excluded = mean_defined(per_label)
        notes = []
        for j in excluded:
            kind = "positives" if y[:, j].all() else "negatives"
            name = f" ({label_names[j]})" if label_names is not None else ""
            notes.append(f"label {j}{name}: only {kind}; AUROC undefined, excluded from the mean")
        result: dict[str, Any] = {"per_label": per_label, "mean": mean, "excluded": excluded}
        if label_names is not None:
            result["excluded_labels"] = [label_names[j] for j in excluded]
        result["notes"] = notes
        if n_resamples:
            ci = bootstrap_ci(_mean_auroc, y, scores, n_resamples=n_resamples, seed=seed, confidence=confidence)
            result.update(
                ci=[ci.low, ci.high], confidence=confidence, n_resamples=n_resamples, bootstrap_dropped=ci.n_dropped
            )
        return result


def _mean_auroc(y: np.ndarray, scores: np.ndarray) -> float:
    return mean_defined(auroc_per_label(y, scores))[0]
