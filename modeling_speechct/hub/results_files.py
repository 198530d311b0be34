"""The evaluation JSON files a model card reads: which kind a file is (`results_kind`) and loading it (`load_results`).

Three scripts write them; the keys the card reads are:

* `eval/zero_shot.py` → `zero_shot.json` (`auroc.mean`, `auroc.per_label`, `ctclip_protocol.mean.*`,
  `standard_protocol.mean.*`, `data.split`, `modality`, `labels`);
* `eval/retrieval.py` → `retrieval.json` (`results` → direction → `R@k`, `median_rank`, `mean_rank`);
* `train/run_benchmark.py` → `results.json` (`results` → model name → `auroc`, `ctclip_f1_weighted`, …,
  `retrieval_report_to_ct` → `R@k`), one entry of which is this model.

A module of its own because reading is used apart from the card: `publish.export_folder` loads every file first (to
fail before anything is written) and ships them with the folder; `model_index` turns the loaded figures into the
card's evaluation sections.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ResultsFile:
    """One evaluation JSON: `kind` is "zero_shot" (eval/zero_shot.py), "retrieval" (eval/retrieval.py) or
    "benchmark" (train/run_benchmark.py's results.json)."""

    kind: str
    data: dict[str, Any]
    path: Path | None = None


def results_kind(data: Mapping[str, Any]) -> str:
    if "ctclip_protocol" in data and isinstance(data.get("auroc"), Mapping):
        return "zero_shot"
    results = data.get("results")
    if isinstance(results, Mapping) and results:
        first = next(iter(results.values()))
        if isinstance(first, Mapping) and "ctclip_f1_weighted" in first:
            return "benchmark"
        if isinstance(first, Mapping) and any(str(k).startswith("R@") for k in first):
            return "retrieval"
    raise ValueError(
        "not an evaluation result this card understands: expected eval/zero_shot.py's zero_shot.json, "
        "eval/retrieval.py's retrieval.json or train/run_benchmark.py's results.json"
    )


def load_results(path: str | os.PathLike) -> ResultsFile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))  # Python's json reads the NaN run_benchmark writes
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read as JSON ({err})") from err
    try:
        return ResultsFile(results_kind(data), data, path)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


__all__ = ["ResultsFile", "load_results"]
