"""`metrics.auroc_per_label` (by ranks) equals scikit-learn per label — ties, single-class labels and all."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from modeling_speechct.evaluation.metrics import auroc_per_label as rank_auroc
from modeling_speechct.evaluation.metrics import mean_auroc as rank_mean_auroc


def test_rank_auroc_equals_sklearn_with_ties_and_undefined_labels():
    rng = np.random.default_rng(4)
    y = (rng.random((60, 6)) < 0.3).astype(int)
    y[:, 4] = 0  # one class only: undefined
    y[:, 5] = 1
    scores = np.round(rng.random((60, 6)), 1)  # coarse: many ties
    expected = [roc_auc_score(y[:, j], scores[:, j]) if 0 < y[:, j].sum() < 60 else np.nan for j in range(6)]
    np.testing.assert_allclose(rank_auroc(y, scores), expected, rtol=0, atol=1e-12)
    assert rank_mean_auroc(y, scores) == pytest.approx(np.nanmean(expected), abs=1e-12)
    assert rank_auroc(y[:, 0], scores[:, 0]) == pytest.approx(expected[0], abs=1e-12)  # 1-D: one label


def test_rank_auroc_edge_cases():
    assert np.isnan(rank_mean_auroc(np.zeros((5, 2)), np.ones((5, 2))))
    assert rank_auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])[0] == 1.0
    assert rank_auroc([0, 1], [0.5, 0.5])[0] == 0.5
    with pytest.raises(ValueError, match="differ in shape"):
        rank_auroc(np.zeros((4, 2)), np.zeros((4, 3)))
