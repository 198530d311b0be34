"""The standard thresholded protocol: per-label thresholds tuned on a validation split, metrics measured on test."""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np

from modeling_speechct.evaluation.metric_modules import as_matrix, score_label_features
from modeling_speechct.evaluation.metrics import standard_protocol

_DESCRIPTION = """
Thresholds chosen on validation, metrics measured on test — the protocol for claims (CT-CLIP's own protocol tunes
the threshold on the evaluated set; see the `ctclip_zero_shot` module).

Per label the threshold maximises binary F1 of `score >= t` on the validation rows (ties → the highest t); the test
rows never influence it. On test: binary F1, precision, recall (positive class) and accuracy per label, each NaN
where its denominator is 0; means over the defined labels; `macro_f1` = mean binary F1. A label with one class on
validation has no threshold and undefined test metrics. Implemented by
`modeling_speechct.evaluation.metrics.standard_protocol`.
Both splits go into one call: every row carries a `split` column naming its split, so the module also works with
`add_batch` streaming and distributed gathering (init keyword arguments would not travel with the rows, and
`evaluate` has one compute call per module instance). The split names default to "validation" and "test"; pass
`validation_split` / `test_split` to use your own (e.g. CT-RATE's "valid").
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): scores, one row per sample, one column per label.
    references (`list` of `list` of `int`): ground truth 0/1, same shape.
    split (`list` of `str`): per row, `validation_split` or `test_split`; any other value is an error.
    validation_split (`str`, defaults to "validation"): the rows thresholds are tuned on.
    test_split (`str`, defaults to "test"): the rows metrics are measured on.
Returns:
    thresholds (`np.ndarray`, (L,)), per_label (`dict` of `np.ndarray`: f1, precision, recall, accuracy),
    mean (`dict` of `float`), excluded (`dict` of `list` of `int`), notes (`list` of `str`), macro_f1 (`float`).
Examples:
    >>> from modeling_speechct.evaluation.metric_modules import load_metric
    >>> transfer = load_metric("threshold_transfer")
    >>> out = transfer.compute(
    ...     predictions=[[0.9], [0.2], [0.95], [0.3]], references=[[1], [0], [1], [0]],
    ...     split=["validation", "validation", "test", "test"])
    >>> float(out["macro_f1"])
    1.0
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ThresholdTransfer(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=score_label_features(split=datasets.Value("string")),
        )

    def _compute(
        self,
        predictions: Any,
        references: Any,
        split: Any,
        validation_split: str = "validation",
        test_split: str = "test",
    ) -> dict[str, Any]:
        if validation_split == test_split:
            raise ValueError(f"validation_split and test_split are both {test_split!r}: thresholds would see test")
        names = np.asarray(split).astype(str)
        unknown = sorted(set(names.tolist()) - {validation_split, test_split})
        if unknown:
            raise ValueError(f"split values {unknown} are neither {validation_split!r} nor {test_split!r}")
        val, test = names == validation_split, names == test_split
        for name, rows in ((validation_split, val), (test_split, test)):
            if not rows.any():
                raise ValueError(f"no row has split {name!r}; both splits go into one call")
        scores = as_matrix(predictions, "predictions")
        y = as_matrix(references, "references", dtype=np.int64)
        return standard_protocol(y[val], scores[val], y[test], scores[test])
