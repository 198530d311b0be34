"""Independent float64 NumPy statements of the losses, for tests to compare against."""

import numpy as np


def info_nce(a: np.ndarray, b: np.ndarray, scale: float, item_ids: np.ndarray | None = None) -> float:
    """Symmetric InfoNCE of row-paired embeddings: mean cross-entropy of `scale · a bᵀ` over rows and over columns.
    With `item_ids`, row i's softmax runs over its positive and the columns of *other* items only (a loop, on
    purpose unlike the masked matrix of the implementation)."""
    logits = scale * a @ b.T
    n = len(a)
    ids = np.arange(n) if item_ids is None else np.asarray(item_ids)

    def cross_entropy(x: np.ndarray) -> float:
        total = 0.0
        for i in range(n):
            kept = np.array([x[i, j] for j in range(n) if j == i or ids[j] != ids[i]])
            top = kept.max()
            total += top + np.log(np.exp(kept - top).sum()) - x[i, i]
        return total / n

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean 1 − cos over rows."""
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(np.mean(1 - cos))


def similarity_kl(
    student: np.ndarray, teacher: np.ndarray, anchor: np.ndarray, s_scale: float, t_scale: float
) -> float:
    """Mean over rows of KL(softmax(t_scale · teacher anchorᵀ) ‖ softmax(s_scale · student anchorᵀ)), averaged with
    the same over the anchors' rows (anchor teacherᵀ vs anchor studentᵀ)."""

    def log_softmax(x: np.ndarray) -> np.ndarray:
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    def kl(target: np.ndarray, model: np.ndarray) -> float:
        p, log_p, log_q = np.exp(log_softmax(target)), log_softmax(target), log_softmax(model)
        return float(np.mean(np.sum(p * (log_p - log_q), axis=1)))

    rows = kl(t_scale * teacher @ anchor.T, s_scale * student @ anchor.T)
    columns = kl(t_scale * anchor @ teacher.T, s_scale * anchor @ student.T)
    return (rows + columns) / 2
