"""CT-CLIP's zero-shot classification metrics, computed exactly as its published scripts do."""

from __future__ import annotations

from typing import Any

import evaluate
import numpy as np

from modeling_speechct.evaluation.metric_modules import as_matrix, score_label_features
from modeling_speechct.evaluation.metrics import ctclip_protocol

_DESCRIPTION = """
CT-CLIP's zero-shot protocol (`scripts/bootstrap_values.py` and `scripts/eval.py` of
github.com/ibrahimethemhamamci/CT-CLIP), for comparing with CT-CLIP's tables — not for claims.

Per label: AUROC; a threshold chosen **on the evaluated set itself** from linspace(0, 1, 100) as the ROC point
closest to the corner (0, 1) (ties → the largest threshold), prediction `score > threshold`, then scikit-learn's
weighted F1 (`average="weighted"`: both classes' F1 weighted by support — which is why it exceeds precision),
accuracy, binary precision (0.0 when nothing is predicted positive, as scikit-learn and CT-CLIP give, flagged in
`notes`) and recall. Because the threshold is tuned on the evaluated data, the thresholded metrics are optimistic;
the `threshold_transfer` module is the protocol with a threshold fixed on a separate split. Labels with one class
are undefined (NaN) and excluded from every mean. CT-CLIP's own "bootstrap" never resamples; this module reports
the full-set numbers it actually computes. Implemented by `modeling_speechct.evaluation.metrics.ctclip_protocol`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): P(present) in [0, 1] (CT-CLIP's softmax over the prompt pair
        "X is present." / "X is not present."), one row per volume, one column per label.
    references (`list` of `list` of `int`): ground truth 0/1, same shape.
Returns:
    thresholds (`np.ndarray`, (L,)): the chosen threshold per label (NaN where undefined).
    per_label (`dict` of `np.ndarray`): auroc, f1_weighted, accuracy, precision, recall per label.
    mean (`dict` of `float`): each metric's mean over its defined labels.
    excluded (`dict` of `list` of `int`): per metric, the label indices left out of its mean.
    notes (`list` of `str`): undefined labels and zero-division conventions.
Examples:
    >>> from modeling_speechct.evaluation.metric_modules import load_metric
    >>> ctclip = load_metric("ctclip_zero_shot")
    >>> out = ctclip.compute(predictions=[[0.9], [0.2], [0.7], [0.4]], references=[[1], [0], [1], [0]])
    >>> float(out["mean"]["f1_weighted"])
    1.0
"""

_CITATION = """\
@article{hamamci2024developing,
  title   = {Developing Generalist Foundation Models from a Multimodal Dataset for 3D Computed Tomography},
  author  = {Hamamci, Ibrahim Ethem and Er, Sezgin and Almas, Furkan and Simsek, Ayse Gulnihan and
             Esirgun, Sevval Nil and Dogan, Irem and Dasdelen, Muhammed Furkan and Durugol, Omer Faruk and
             Wittmann, Bastian and Amiranashvili, Tamaz and others},
  journal = {arXiv preprint arXiv:2403.17834},
  year    = {2024}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CtclipZeroShot(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=score_label_features(),
            homepage="https://github.com/ibrahimethemhamamci/CT-CLIP",
            codebase_urls=["https://github.com/ibrahimethemhamamci/CT-CLIP"],
            reference_urls=["https://arxiv.org/abs/2403.17834"],
        )

    def _compute(self, predictions: Any, references: Any) -> dict[str, Any]:
        return ctclip_protocol(
            as_matrix(references, "references", dtype=np.int64), as_matrix(predictions, "predictions")
        )
