"""Optional FAISS search for report ↔ volume retrieval: Recall@k from an exact inner-product index.

`faiss` is optional (`pip install faiss-cpu`); it is imported only when `faiss_recall_at_k` runs. The exact chunked
path, `metrics.retrieval_ranks`, stays the reference and the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modeling_speechct.evaluation.metrics import _l2_normalise

__all__ = ["faiss_recall_at_k"]


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as err:  # pragma: no cover - exercised only without faiss installed
        raise ImportError(
            "faiss_recall_at_k needs FAISS: pip install faiss-cpu (or use metrics.retrieval_ranks, the exact "
            "chunked path, which needs nothing extra)"
        ) from err
    return faiss


def _id_codes(n_q: int, n_g: int, query_ids: Any, gallery_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes for the ids (same rules and errors as `metrics.retrieval_ranks`)."""
    if (query_ids is None) != (gallery_ids is None):
        raise ValueError("pass both query_ids and gallery_ids, or neither")
    if query_ids is None:
        if n_q != n_g:
            raise ValueError(f"paired retrieval needs as many queries as gallery items ({n_q} vs {n_g})")
        return np.arange(n_q), np.arange(n_g)
    qid, gid = np.asarray(query_ids), np.asarray(gallery_ids)
    if qid.shape != (n_q,) or gid.shape != (n_g,):
        raise ValueError("query_ids / gallery_ids must have one id per row")
    _, codes = np.unique(np.concatenate([qid, gid]), return_inverse=True)
    q_codes, g_codes = codes[:n_q], codes[n_q:]
    missing = ~np.isin(q_codes, g_codes)
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} queries have no correct item in the gallery, e.g. index "
            f"{int(np.flatnonzero(missing)[0])}"
        )
    return q_codes, g_codes


def _best_correct_similarity(
    q: np.ndarray, g: np.ndarray, q_codes: np.ndarray, g_codes: np.ndarray, chunk_size: int
) -> tuple[np.ndarray, int]:
    """Per query, the float64 cosine similarity of its best correct gallery item, and m = the largest number of
    gallery items sharing one id. Touches only each query's own correct items: O(Q × m × dim)."""
    order = np.argsort(g_codes, kind="stable")
    codes_sorted = g_codes[order]
    uniq, starts, counts = np.unique(codes_sorted, return_index=True, return_counts=True)
    m = int(counts.max())
    padded = np.full((len(uniq), m), -1, dtype=np.int64)  # gallery rows of each id, padded with -1
    for j in range(m):
        has = counts > j
        padded[has, j] = order[starts[has] + j]
    rows_of_query = padded[np.searchsorted(uniq, q_codes)]  # (Q, m)
    best = np.empty(q.shape[0], dtype=np.float64)
    for start in range(0, q.shape[0], chunk_size):
        idx = rows_of_query[start : start + chunk_size]
        sims = np.einsum("cd,cmd->cm", q[start : start + chunk_size], g[np.maximum(idx, 0)])
        best[start : start + chunk_size] = np.where(idx >= 0, sims, -np.inf).max(axis=1)
    return best, m


def faiss_recall_at_k(
    queries: Any,
    gallery: Any,
    query_ids: Sequence[Any] | np.ndarray | None = None,
    gallery_ids: Sequence[Any] | np.ndarray | None = None,
    ks: Sequence[int] = (1, 5, 10, 50, 100),
    chunk_size: int = 4096,
) -> dict[str, Any]:
    """Recall@k of cosine retrieval through an exact FAISS inner-product index (`faiss.IndexFlatIP`).

    Same inputs and pairing rules as `metrics.retrieval_ranks`: correct means same id (without ids, query i ↔
    gallery i); several gallery items may share an id (a volume's reports) and any of them is a hit; the other
    correct items never push the best one down; ties count against the query.

    Returns {"R@k": float for each k, "n_queries": Q, "ranks": list}, where ranks[i] is query i's 1-based rank
    (as `retrieval_ranks` defines it) when it is <= max(ks), else None. On data without near-ties (see below) the
    R@k equal `recall_at_k(retrieval_ranks(...), ks)` and every non-None rank equals the exact one.

    Only R@k, not the median or mean rank: the index returns the top K items of each query only, so a rank beyond
    K is known to be > max(ks) but not its value. Exact median/mean ranks need the chunked exact path
    (`metrics.retrieval_ranks` + `rank_summary`).

    How: both sides are L2-normalised in float64; the gallery goes into the index as float32 and each query
    searches its top K = max(ks) + m items (m = the largest number of gallery items sharing one id, capped at the
    gallery size): the extra m slots are for the query's own correct items, which may sit (tied or not) among the
    max(ks) incorrect items that decide whether its rank is <= max(ks). Each query's best correct similarity s* is
    computed exactly (float64, over its own correct items only), the K candidates are re-scored in float64, and
    rank = 1 + #(incorrect candidates with similarity >= s*); if that count reaches max(ks) the rank is None.

    Ties: FAISS orders equal scores by index, so its position of the correct item could beat tied incorrect items.
    We never use FAISS's order for the rank, only its candidate set, and count every tied incorrect candidate
    against the query, as the exact path does; tied items past the K-th slot only occur when all K candidates are
    >= s*, and then the rank is > max(ks) either way. So exact ties give the same answer. The one difference is
    precision: candidates are chosen by float32 scores, so an incorrect item within ~1e-6 of s* (a near-tie)
    could fall on the other side of the K-th slot than in float64, and float64 re-scoring of a subset may differ from
    the chunked matrix product in the last bit. Exact ties (e.g. duplicated embeddings) are unaffected.
    """
    faiss = _import_faiss()
    q = _l2_normalise(queries, "queries")
    g = _l2_normalise(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"queries have dim {q.shape[1]}, gallery {g.shape[1]}")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    q_codes, g_codes = _id_codes(q.shape[0], g.shape[0], query_ids, gallery_ids)
    best, m = _best_correct_similarity(q, g, q_codes, g_codes, chunk_size)
    max_k = max(ks)
    top = min(g.shape[0], max_k + m)

    index = faiss.IndexFlatIP(g.shape[1])
    index.add(np.ascontiguousarray(g, dtype=np.float32))
    ranks: list[int | None] = []
    for start in range(0, q.shape[0], chunk_size):
        stop = min(start + chunk_size, q.shape[0])
        _, cand = index.search(np.ascontiguousarray(q[start:stop], dtype=np.float32), top)  # (c, top)
        if (cand < 0).any():  # faiss pads with -1 only when the gallery is smaller than top; it is not
            raise RuntimeError("FAISS returned fewer candidates than requested")
        sims = np.empty(cand.shape, dtype=np.float64)
        for s in range(0, stop - start, 64):  # re-score in float64, 64 queries at a time: O(64 × K × dim) memory
            sims[s : s + 64] = np.einsum("cd,ckd->ck", q[start + s : min(start + s + 64, stop)], g[cand[s : s + 64]])
        incorrect = g_codes[cand] != q_codes[start:stop, None]
        ahead = ((sims >= best[start:stop, None]) & incorrect).sum(axis=1)
        ranks.extend(int(a) + 1 if a < max_k else None for a in ahead)

    hits = np.array([r if r is not None else max_k + 1 for r in ranks])
    return {**{f"R@{k}": float(np.mean(hits <= k)) for k in ks}, "n_queries": len(ranks), "ranks": ranks}
