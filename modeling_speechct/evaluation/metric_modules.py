"""Our `evaluate` metric modules: shipped inside the package, loaded by path, never fetched from the Hub.

`evaluate.load("name")` downloads a script from the Hub; ours live in `evaluate_metrics/<name>/<name>.py` (evaluate
requires the script to be named as its folder) and `load_metric(name)` loads that folder, which needs no network.
Each module is packaging only: it calls the implementation in `metrics.py`, so the two can never disagree.

    from modeling_speechct.evaluation.metric_modules import load_metric
    auroc = load_metric("multilabel_auroc")
    auroc.compute(predictions=scores, references=labels)  # (N, L) each: rows = volumes, columns = labels

evaluate copies the script into its modules cache (`$HF_MODULES_CACHE`, default `~/.cache/huggingface/modules`)
and creates an (empty, with the default `keep_in_memory=True`) folder under `cache_dir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METRICS_DIR", "METRIC_MODULES", "as_matrix", "load_metric", "metric_path", "score_label_features"]

METRICS_DIR = Path(__file__).with_name("evaluate_metrics")
METRIC_MODULES = ("multilabel_auroc", "ctclip_zero_shot", "threshold_transfer", "retrieval_recall")


def metric_path(name: str) -> Path:
    """Folder of module `name`; refuses unknown names (a typo would otherwise fall through to a Hub download)."""
    if name not in METRIC_MODULES:
        raise ValueError(f"unknown metric module {name!r}; ours are {', '.join(METRIC_MODULES)}")
    return METRICS_DIR / name


def load_metric(name: str, config_name: str | None = None, keep_in_memory: bool = True, **kwargs: Any):
    """`evaluate.load` of our module `name` from its folder in the package.

    `keep_in_memory=True` by default: a single process never writes Arrow cache files. For a distributed
    evaluation pass `keep_in_memory=False, num_process=…, process_id=…` (evaluate gathers the rows through
    `cache_dir`). Other keyword arguments go to `evaluate.load` (`cache_dir`, `experiment_id`, …)."""
    import evaluate

    return evaluate.load(str(metric_path(name)), config_name, keep_in_memory=keep_in_memory, **kwargs)


def as_matrix(values: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """Rows of a list feature → (N, L) array; ragged rows (a different number of entries per row) are an error.

    Inputs reach `_compute` as Python lists on purpose: `datasets`' NumPy format casts floats to float32, which
    would move scores across thresholds and break ties that exist in float64."""
    try:
        arr = np.asarray(values, dtype=dtype)
    except ValueError as err:
        raise ValueError(f"every row of {name} must have the same length (one entry per column)") from err
    if arr.ndim != 2:
        raise ValueError(f"{name} must have one list per row, got shape {arr.shape}")
    return arr


def score_label_features(**extra: Any):
    """The input schema the multi-label modules share: per row, one score and one 0/1 truth per label (+ `extra`
    columns, e.g. the threshold transfer's `split`)."""
    import datasets

    return datasets.Features(
        {
            "predictions": datasets.Sequence(datasets.Value("float64")),
            "references": datasets.Sequence(datasets.Value("int32")),
            **extra,
        }
    )
