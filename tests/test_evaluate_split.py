"""`evaluate_split`, the main job's scoring step: its AUROC and CI against sklearn on random embeddings."""

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from modeling_speechct.evaluation.split import evaluate_split
from modeling_speechct.zero_shot import pair_probabilities


def test_evaluate_split_auroc_matches_sklearn_and_its_interval_holds_it():
    rng = np.random.default_rng(0)
    ct = {s: torch.from_numpy(rng.normal(size=(40, 8)).astype(np.float32)) for s in ("test", "valid")}
    labels = {s: rng.integers(0, 2, size=(40, 3)) for s in ("test", "valid")}
    prompts = (torch.from_numpy(rng.normal(size=(3, 8)).astype(np.float32)),
               torch.from_numpy(rng.normal(size=(3, 8)).astype(np.float32)))  # fmt: skip
    result = evaluate_split(ct, labels, prompts, 10.0, ct["test"] + 0.1, n_resamples=200, seed=0)
    probs = pair_probabilities(ct["test"], *prompts, 10.0).double().numpy()
    expected = np.mean([roc_auc_score(labels["test"][:, j], probs[:, j]) for j in range(3)])
    assert abs(result["auroc"] - expected) < 1e-6
    low, high = result["auroc_ci95"]
    assert low <= expected <= high and high - low > 0
