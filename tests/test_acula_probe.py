"""AcuLa's per-task probes and paired comparisons: against `linear_probe` on each task's own rows, and against an
independent loop over the documented draws with scikit-learn's AUROC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from modeling_speechct.data.auscultation.manifest import ProbeTask, Recording
from modeling_speechct.evaluation.acula_probe import compare_probes, probe_tasks, task_labels
from modeling_speechct.evaluation.linear_probe import linear_probe

TASKS = (ProbeTask("a", "a", "yes", "acoustics"), ProbeTask("b", "b", "yes", "acoustics"),
         ProbeTask("m", "m", "yes", "metadata"))  # fmt: skip


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _split(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Features where task a is known on the first half of rows, b on the rest, m everywhere; each label follows
    its own feature direction plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)) * [1, 2, 3, 1, 1, 5] + [0, 1, -2, 0, 3, 0]
    y = (x[:, :3] / [1, 2, 3] + rng.normal(scale=0.8, size=(n, 3)) > 0).astype(float)
    y[n // 2 :, 0] = np.nan
    y[: n // 2, 1] = np.nan
    return x, y


def _data():
    splits = {"train": _split(0, 160), "valid": _split(1, 60), "test": _split(2, 80)}
    return {s: x for s, (x, _) in splits.items()}, {s: y for s, (_, y) in splits.items()}


def test_task_labels_leave_unknown_labels_nan():
    rows = [Recording(Path("x.wav"), "p", "train", "d", labels={"a": 1, "m": 0}),
            Recording(Path("y.wav"), "q", "train", "d", labels={"b": 0})]  # fmt: skip
    got = task_labels(rows, TASKS)
    np.testing.assert_array_equal(np.isnan(got), [[False, True, False], [True, False, True]])
    assert got[0, 0] == 1 and got[0, 2] == 0 and got[1, 1] == 0


def test_each_task_is_probed_on_its_own_rows_as_linear_probe_would():
    features, labels = _data()
    result = probe_tasks(features, labels, TASKS, seeds=(0, 1, 2))
    for j, task in enumerate(TASKS):
        known = {s: ~np.isnan(y[:, j]) for s, y in labels.items()}
        direct = linear_probe(*[(features[s][known[s]], labels[s][known[s], j]) for s in ("train", "test", "valid")],
                              seeds=(0, 1, 2), keep_scores=True)  # fmt: skip
        assert result["per_task"][task.name]["mean"] == pytest.approx(direct["per_label"]["mean"][0])
        for s, entry in enumerate(direct["per_seed"]):
            np.testing.assert_allclose(result["scores"][s, known["test"], j], entry["scores"][:, 0])
            assert np.isnan(result["scores"][s, ~known["test"], j]).all()
    per_seed = np.array([[result["per_task"][t.name]["per_seed"][s] for t in TASKS] for s in range(3)])
    assert result["mean"] == pytest.approx(per_seed.mean(axis=1).mean())
    assert result["std"] == pytest.approx(per_seed.mean(axis=1).std())
    assert result["groups"]["acoustics tasks"]["mean"] == pytest.approx(per_seed[:, :2].mean())
    assert result["groups"]["metadata tasks"]["mean"] == pytest.approx(per_seed[:, 2].mean())
    assert 0.6 < result["mean"] < 1.0  # the labels are learnable but noisy


def _independent_difference(y, a, b, patients, n_resamples, seed, columns):
    """The documented protocol written out with sklearn: draw a seed, then patients; mean over defined tasks."""
    distinct = sorted(set(patients))
    rows_of = {p: [i for i, q in enumerate(patients) if q == p] for p in distinct}
    rng = np.random.default_rng(seed)

    def mean_difference(rows, s):
        diffs = []
        for j in columns:
            yj = y[rows, j]
            keep = ~np.isnan(yj)
            if 0 < yj[keep].sum() < keep.sum():
                auroc_a = roc_auc_score(yj[keep], a[s][rows, j][keep])
                diffs.append(auroc_a - roc_auc_score(yj[keep], b[s][rows, j][keep]))
        return np.mean(diffs) if diffs else np.nan

    point = np.mean([mean_difference(np.arange(len(y)), s) for s in range(a.shape[0])])
    draws = []
    for _ in range(n_resamples):
        s = int(rng.integers(a.shape[0]))
        chosen = rng.integers(0, len(distinct), len(distinct))
        draws.append(mean_difference(np.concatenate([rows_of[distinct[p]] for p in chosen]), s))
    draws = np.array(draws)
    return point, np.percentile(draws[~np.isnan(draws)], [2.5, 97.5])


def test_paired_difference_matches_an_independent_loop_over_the_documented_draws():
    rng = np.random.default_rng(5)
    n, seeds = 60, 3
    y = (rng.random((n, 3)) < 0.4).astype(float)
    y[::3, 1] = np.nan
    a = y[None] + rng.normal(scale=0.9, size=(seeds, n, 3))
    b = y[None] + rng.normal(scale=4.0, size=(seeds, n, 3))
    patients = [f"p{i // 3:02d}" for i in range(n)]  # three recordings a patient
    got = compare_probes(y, a, b, patients, TASKS, n_resamples=300, seed=11)
    for name, columns in (("all tasks", [0, 1, 2]), ("acoustics tasks", [0, 1]), ("m", [2])):
        point, (low, high) = _independent_difference(y, a, b, patients, 300, 11, columns)
        assert got[name]["difference"] == pytest.approx(point)
        assert got[name]["ci95"] == pytest.approx([low, high])
    assert got["all tasks"]["difference"] > 0 and got["all tasks"]["excludes_zero"]
    swapped = compare_probes(y, b, a, patients, TASKS, n_resamples=300, seed=11)
    assert swapped["all tasks"]["difference"] == pytest.approx(-got["all tasks"]["difference"])


def test_identical_towers_differ_by_exactly_zero_and_one_better_task_moves_only_itself():
    rng = np.random.default_rng(1)
    y = (rng.random((40, 3)) < 0.5).astype(float)
    a = rng.normal(size=(2, 40, 3))
    same = compare_probes(y, a, a.copy(), [str(i // 2) for i in range(40)], TASKS, n_resamples=100)
    assert all(entry["difference"] == 0 and entry["ci95"] == [0, 0] for entry in same.values())
    better = a.copy()
    better[:, :, 2] = y[None, :, 2] * 10 + 0.01 * a[:, :, 2]  # task m separated perfectly
    got = compare_probes(y, better, a, [str(i // 2) for i in range(40)], TASKS, n_resamples=100)
    assert got["a"]["difference"] == 0 and got["b"]["difference"] == 0 and got["acoustics tasks"]["ci95"] == [0, 0]
    assert got["m"]["ci95"][0] > 0 and got["m"]["difference"] == pytest.approx(got["all tasks"]["difference"] * 3)


def test_mismatched_inputs_are_refused_by_name():
    y = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"scores_a .* must both be \(seeds, 4, 3\)"):
        compare_probes(y, np.zeros((1, 4, 2)), np.zeros((1, 4, 2)), list("abcd"), TASKS)
    with pytest.raises(ValueError, match="3 patients for 4 test rows"):
        compare_probes(y, np.zeros((1, 4, 3)), np.zeros((1, 4, 3)), list("abc"), TASKS)
    features, labels = _data()
    with pytest.raises(ValueError, match="missing split"):
        probe_tasks({"train": features["train"]}, labels, TASKS)
