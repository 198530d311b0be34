"""AcuLa's evaluation: a linear probe per task on frozen audio embeddings, and whether one tower beats another.

Each task of an AcuLa manifest is a binary label known on a subset of recordings (wheeze on lung recordings only,
say), so every task gets its own `linear_probe` over the rows where it is known — the paper's protocol: features
standardised on train, L2 logistic regression, C chosen on validation, 5 seeds, AUROC mean ± std per task and
over tasks.

Two towers are compared on the same test recordings with a **paired interval over seeds and bootstrap**: a draw
picks one probe seed and resamples test *patients* with replacement (a patient's recordings travel together: they
share a patient and are not independent), then takes both towers' mean AUROC over tasks on those rows with that
seed's scores; the interval is the percentile range of the difference. The point is the mean over seeds of the
difference on the whole test split. So the interval holds both what the probe's training rows do (seeds) and what
the test sample does (bootstrap), and the pairing removes what the two towers share (an easy patient is easy for
both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from ..data.auscultation.manifest import ProbeTask, Recording
from .linear_probe import DEFAULT_C_GRID, DEFAULT_SEEDS, DEFAULT_TRAIN_FRACTION, linear_probe

__all__ = ["GROUPS", "compare_probes", "probe_tasks", "task_labels"]

# The summaries a comparison reports: every task, and the tasks of each kind (`ProbeTask.depends_on`).
GROUPS = ("all tasks", "acoustics tasks", "metadata tasks")


def task_labels(recordings: Sequence[Recording], tasks: Sequence[ProbeTask]) -> np.ndarray:
    """(recordings, tasks) float array of 0/1 labels, NaN where a recording has no label for a task."""
    out = np.full((len(recordings), len(tasks)), np.nan)
    for i, recording in enumerate(recordings):
        for j, task in enumerate(tasks):
            if task.label in recording.labels:
                out[i, j] = recording.labels[task.label]
    return out


def _group_members(tasks: Sequence[ProbeTask]) -> dict[str, np.ndarray]:
    kinds = np.array([t.depends_on for t in tasks])
    return {"all tasks": np.ones(len(tasks), dtype=bool), "acoustics tasks": kinds == "acoustics",
            "metadata tasks": kinds == "metadata"}  # fmt: skip


def probe_tasks(
    features: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    tasks: Sequence[ProbeTask],
    seeds: Sequence[int] = DEFAULT_SEEDS,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
) -> dict[str, Any]:
    """Probe every task on `features` {"train", "valid", "test": (N, D)} with `labels` {split: `task_labels`}.

    Returns {"tasks", "per_task": {name: {"mean", "std", "per_seed", "C"}}, "per_seed" (mean over tasks per seed),
    "mean", "std", "groups": {group: {"mean", "std"}}, "scores": (seeds, N_test, tasks) with NaN where a task is
    unknown, "notes"}. A task undefined on a split (one class) is NaN and left out of every mean, with a note."""
    missing = {"train", "valid", "test"} - set(features)
    if missing:
        raise ValueError(f"features: missing split(s) {sorted(missing)}")
    for split, x in features.items():
        if len(x) != len(labels[split]):
            raise ValueError(f"{split}: {len(x)} feature rows but {len(labels[split])} label rows")
        if labels[split].shape[1] != len(tasks):
            raise ValueError(f"{split}: {labels[split].shape[1]} label columns for {len(tasks)} tasks")
    seeds = [int(s) for s in seeds]
    n_test = len(features["test"])
    scores = np.full((len(seeds), n_test, len(tasks)), np.nan)
    per_task: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    auroc = np.full((len(seeds), len(tasks)), np.nan)
    for j, task in enumerate(tasks):
        known = {split: ~np.isnan(y[:, j]) for split, y in labels.items()}
        pairs = {split: (features[split][known[split]], labels[split][known[split], j].astype(int))
                 for split in ("train", "valid", "test")}  # fmt: skip
        empty = [split for split, (_, y) in pairs.items() if len(y) == 0]
        if empty:
            notes.append(f"{task.name}: no labelled recordings in {', '.join(empty)}; undefined")
            per_task[task.name] = {"mean": float("nan"), "std": float("nan"), "per_seed": [float("nan")] * len(seeds)}
            continue
        result = linear_probe(pairs["train"], pairs["test"], pairs["valid"], seeds=seeds,
                              train_fraction=train_fraction, c_grid=c_grid, label_names=[task.name],
                              keep_scores=True)  # fmt: skip
        notes += [f"{task.name}: {note}" for note in result["notes"]]
        for s, entry in enumerate(result["per_seed"]):
            auroc[s, j] = entry["per_label"][0]
            scores[s, known["test"], j] = entry["scores"][:, 0]
        per_task[task.name] = {"mean": float(result["per_label"]["mean"][0]),
                               "std": float(result["per_label"]["std"][0]), "per_seed": auroc[:, j].tolist(),
                               "C": [float(e["C"][0]) for e in result["per_seed"]],
                               "n": {split: int(known[split].sum()) for split in known}}  # fmt: skip
    groups = {}
    for group, members in _group_members(tasks).items():
        defined = members & ~np.isnan(auroc).any(axis=0)
        per_seed = auroc[:, defined].mean(axis=1) if defined.any() else np.full(len(seeds), np.nan)
        groups[group] = {"mean": float(per_seed.mean()), "std": float(per_seed.std()), "per_seed": per_seed.tolist(),
                         "tasks": [t.name for t, d in zip(tasks, defined, strict=True) if d]}  # fmt: skip
    overall = groups["all tasks"]
    return {"tasks": [t.name for t in tasks], "depends_on": [t.depends_on for t in tasks], "seeds": seeds,
            "per_task": per_task, "per_seed": overall["per_seed"], "mean": overall["mean"], "std": overall["std"],
            "groups": groups, "scores": scores, "notes": notes}  # fmt: skip


def _task_aurocs(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC per task column over the rows where the task is known; NaN where only one class is present."""
    out = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        known = ~np.isnan(y[:, j])
        yj = y[known, j]
        if 0 < yj.sum() < len(yj):
            out[j] = roc_auc_score(yj, scores[known, j])
    return out


def compare_probes(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    patients: Sequence[str],
    tasks: Sequence[ProbeTask],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, dict[str, Any]]:
    """A − B of the probes' AUROC on the same test rows, per task and per `GROUPS` entry, paired over seeds and a
    patient bootstrap (module docstring). `labels` (N, T) as `task_labels`; `scores_*` (seeds, N, T) as
    `probe_tasks(...)["scores"]`; `patients` (N,) the patient of each row.

    Draws: `rng = np.random.default_rng(seed)`; per resample a seed index `rng.integers(S)`, then patients
    `rng.integers(0, P, P)` into the sorted distinct patients, whose rows (in test order) are concatenated. A draw
    on which a summary is undefined (a task with one class; both towers' sets of defined tasks always agree, since
    they share labels) leaves that task out of its group's mean; a draw with no defined task is dropped and
    counted in `n_dropped`."""
    y = np.asarray(labels, dtype=np.float64)
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3 or a.shape[1:] != y.shape:
        raise ValueError(f"scores_a {a.shape} and scores_b {b.shape} must both be (seeds, {y.shape[0]}, "
                         f"{y.shape[1]}) for labels {y.shape}")  # fmt: skip
    if len(patients) != y.shape[0]:
        raise ValueError(f"{len(patients)} patients for {y.shape[0]} test rows")
    if len(tasks) != y.shape[1]:
        raise ValueError(f"{len(tasks)} tasks for {y.shape[1]} label columns")
    members = _group_members(tasks)
    names = [*GROUPS, *(t.name for t in tasks)]
    selectors = [members[g] for g in GROUPS] + [np.eye(len(tasks), dtype=bool)[j] for j in range(len(tasks))]

    def summaries(rows: np.ndarray, s: int) -> np.ndarray:
        """A − B for every summary on `rows` with seed index `s` (NaN where undefined)."""
        diff = _task_aurocs(y[rows], a[s][rows]) - _task_aurocs(y[rows], b[s][rows])
        out = np.full(len(selectors), np.nan)
        for k, sel in enumerate(selectors):
            values = diff[sel & ~np.isnan(diff)]
            if values.size:
                out[k] = values.mean()
        return out

    everything = np.arange(y.shape[0])
    point = np.stack([summaries(everything, s) for s in range(a.shape[0])]).mean(axis=0)  # NaN: undefined on test
    means = {m: float(np.mean([np.nanmean(_task_aurocs(y, x[s])) for s in range(x.shape[0])]))
             for m, x in (("a", a), ("b", b))}  # fmt: skip
    distinct, index = np.unique(np.asarray(patients), return_inverse=True)
    rows_of = [np.flatnonzero(index == p) for p in range(len(distinct))]
    rng = np.random.default_rng(seed)
    draws = np.full((n_resamples, len(selectors)), np.nan)
    for r in range(n_resamples):
        s = int(rng.integers(a.shape[0]))
        chosen = rng.integers(0, len(distinct), len(distinct))
        draws[r] = summaries(np.concatenate([rows_of[p] for p in chosen]), s)
    alpha = 1 - confidence
    out = {}
    for k, name in enumerate(names):
        column = draws[:, k][~np.isnan(draws[:, k])]
        low, high = (np.percentile(column, [100 * alpha / 2, 100 * (1 - alpha / 2)]) if column.size
                     else (np.nan, np.nan))  # fmt: skip
        out[name] = {"difference": float(point[k]), "ci95": [float(low), float(high)],
                     "excludes_zero": bool(low > 0 or high < 0), "n_dropped": int(n_resamples - column.size),
                     "n_resamples": n_resamples}  # fmt: skip
    out["all tasks"] |= {"a": float(means["a"]), "b": float(means["b"])}
    return out
