"""Independent float64 NumPy statements of the losses, for tests to compare against."""

import numpy as np


def info_nce(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    """Symmetric InfoNCE of row-paired embeddings: mean cross-entropy of `scale · a bᵀ` over rows and over columns."""
    logits = scale * a @ b.T

    def cross_entropy(x: np.ndarray) -> float:
        x = x - x.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(x).sum(axis=1)) - np.diag(x)))

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean 1 − cos over rows."""
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(np.mean(1 - cos))
