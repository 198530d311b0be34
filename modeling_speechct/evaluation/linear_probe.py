"""Linear probe of frozen embeddings (AcuLa's evaluation): logistic regression on top of a tower, AUROC on test.

The probe asks what a *linear* read-out of the embedding knows, so every choice keeps the tower out of it and the
test split out of every fit:

* features are standardised with mean / std of the **train split only** (`StandardScaler`), applied to all splits;
* multi-label: one binary `LogisticRegression` per label (one-vs-rest, L2, lbfgs, float64); scores are its
  `decision_function` — the same ranking as the probability, but without the ties a saturated sigmoid makes on
  separable data; multiclass: one multinomial `LogisticRegression` on a single integer label column, scored by
  `predict_proba` and summarised by scikit-learn's macro one-vs-rest AUROC;
* seeds: lbfgs is deterministic, so a `random_state` alone would repeat one number five times. A seed here draws a
  **stratified random subsample** (`train_fraction` of every class, at least one row per class) of the train
  split — per label in the multi-label case, since each label's probe is its own binary problem — so the spread
  over seeds measures how much the probe depends on which training rows it saw. `train_fraction=1` makes every
  seed the same probe;
* C: with a validation split, the C of `c_grid` with the best validation AUROC, chosen per seed and label on that
  seed's subsample (ties → the smaller C, the stronger regularisation); without one, a fixed `default_c`;
* undefined is explicit (as in `metrics`): a label with one class in train (no probe can be fitted) or in test
  (AUROC does not exist) is NaN, named in `notes`, and left out of every mean (`metrics.mean_defined`);
* summary: per seed the mean AUROC over defined labels; reported as mean ± std over seeds (NumPy's population
  std, ddof=0), with every per-seed and per-label number beside it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from .metrics import auroc_per_label, mean_defined

__all__ = [
    "DEFAULT_C",
    "DEFAULT_C_GRID",
    "DEFAULT_SEEDS",
    "DEFAULT_TRAIN_FRACTION",
    "TASKS",
    "check_split",
    "linear_probe",
    "load_embedding_file",
    "probe_markdown",
    "stratified_subsample",
]

TASKS = ("multilabel", "multiclass")
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)  # AcuLa reports 5 seeds
DEFAULT_TRAIN_FRACTION = 0.8
DEFAULT_C_GRID: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
DEFAULT_C = 1.0  # scikit-learn's default, used when there is no validation split to choose on
DEFAULT_MAX_ITER = 1000


# ----------------------------------------------------------------------------------------------------------------
# input


def check_split(embeddings: Any, labels: Any, name: str, task: str = "multilabel") -> tuple[np.ndarray, np.ndarray]:
    """Validate one split and return (embeddings float64 (N, D), labels): (N, L) 0/1 ints for `multilabel`, (N,)
    ints for `multiclass`. Every message starts with `name` (a split or a file), so a bad input is found at once."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: embeddings must be a non-empty 2-D array (rows, dim), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name}: embeddings must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{name}: {int(bad.sum())} embedding row(s) contain NaN or inf (first: row {int(np.flatnonzero(bad)[0])})"
        )
    y = np.asarray(labels)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: {x.shape[0]} embedding rows but labels of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or not np.isfinite(y.astype(np.float64)).all():
        raise ValueError(f"{name}: labels must be finite numbers, got dtype {y.dtype}")
    if (y != np.round(y)).any():
        raise ValueError(f"{name}: labels must be integers")
    y = y.astype(np.int64)
    if task == "multiclass":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"{name}: multiclass labels must be one integer column, got shape {y.shape}")
        return x, y
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"{name}: multi-label labels must be (rows, labels), got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        hint = " (one integer class column? use task='multiclass')" if y.shape[1] == 1 else ""
        raise ValueError(f"{name}: multi-label labels must be 0/1{hint}")
    return x, y


def load_embedding_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, labels) from a `.npz` or `.safetensors` file with keys `embeddings` and `labels`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such embeddings file")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    elif path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        arrays = load_file(str(path))
    else:
        raise ValueError(f"{path}: embeddings must be a .npz or .safetensors file")
    missing = [key for key in ("embeddings", "labels") if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; found {sorted(arrays)}")
    return arrays["embeddings"], arrays["labels"]


def stratified_subsample(y: Any, fraction: float, seed: int, stream: int = 0) -> np.ndarray:
    """Sorted row indices of a stratified random subsample: `round(fraction · n_c)` rows of every class c (at least
    one, so a class present in train stays present), drawn without replacement from
    `np.random.default_rng([seed, stream])`. `stream` (the label index) gives each label its own draw."""
    y = np.asarray(y).ravel()
    if not 0 < fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return np.arange(len(y))
    rng = np.random.default_rng([seed, stream])
    keep = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        keep.append(rng.choice(rows, max(1, round(fraction * len(rows))), replace=False))
    return np.sort(np.concatenate(keep))


# ----------------------------------------------------------------------------------------------------------------
# probe


def _fit(x: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> tuple[LogisticRegression, bool]:
    """Fitted probe and whether lbfgs converged (a ConvergenceWarning is recorded, not printed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = LogisticRegression(C=c, max_iter=max_iter).fit(x, y)
    return model, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _one_class(y: np.ndarray) -> str | None:
    """'positives' / 'negatives' if a 0/1 column has one class only, else None."""
    if y.all():
        return "positives"
    return "negatives" if not y.any() else None


def _multiclass_auroc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> tuple[float, np.ndarray]:
    """Macro one-vs-rest AUROC (scikit-learn's when every class is in both train and test) and per-class AUROC.

    Per class: `metrics.auroc_per_label` of (y == c) vs P(c) — NaN for a class absent from this split. With every
    class defined and ≥ 3 classes the macro value is `roc_auc_score(multi_class="ovr", average="macro")`, which is
    the mean of those; otherwise the mean over defined classes (scikit-learn refuses a missing class)."""
    onehot = (y[:, None] == classes[None, :]).astype(int)
    per_class = auroc_per_label(onehot, proba)
    if np.isin(y, classes).all() and not np.isnan(per_class).any() and len(classes) >= 3:
        macro = float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
    else:
        macro = mean_defined(per_class)[0]
    return macro, per_class


def linear_probe(
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    valid: tuple[Any, Any] | None = None,
    task: str = "multilabel",
    seeds: Any = DEFAULT_SEEDS,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    c_grid: Any = DEFAULT_C_GRID,
    default_c: float = DEFAULT_C,
    label_names: list[str] | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    keep_scores: bool = False,
) -> dict[str, Any]:
    """AUROC of a logistic-regression probe on frozen embeddings; the protocol is in the module docstring.

    `keep_scores` adds each seed's test scores to its `per_seed` entry (`"scores"`, (N_test, L), NaN for an
    undefined label; multiclass: (N_test, classes)) so two models' probes can be compared on resampled test rows.

    `train` / `test` / `valid` are (embeddings (N, D), labels) pairs — labels (N, L) 0/1 for `multilabel`, one
    integer column for `multiclass`. Returns {"task", "protocol", "labels" | "classes", "n", "per_seed",
    "per_label", "mean", "std", "excluded", "notes"}; per-label arrays are float64 with NaN where undefined."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    if not 0 < train_fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    c_grid = [float(c) for c in c_grid]
    if any(c <= 0 for c in [*c_grid, default_c]):
        raise ValueError("C values must be > 0")
    splits = {"train": train, "test": test, **({"valid": valid} if valid is not None else {})}
    data = {name: check_split(*pair, name=name, task=task) for name, pair in splits.items()}
    dims = {name: x.shape[1] for name, (x, _) in data.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(f"embedding widths differ between splits: {dims}")
    if task == "multilabel":
        widths = {name: y.shape[1] for name, (_, y) in data.items()}
        if len(set(widths.values())) > 1:
            raise ValueError(f"label columns differ between splits: {widths}")

    scaler = StandardScaler().fit(data["train"][0])  # train split only: nothing of valid / test enters the probe
    x = {name: scaler.transform(xs) for name, (xs, _) in data.items()}
    y = {name: ys for name, (_, ys) in data.items()}
    select = valid is not None and len(c_grid) > 1
    protocol = {
        "standardisation": "StandardScaler fitted on the train split only",
        "classifier": f"LogisticRegression (L2, lbfgs, max_iter={max_iter}, float64)"
        + (", one per label (one-vs-rest)" if task == "multilabel" else ", multinomial"),
        "scores": "decision_function" if task == "multilabel" else "predict_proba",
        "seeds": seeds,
        "seed_meaning": f"stratified random subsample of {train_fraction:g} of each class of the train split"
        + (" (drawn per label)" if task == "multilabel" else ""),
        "train_fraction": train_fraction,
        "c_selection": "best validation AUROC over c_grid per seed and label (ties → smaller C)"
        if select
        else f"fixed C = {default_c:g}",
        "c_grid": c_grid if select else None,
        "default_c": default_c,
        "std": "population std over seeds (ddof=0) of the per-seed mean AUROC",
    }
    n = {name: len(ys) for name, ys in y.items()} | {"dim": dims["train"]}
    run = _probe_multilabel if task == "multilabel" else _probe_multiclass
    result = run(x, y, seeds, train_fraction, c_grid if select else [default_c], default_c, max_iter, label_names)
    if not keep_scores:
        for entry in result["per_seed"]:
            entry.pop("scores")
    if train_fraction == 1 and len(seeds) > 1:
        result["notes"].append("train_fraction 1: every seed fits the same probe (lbfgs is deterministic), std 0")
    return {"task": task, "protocol": protocol, "n": n, **result}


def _select_and_score(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray | None,
    y_valid: np.ndarray | None,
    x_test: np.ndarray,
    grid: list[float],
    max_iter: int,
    score: Any,
) -> tuple[float, np.ndarray, bool]:
    """Fit one probe per C of `grid`; keep the best by `score(model, x_valid, y_valid)` (first = smallest C on ties,
    as the grid is sorted); return (C, test scores, converged)."""
    best: tuple[float, LogisticRegression, bool] | None = None
    best_value = -np.inf
    for c in sorted(grid):
        model, converged = _fit(x_train, y_train, c, max_iter)
        value = score(model, x_valid, y_valid) if len(grid) > 1 else 0.0
        if best is None or value > best_value:
            best, best_value = (c, model, converged), value
    c, model, converged = best
    test_scores = model.decision_function(x_test) if model.classes_.size == 2 else model.predict_proba(x_test)
    return c, test_scores, converged


def _probe_multilabel(x, y, seeds, fraction, grid, default_c, max_iter, label_names) -> dict[str, Any]:
    n_labels = y["train"].shape[1]
    names = list(label_names) if label_names is not None else [str(j) for j in range(n_labels)]
    if len(names) != n_labels:
        raise ValueError(f"{len(names)} label names for {n_labels} label columns")
    notes: list[str] = []
    skip = np.zeros(n_labels, dtype=bool)
    label_grid: list[list[float]] = []
    for j, name in enumerate(names):
        if kind := _one_class(y["train"][:, j]):
            notes.append(f"label {j} ({name}): only {kind} in train; no probe, AUROC undefined, excluded")
            skip[j] = True
        elif kind := _one_class(y["test"][:, j]):
            notes.append(f"label {j} ({name}): only {kind} in test; AUROC undefined, excluded")
            skip[j] = True
        label_grid.append(grid)
        if not skip[j] and len(grid) > 1 and (kind := _one_class(y["valid"][:, j])):
            notes.append(f"label {j} ({name}): only {kind} in valid; C not selected, fixed C = {default_c:g}")
            label_grid[j] = [default_c]

    def valid_auroc(model, xv, yv):
        return roc_auc_score(yv, model.decision_function(xv))

    per_seed = []
    for seed in seeds:
        auroc = np.full(n_labels, np.nan)
        chosen = np.full(n_labels, np.nan)
        test_scores = np.full(y["test"].shape, np.nan)
        for j in np.flatnonzero(~skip):
            rows = stratified_subsample(y["train"][:, j], fraction, seed, stream=int(j))
            chosen[j], scores, converged = _select_and_score(
                x["train"][rows], y["train"][rows, j], x.get("valid"), y["valid"][:, j] if "valid" in y else None,
                x["test"], label_grid[j], max_iter, valid_auroc,
            )  # fmt: skip
            auroc[j] = auroc_per_label(y["test"][:, j], scores)[0]
            test_scores[:, j] = scores
            if not converged:
                notes.append(f"seed {seed}, label {j} ({names[j]}): lbfgs did not converge in {max_iter} iterations")
        mean, _ = mean_defined(auroc)
        per_seed.append({"seed": seed, "per_label": auroc, "mean": mean, "C": chosen, "scores": test_scores})

    stacked = np.stack([s["per_label"] for s in per_seed])  # (seeds, L); NaN columns are NaN in every seed
    per_label_mean = np.full(n_labels, np.nan)
    per_label_std = np.full(n_labels, np.nan)
    per_label_mean[~skip] = stacked[:, ~skip].mean(axis=0)
    per_label_std[~skip] = stacked[:, ~skip].std(axis=0)
    _, excluded = mean_defined(per_label_mean)
    means = np.array([s["mean"] for s in per_seed])
    return {
        "labels": names,
        "per_seed": per_seed,
        "per_label": {"mean": per_label_mean, "std": per_label_std},
        "mean": float(means.mean()) if not np.isnan(means).any() else float("nan"),
        "std": float(means.std()) if not np.isnan(means).any() else float("nan"),
        "excluded": [names[j] for j in excluded],
        "notes": notes,
    }


def _probe_multiclass(x, y, seeds, fraction, grid, default_c, max_iter, label_names) -> dict[str, Any]:
    classes = np.unique(y["train"])
    names = [str(c) for c in classes] if label_names is None else list(label_names)
    if len(names) != len(classes):
        raise ValueError(f"{len(names)} class names for {len(classes)} classes in train")
    notes: list[str] = []
    nan = float("nan")
    if len(classes) < 2:
        notes.append(f"only class {names[0]} in train; no probe, AUROC undefined")
        undefined = np.full(len(classes), nan)
        return {"classes": classes.tolist(), "labels": names, "per_seed": [], "mean": nan, "std": nan,
                "per_label": {"mean": undefined, "std": undefined}, "excluded": names, "notes": notes}  # fmt: skip
    for c, name in zip(classes, names, strict=True):
        if not (y["test"] == c).any():
            notes.append(f"class {name}: not in test; its one-vs-rest AUROC is undefined, excluded from the macro")
    unseen = np.setdiff1d(y["test"], classes)
    if unseen.size:
        notes.append(f"test classes {unseen.tolist()} never occur in train; the probe cannot score them")
    if len(grid) > 1 and len(np.unique(y["valid"])) < 2:
        notes.append(f"one class in valid; C not selected, fixed C = {default_c:g}")
        grid = [default_c]

    def valid_auroc(model, xv, yv):
        value = _multiclass_auroc(yv, model.predict_proba(xv), model.classes_)[0]
        return -np.inf if np.isnan(value) else value

    per_seed = []
    for seed in seeds:
        rows = stratified_subsample(y["train"], fraction, seed)
        c, proba, converged = _select_and_score(
            x["train"][rows], y["train"][rows], x.get("valid"), y.get("valid"), x["test"], grid, max_iter, valid_auroc
        )
        if proba.ndim == 1:  # two classes: decision_function → P(second class) ranks identically
            proba = np.stack([-proba, proba], axis=1)
        macro, per_class = _multiclass_auroc(y["test"], proba, classes)
        if not converged:
            notes.append(f"seed {seed}: lbfgs did not converge in {max_iter} iterations")
        per_seed.append({"seed": seed, "per_label": per_class, "mean": macro, "C": c, "scores": proba})
    stacked = np.stack([s["per_label"] for s in per_seed])
    defined = ~np.isnan(stacked).any(axis=0)
    per_label_mean = np.where(defined, np.nan_to_num(stacked).mean(axis=0), np.nan)
    per_label_std = np.where(defined, np.nan_to_num(stacked).std(axis=0), np.nan)
    means = np.array([s["mean"] for s in per_seed])
    return {
        "classes": classes.tolist(),
        "labels": names,
        "per_seed": per_seed,
        "per_label": {"mean": per_label_mean, "std": per_label_std},
        "mean": float(means.mean()) if not np.isnan(means).any() else nan,
        "std": float(means.std()) if not np.isnan(means).any() else nan,
        "excluded": [names[j] for j in np.flatnonzero(~defined)],
        "notes": notes,
    }


# ----------------------------------------------------------------------------------------------------------------
# output


def probe_markdown(result: dict[str, Any]) -> str:
    """Per-label (or per-class) AUROC mean ± std over seeds, and the headline mean ± std."""

    def fmt(mean: float, std: float) -> str:
        return "undefined" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}"

    kind = "label" if result["task"] == "multilabel" else "class"
    per_seed = result["per_seed"]
    lines = [f"| {kind} | AUROC (mean ± std over {len(per_seed)} seeds) | C per seed |", "|---|---|---|"]
    for j, name in enumerate(result["labels"]):
        cs = [s["C"][j] if result["task"] == "multilabel" else s["C"] for s in per_seed]
        c_cell = ", ".join("–" if np.isnan(c) else f"{c:g}" for c in cs)
        lines.append(f"| {name} | {fmt(result['per_label']['mean'][j], result['per_label']['std'][j])} | {c_cell} |")
    headline = "mean over labels" if result["task"] == "multilabel" else "macro one-vs-rest"
    lines.append(f"| **{headline}** | **{fmt(result['mean'], result['std'])}** | |")
    if result["excluded"]:
        lines.append(f"\nExcluded (undefined): {', '.join(result['excluded'])}.")
    if result["notes"]:
        lines.append("\nNotes:\n" + "\n".join(f"- {note}" for note in result["notes"]))
    p = result["protocol"]
    lines.append(f"\nProtocol: {p['classifier']}; {p['standardisation']}; seeds {p['seeds']} = {p['seed_meaning']}; "
                 f"C: {p['c_selection']}.")  # fmt: skip
    return "\n".join(lines) + "\n"
