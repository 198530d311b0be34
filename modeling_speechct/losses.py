"""Losses shared by the family: symmetric InfoNCE over the global batch, cosine distillation.

Across processes the contrast gathers embeddings *with gradients* (`torch.distributed.nn.functional.all_gather`;
`accelerator.gather` is not differentiable) and scores the local rows against all rows with offset labels
(open_clip's "local loss"), so every process sees the global batch as negatives at O(local × global) cost.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    """Concatenate `features` from every process along dim 0, keeping the autograd graph."""
    world, _ = _world()
    if world == 1:
        return features
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(features), dim=0)


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised row-paired embeddings `a` and `b` (`logit_scale` already exp'd).

    Across processes every rank must hold the same number of rows (as DDP's samplers give); the loss is the mean
    over the local rows, so averaging it over ranks (DDP's gradient mean) gives the global-batch loss."""
    world, rank = _world()
    labels = torch.arange(a.shape[0], device=a.device) + rank * a.shape[0]
    if world == 1:
        logits_a = logit_scale * a @ b.T
        logits_b = logits_a.T
    else:
        logits_a = logit_scale * a @ gather_with_grad(b).T
        logits_b = logit_scale * b @ gather_with_grad(a).T
    return (F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_b, labels)) / 2


def cosine_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of 1 − cos(student_i, teacher_i); the teacher is a target and gets no gradient."""
    return (1 - F.cosine_similarity(student, teacher.detach(), dim=-1)).mean()
