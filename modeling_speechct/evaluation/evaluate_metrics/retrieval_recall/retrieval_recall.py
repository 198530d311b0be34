"""Cross-modal retrieval: Recall@k, median and mean rank — from ranks, or from embeddings under cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import evaluate
import numpy as np

from modeling_speechct.evaluation.metric_modules import as_matrix
from modeling_speechct.evaluation.metrics import rank_summary, recall_at_k, retrieval_ranks

_CONFIGS = ("ranks", "embeddings")

_DESCRIPTION = """
Recall@k (the fraction of queries whose correct item ranks within the top k), and the median and mean rank
(1-based; lower is better) of each query's best-ranked correct item.

Two configurations (`config_name`):
* "ranks" (default): one 1-based rank per query, computed elsewhere.
* "embeddings": one row per (query, gallery item) pair — `query_embeddings`, `gallery_embeddings` and `ids`; the
  gallery is every row's gallery embedding, and a gallery item is correct for a query when their ids are equal,
  so several items may be correct (CT-CLIP's pairing: a scan's reconstructions share its report). For plain paired
  data give every row its own id. Similarities are cosine, computed `chunk_size` queries at a time (memory
  O(chunk_size × gallery), never the full matrix); ties count against the query (rank = 1 + #incorrect items at
  least as similar as the best correct one). For the reverse direction swap the two embedding columns.
  The embeddings pass through evaluate's Arrow table and reach the computation as Python lists, a few times their
  float64 size for a moment (about 2 GB at 50,000 × 512); for pools far beyond CT-RATE's validation set compute
  the ranks with `retrieval_ranks` and use "ranks".
Implemented by `modeling_speechct.evaluation.metrics.retrieval_ranks`, `recall_at_k` and `rank_summary`.
"""

_KWARGS_DESCRIPTION = """
Args ("ranks"):
    ranks (`list` of `int`): 1-based rank of each query's correct item.
Args ("embeddings"):
    query_embeddings (`list` of `list` of `float`): one query embedding per row.
    gallery_embeddings (`list` of `list` of `float`): one gallery embedding per row, same dimension.
    ids (`list` of `str`): per row, the id its query and its gallery item share.
    chunk_size (`int`, defaults to 4096): queries scored at a time.
Args (both):
    ks (`list` of `int`, defaults to (1, 5, 10, 50, 100)): the cut-offs of Recall@k.
    return_ranks (`bool`, defaults to False): add the per-query ranks (int64 array) under "ranks".
Returns:
    "R@k" (`float`) for each k, median_rank (`float`), mean_rank (`float`), n_queries (`int`), [ranks].
Examples:
    >>> from modeling_speechct.evaluation.metric_modules import load_metric
    >>> load_metric("retrieval_recall").compute(ranks=[1, 3, 12], ks=[1, 10])
    {'R@1': 0.3333333333333333, 'R@10': 0.6666666666666666, 'median_rank': 3.0, 'mean_rank': 5.333333333333333, \
'n_queries': 3}
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RetrievalRecall(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        if self.config_name in ("default", "ranks"):
            features = datasets.Features({"ranks": datasets.Value("int64")})
        elif self.config_name == "embeddings":
            features = datasets.Features(
                {
                    "query_embeddings": datasets.Sequence(datasets.Value("float64")),
                    "gallery_embeddings": datasets.Sequence(datasets.Value("float64")),
                    "ids": datasets.Value("string"),
                }
            )
        else:
            raise ValueError(f"config_name must be one of {_CONFIGS}, got {self.config_name!r}")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=features,
        )

    def _compute(
        self,
        ranks: Any = None,
        query_embeddings: Any = None,
        gallery_embeddings: Any = None,
        ids: Any = None,
        ks: Sequence[int] = (1, 5, 10, 50, 100),
        chunk_size: int = 4096,
        return_ranks: bool = False,
    ) -> dict[str, Any]:
        if ranks is None:
            ids = np.asarray(ids).astype(str)
            ranks = retrieval_ranks(
                as_matrix(query_embeddings, "query_embeddings"),
                as_matrix(gallery_embeddings, "gallery_embeddings"),
                ids,
                ids,
                chunk_size=chunk_size,
            )
        ranks = np.asarray(ranks, dtype=np.int64)
        result: dict[str, Any] = {**recall_at_k(ranks, ks), **rank_summary(ranks)}
        if return_ranks:
            result["ranks"] = ranks
        return result
