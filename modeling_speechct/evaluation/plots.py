"""Evaluation figures: per-label ROC curves of zero-shot classification and Recall@k curves of retrieval.

Figures are built on matplotlib's object API with the Agg canvas (no pyplot, no global figure registry, no display
needed) and returned, so callers and tests can inspect what was drawn. PNGs are written to a temporary file in the
target folder and `os.replace`d into place, so a reader never sees half an image.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
from sklearn.metrics import roc_curve

from ..files.provenance import write_atomic
from .metrics import auroc_per_label

__all__ = ["plot_recall_curve", "plot_roc_curves", "save_png_atomic"]


def save_png_atomic(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """`fig` as a PNG at `path`, atomically (`eval_outputs.write_atomic`)."""
    return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi), binary=True)


def plot_roc_curves(y_true: Any, scores: Any, labels: Sequence[str], path: str | os.PathLike, ncols: int = 5) -> Figure:
    """One panel per label: its ROC curve (scikit-learn's `roc_curve`) with the AUROC in the legend, and the chance
    diagonal. A label with one class has no ROC curve: its panel says so and draws nothing, so an undefined label
    can never be read as a measured one. `y_true` / `scores` are (N, L); returns the Figure (also saved to `path`).
    """
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim == 1:
        y, s = y[:, None], s[:, None]
    if len(labels) != y.shape[1]:
        raise ValueError(f"{len(labels)} label names for {y.shape[1]} label columns")
    auroc = auroc_per_label(y, s)  # validates the inputs; NaN where undefined
    ncols = max(1, min(ncols, len(labels)))
    nrows = math.ceil(len(labels) / ncols)
    fig = Figure(figsize=(3.2 * ncols, 3.0 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for j, (ax, label) in enumerate(zip(axes, labels, strict=False)):
        ax.set_title(label, fontsize=9)
        ax.set_xlim(-0.02, 1.02)  # a curve along the frame (AUROC 0 or 1) stays visible
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        if np.isnan(auroc[j]):
            kind = "positives" if y[:, j].all() else "negatives"
            ax.text(0.5, 0.5, f"undefined:\nonly {kind}", ha="center", va="center", fontsize=9, color="0.4")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        fpr, tpr, _ = roc_curve(y[:, j], s[:, j])
        ax.plot([0, 1], [0, 1], color="0.7", linewidth=0.8, linestyle="--", gid="chance")
        ax.plot(fpr, tpr, linewidth=1.5, label=f"AUROC {auroc[j]:.3f}", gid="roc")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        ax.set_xlabel("false positive rate", fontsize=7)
        ax.set_ylabel("true positive rate", fontsize=7)
    for ax in axes[len(labels) :]:
        ax.set_axis_off()
    save_png_atomic(fig, path)
    return fig


def plot_recall_curve(ranks_by_direction: Mapping[str, Any], path: str | os.PathLike) -> Figure:
    """Recall@k for every k = 1 … N (N = the largest rank, or the number of queries if larger) of each retrieval
    direction, on a log k axis: the whole curve, of which R@1/5/10/50/100 are five points. Ranks are 1-based, one
    per query (`metrics.retrieval_ranks`). Returns the Figure (also saved to `path`)."""
    if not ranks_by_direction:
        raise ValueError("no retrieval direction to plot")
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    n_max = 1
    for name, ranks in ranks_by_direction.items():
        r = np.asarray(ranks)
        if r.ndim != 1 or r.size == 0 or (r < 1).any():
            raise ValueError(f"{name}: ranks must be a non-empty 1-D array of 1-based ranks")
        n = max(int(r.max()), r.size)
        n_max = max(n_max, n)
        recall = np.cumsum(np.bincount(r, minlength=n + 1)[1:]) / r.size  # recall[k - 1] = mean(r <= k)
        k = np.arange(1, n + 1)
        label = f"{name.replace('_', ' ')} (median rank {np.median(r):.0f})"
        ax.step(k, recall, where="post", linewidth=1.5, label=label, gid="recall")
    ax.set_xscale("log")
    ax.set_xlim(1, max(2, n_max))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 2, 5, 10, 20, … rather than 2×10⁰
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k")
    ax.grid(True, which="both", linewidth=0.4, alpha=0.5)
    fig.legend(loc="outside lower center", fontsize=9, frameon=False)
    save_png_atomic(fig, path)
    return fig
