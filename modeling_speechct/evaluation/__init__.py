"""Evaluation: metrics (AUROC, CT-CLIP's protocol, recall@k, bootstraps), the `evaluate` metric modules, zero-shot
and retrieval over a split, linear probes, paired comparisons, FAISS search, voice robustness, plots."""
