"""The optional FAISS Recall@k equals the exact chunked path (`retrieval_ranks` + `recall_at_k`)."""

from __future__ import annotations

import numpy as np
import pytest

from modeling_speechct.evaluation.faiss_search import faiss_recall_at_k
from modeling_speechct.evaluation.metrics import recall_at_k, retrieval_ranks

# faiss-cpu is in the dev extra: the suite installs it, so this test never skips.

KS = (1, 5, 10, 50)


def _check(queries, gallery, query_ids, gallery_ids, ks=KS, chunk_size=64):
    exact = retrieval_ranks(queries, gallery, query_ids, gallery_ids, chunk_size=chunk_size)
    got = faiss_recall_at_k(queries, gallery, query_ids, gallery_ids, ks=ks, chunk_size=chunk_size)
    assert {f"R@{k}": got[f"R@{k}"] for k in ks} == recall_at_k(exact, ks)
    assert got["n_queries"] == len(exact)
    assert got["ranks"] == [int(r) if r <= max(ks) else None for r in exact]
    return exact, got


def test_equals_exact_path_with_several_reports_per_volume():
    rng = np.random.default_rng(0)
    n_vol, dim = 150, 16
    volumes = rng.normal(size=(n_vol, dim))
    per_volume = rng.integers(1, 5, size=n_vol)  # 1-4 reports per volume
    gallery_ids = np.repeat(np.arange(n_vol), per_volume).astype(str)
    gallery = np.repeat(volumes, per_volume, axis=0) + 1.5 * rng.normal(size=(len(gallery_ids), dim))
    queries = volumes + 1.5 * rng.normal(size=volumes.shape)
    query_ids = np.arange(n_vol).astype(str)
    exact, _ = _check(queries, gallery, query_ids, gallery_ids)
    assert np.median(exact) > 1 and exact.max() > max(KS)  # neither trivial nor all within the top k
    # the reverse direction: several queries share a volume's single gallery item
    _check(gallery, queries, gallery_ids, query_ids)


def test_paired_without_ids_and_correct_item_beyond_max_k():
    rng = np.random.default_rng(1)
    n, dim = 120, 8
    gallery = rng.normal(size=(n, dim))
    queries = gallery + 0.05 * rng.normal(size=(n, dim))
    queries[0] = -gallery[0]  # its correct item is the least similar: rank far beyond max k
    exact, got = _check(queries, gallery, None, None, ks=(1, 5, 10))
    assert exact[0] > 10 and got["ranks"][0] is None
    assert got["R@1"] < 1.0


def test_exact_ties_count_against_the_query():
    rng = np.random.default_rng(2)
    gallery = rng.normal(size=(30, 6))
    gallery[1] = gallery[0]  # an incorrect duplicate of query 0's correct item: FAISS may list it either side
    gallery[5] = gallery[0]
    queries = gallery.copy()
    exact, got = _check(queries, gallery, None, None, ks=(1, 2, 5))
    assert exact[0] == 3 and got["ranks"][0] == 3


def test_width_mismatch_is_a_clear_error():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="queries have dim 8, gallery 6"):
        faiss_recall_at_k(rng.normal(size=(4, 8)), rng.normal(size=(4, 6)))
