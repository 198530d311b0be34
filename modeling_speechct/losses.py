"""Losses shared by the family: symmetric InfoNCE over the global batch (optionally with same-item negatives
masked), cosine and similarity distillation, CIF's quantity loss.

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


def gather_ids(ids: torch.Tensor) -> torch.Tensor:
    """Concatenate integer ids from every process along dim 0 (no gradient: they only build masks)."""
    world, _ = _world()
    if world == 1:
        return ids
    parts = [torch.empty_like(ids) for _ in range(world)]
    dist.all_gather(parts, ids.contiguous())
    return torch.cat(parts, dim=0)


def same_item_mask(item_ids: torch.Tensor, all_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`(local, global)` True where a column is another row of the same item (five captions of one image): such
    columns are not negatives. The positive itself (`labels`) stays unmasked."""
    mask = item_ids[:, None] == all_ids[None, :]
    mask[torch.arange(len(labels), device=labels.device), labels] = False
    return mask


def contrastive_loss(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, item_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised row-paired embeddings `a` and `b` (`logit_scale` already exp'd).

    `item_ids` `(rows,)`: rows with the same id describe the same item (SpeechCLIP's captions of one image), so
    they are left out of each other's negatives rather than pushed apart. Across processes every rank must hold the
    same number of rows (as DDP's samplers give); the loss is the mean over the local rows, so averaging it over
    ranks (DDP's gradient mean) gives the global-batch loss."""
    world, rank = _world()
    labels = torch.arange(a.shape[0], device=a.device) + rank * a.shape[0]
    if world == 1:
        logits_a = logit_scale * a @ b.T
        logits_b = logits_a.T
    else:
        logits_a = logit_scale * a @ gather_with_grad(b).T
        logits_b = logit_scale * b @ gather_with_grad(a).T
    if item_ids is not None:
        if item_ids.shape != (a.shape[0],):
            raise ValueError(f"item_ids: expected shape ({a.shape[0]},), one id per row, got {tuple(item_ids.shape)}")
        mask = same_item_mask(item_ids, gather_ids(item_ids), labels)
        logits_a = logits_a.masked_fill(mask, float("-inf"))
        logits_b = logits_b.masked_fill(mask, float("-inf"))
    return (F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_b, labels)) / 2


def linear_cka(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Linear centred kernel alignment (Kornblith et al. 2019) between two representations of the same rows,
    `x (rows, d1)` and `y (rows, d2)`: ‖yᵀx‖²_F / (‖xᵀx‖_F ‖yᵀy‖_F) after centring each column. 1 when one is an
    isotropic scaling and rotation of the other; the dimensions may differ. Over processes, the global batch."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka: expected (rows, d1) and (rows, d2) with equal rows, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")  # fmt: skip
    if x.shape[0] < 2:
        raise ValueError("linear_cka: needs at least 2 rows (a single row has no variance to align).")
    if _world()[0] > 1:
        x, y = gather_with_grad(x), gather_with_grad(y)
    x = x - x.mean(dim=0, keepdim=True)
    y = y - y.mean(dim=0, keepdim=True)
    cross = (y.T @ x).square().sum()
    return cross / ((x.T @ x).norm() * (y.T @ y).norm()).clamp(min=eps)


def cka_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 − linear CKA: AcuLa's alignment of the audio and text projections (its code's objective)."""
    return 1 - linear_cka(x, y)


def cosine_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of 1 − cos(student_i, teacher_i); the teacher is a target and gets no gradient."""
    return (1 - F.cosine_similarity(student, teacher.detach(), dim=-1)).mean()


def similarity_distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    anchor: torch.Tensor,
    student_scale: torch.Tensor,
    teacher_scale: torch.Tensor | float,
) -> torch.Tensor:
    """KL(teacher ‖ student) between how each ranks the batch's `anchor` rows (CT), both directions, averaged.

    Row i: the teacher's softmax over `teacher_scale · cos(teacher_i, anchor_j)` is the target of the student's over
    `student_scale · cos(student_i, anchor_j)`; and for every anchor row, its distribution over the teachers vs over
    the students. All inputs L2-normalised, row-paired. Unlike 1 − cos, it asks the student for the teacher's
    *ranking* of the volumes, not for the text embedding itself (whose text-only directions a speech tower trained on
    a few hundred reports cannot learn, and which retrieval never reads: CLIP-KD's relational distillation).
    Across processes the anchors, students and teachers are gathered (students with gradients), as in
    `contrastive_loss`."""
    teacher, anchor = teacher.detach(), anchor.detach()
    world, _ = _world()
    all_anchor = anchor if world == 1 else gather_with_grad(anchor)
    all_student = student if world == 1 else gather_with_grad(student)
    all_teacher = teacher if world == 1 else gather_with_grad(teacher)

    def kl(target_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        target = target_logits.log_softmax(dim=-1)
        return F.kl_div(student_logits.log_softmax(dim=-1), target, log_target=True, reduction="batchmean")

    rows = kl(teacher_scale * teacher @ all_anchor.T, student_scale * student @ all_anchor.T)
    columns = kl(teacher_scale * anchor @ all_teacher.T, student_scale * anchor @ all_student.T)
    return (rows + columns) / 2


def quantity_loss(alpha_sum: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CIF's quantity loss: mean |sum(alpha) - target| over the batch (SpeechCLIP+: weight 0.25, target frames / 20
    or the caption's subword count)."""
    return (alpha_sum - target.to(alpha_sum.dtype)).abs().mean()
