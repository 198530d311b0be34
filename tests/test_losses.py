"""InfoNCE against a float64 formula, and the cross-process gather: 2 gloo processes ≡ one global batch."""

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from numpy_reference import cosine_distance, info_nce, similarity_kl

from modeling_speechct.losses import (
    cka_loss,
    contrastive_loss,
    cosine_distillation_loss,
    linear_cka,
    similarity_distillation_loss,
)


def _features(n=8, d=5, seed=3):
    g = torch.Generator().manual_seed(seed)
    return (F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1) for _ in range(2))


def test_single_process_loss_matches_formula():
    a, b = _features()
    got = contrastive_loss(a, b, torch.tensor(2.5, dtype=torch.float64))
    np.testing.assert_allclose(got.item(), info_nce(a.numpy(), b.numpy(), 2.5), rtol=1e-12)
    np.testing.assert_allclose(cosine_distillation_loss(a, b).item(), cosine_distance(a.numpy(), b.numpy()), rtol=1e-12)


ITEMS = torch.tensor([0, 1, 2, 3, 3, 4, 5, 0])  # rows 3–4 and 0–7 are captions of one item; 0–7 straddle the ranks


def test_same_item_rows_are_not_each_others_negatives():
    a, b = _features()
    scale = torch.tensor(2.5, dtype=torch.float64)
    got = contrastive_loss(a, b, scale, item_ids=ITEMS)
    np.testing.assert_allclose(got.item(), info_nce(a.numpy(), b.numpy(), 2.5, ITEMS.numpy()), rtol=1e-12)
    assert got.item() < contrastive_loss(a, b, scale).item()  # fewer negatives: a smaller loss
    distinct = contrastive_loss(a, b, scale, item_ids=torch.arange(8) * 7)
    assert distinct.item() == contrastive_loss(a, b, scale).item()  # all items distinct: plain InfoNCE
    with pytest.raises(ValueError, match=r"item_ids: expected shape \(8,\), one id per row, got \(7,\)"):
        contrastive_loss(a, b, scale, item_ids=ITEMS[:7])


def test_similarity_distillation_matches_formula_and_leaves_the_teacher_alone():
    g = torch.Generator().manual_seed(5)
    student, teacher, ct = (F.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=-1) for _ in range(3))
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    got = similarity_distillation_loss(student, teacher, ct, torch.tensor(3.0, dtype=torch.float64), 7.0)
    want = similarity_kl(student.detach().numpy(), teacher.detach().numpy(), ct.numpy(), 3.0, 7.0)
    np.testing.assert_allclose(got.item(), want, rtol=1e-12)
    got.backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0
    # a student that ranks the volumes exactly as the teacher does (same vectors, same temperature) costs nothing
    same = similarity_distillation_loss(teacher.detach(), teacher.detach(), ct, torch.tensor(7.0), 7.0)
    assert abs(same.item()) < 1e-12


def _worker(rank, world, port, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    a, b = _features()
    rows = slice(rank * 4, rank * 4 + 4)
    a_local = a[rows].clone().requires_grad_(True)
    b_local = b[rows].clone().requires_grad_(True)
    loss = contrastive_loss(a_local, b_local, torch.tensor(2.5, dtype=torch.float64))
    loss.backward()
    a_masked = a[rows].clone().requires_grad_(True)
    masked = contrastive_loss(a_masked, b[rows], torch.tensor(2.5, dtype=torch.float64), item_ids=ITEMS[rows])
    masked.backward()
    student = a[rows].clone().requires_grad_(True)
    kd = similarity_distillation_loss(student, b[rows], next(_features(seed=4))[rows], torch.tensor(2.0), 5.0)
    kd.backward()
    x_cka = a[rows].clone().requires_grad_(True)
    cka = cka_loss(x_cka, b[rows, :3] ** 2)
    cka.backward()
    np.savez(
        f"{out_dir}/rank{rank}.npz",
        loss=loss.item(),
        ga=a_local.grad.numpy(),
        gb=b_local.grad.numpy(),
        kd=kd.item(),
        gkd=student.grad.numpy(),
        masked=masked.item(),
        gmasked=a_masked.grad.numpy(),
        cka=cka.item(),
        gcka=x_cka.grad.numpy(),
    )
    dist.destroy_process_group()


def test_two_processes_see_the_global_batch_with_gradients(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    a, b = (t.clone().requires_grad_(True) for t in _features())
    full = contrastive_loss(a, b, torch.tensor(2.5, dtype=torch.float64))
    full.backward()
    # Each rank averages over its own rows against all rows: the mean of the ranks' losses is the global loss.
    np.testing.assert_allclose(np.mean([r["loss"] for r in ranks]), full.item(), rtol=1e-10)
    # all_gather's backward sums every rank's gradient into the owner: world × the global gradient.
    for rank, r in enumerate(ranks):
        np.testing.assert_allclose(r["ga"], 2 * a.grad[rank * 4 : rank * 4 + 4].numpy(), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(r["gb"], 2 * b.grad[rank * 4 : rank * 4 + 4].numpy(), rtol=1e-8, atol=1e-12)
    # same-item masking sees the other rank's rows of an item (rows 0 and 7 live on different ranks)
    a_masked = a.detach().clone().requires_grad_(True)
    masked = contrastive_loss(a_masked, b.detach(), torch.tensor(2.5, dtype=torch.float64), item_ids=ITEMS)
    masked.backward()
    np.testing.assert_allclose(np.mean([r["masked"] for r in ranks]), masked.item(), rtol=1e-10)
    for rank, r in enumerate(ranks):
        expected = 2 * a_masked.grad[rank * 4 : rank * 4 + 4].numpy()
        np.testing.assert_allclose(r["gmasked"], expected, rtol=1e-8, atol=1e-12)
    # the similarity distillation gathers anchors, students and teachers the same way
    student = a.detach().clone().requires_grad_(True)
    kd = similarity_distillation_loss(student, b.detach(), next(_features(seed=4)), torch.tensor(2.0), 5.0)
    kd.backward()
    np.testing.assert_allclose(np.mean([r["kd"] for r in ranks]), kd.item(), rtol=1e-10)
    for rank, r in enumerate(ranks):
        np.testing.assert_allclose(r["gkd"], 2 * student.grad[rank * 4 : rank * 4 + 4].numpy(), rtol=1e-8, atol=1e-12)
    # CKA is a statistic of the whole batch: every rank computes the global value over the gathered rows
    x_cka = a.detach().clone().requires_grad_(True)
    cka = cka_loss(x_cka, b.detach()[:, :3] ** 2)
    cka.backward()
    for rank, r in enumerate(ranks):
        np.testing.assert_allclose(r["cka"], cka.item(), rtol=1e-10)
        np.testing.assert_allclose(r["gcka"], 2 * x_cka.grad[rank * 4 : rank * 4 + 4].numpy(), rtol=1e-8, atol=1e-12)


def _hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from Gram matrices (the HSIC form of Kornblith et al., eq. 3), float64: independent of the feature form."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def test_linear_cka_matches_the_gram_matrix_form_and_its_invariances():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(12, 6, generator=g, dtype=torch.float64)
    noise = torch.randn(12, 4, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 4, generator=g, dtype=torch.float64) + 0.5 * noise
    np.testing.assert_allclose(linear_cka(x, y).item(), _hsic_cka(x.numpy(), y.numpy()), rtol=1e-10)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    moved = 3.7 * y @ rotation + 2.0  # isotropic scaling, orthogonal rotation, a shift
    np.testing.assert_allclose(linear_cka(x, moved).item(), linear_cka(x, y).item(), rtol=1e-10)
    assert linear_cka(x, 2 * x).item() == pytest.approx(1.0)
    stretched = y * torch.tensor([1.0, 1.0, 1.0, 10.0], dtype=torch.float64)  # not isotropic: CKA changes
    assert abs(linear_cka(x, stretched).item() - linear_cka(x, y).item()) > 1e-3
    assert cka_loss(x, y).item() == pytest.approx(1 - linear_cka(x, y).item())
    with pytest.raises(ValueError, match="equal rows"):
        linear_cka(x, y[:5])


def test_cka_loss_falls_when_its_gradient_is_followed():
    g = torch.Generator().manual_seed(6)
    target = torch.randn(32, 8, generator=g)
    w = torch.randn(8, 5, generator=g, requires_grad=True)
    inputs = torch.randn(32, 8, generator=g)
    optimiser = torch.optim.SGD([w], lr=0.5)
    first = cka_loss(inputs @ w, target).item()
    for _ in range(50):
        optimiser.zero_grad()
        cka_loss(inputs @ w, target).backward()
        optimiser.step()
    assert cka_loss(inputs @ w, target).item() < first - 0.05
