"""The packaged `evaluate` modules against `metrics.py` and independent scikit-learn re-computations; loading them
offline; the evaluation figures; provenance and atomic writes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import stat
import sys
from importlib.metadata import version
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.metrics.pairwise import cosine_similarity

from modeling_speechct.evaluation import metrics
from modeling_speechct.evaluation.metric_modules import METRIC_MODULES, load_metric, metric_path
from modeling_speechct.evaluation.plots import plot_recall_curve, plot_roc_curves
from modeling_speechct.files.provenance import (
    data_revision,
    evaluation_provenance,
    model_revision,
    write_json_atomic,
    write_text_atomic,
)
from modeling_speechct.labels import CT_RATE_LABELS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# ----------------------------------------------------------------------------------------------------------------
# loading, offline and into temporary caches


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Every module loaded once, with Hub access forbidden at the socket and every cache in a temporary folder.

    Yields (modules, connection attempts, the modules cache, the data cache)."""
    import datasets
    import evaluate
    import huggingface_hub

    root = tmp_path_factory.mktemp("evaluate")
    modules_cache, data_cache = root / "modules", root / "metrics"
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args[1] if len(args) > 1 else args)
        raise OSError("network access in a test of offline loading")

    with pytest.MonkeyPatch.context() as mp:
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
            mp.setenv(name, "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
        mp.setattr(evaluate.config, "HF_MODULES_CACHE", modules_cache)
        mp.setattr(evaluate.config, "HF_METRICS_CACHE", str(data_cache))
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        # A module cache imported earlier in this process would shadow ours: import `evaluate_modules` afresh.
        for key in [k for k in sys.modules if k == "evaluate_modules" or k.startswith("evaluate_modules.")]:
            mp.delitem(sys.modules, key)
        mp.syspath_prepend(str(modules_cache))  # what `import evaluate` does for its own cache, for the redirected one
        try:
            modules = {name: load_metric(name, cache_dir=str(data_cache)) for name in METRIC_MODULES}
            modules["retrieval_embeddings"] = load_metric("retrieval_recall", "embeddings", cache_dir=str(data_cache))
            yield modules, attempts, modules_cache, data_cache  # the guards stay on while this file's tests compute
        finally:
            for key in [k for k in sys.modules if k == "evaluate_modules" or k.startswith("evaluate_modules.")]:
                del sys.modules[key]  # ours; the context restores any that were there before


def test_modules_load_offline_from_the_package_into_temporary_caches(loaded):
    modules, attempts, modules_cache, data_cache = loaded
    assert attempts == []
    for name in METRIC_MODULES:
        assert (metric_path(name) / f"{name}.py").is_file()  # evaluate's rule: the script is named as its folder
        copies = list(modules_cache.rglob(f"{name}.py"))
        assert len(copies) == 1 and copies[0].read_bytes() == (metric_path(name) / f"{name}.py").read_bytes()
        info = modules[name].info
        assert len(info.description) > 200 and "Returns:" in info.inputs_description and info.features
        assert info.format is None  # datasets' NumPy format would cast the scores to float32
    assert "2403.17834" in modules["ctclip_zero_shot"].info.citation
    assert set(modules["threshold_transfer"].info.features) == {"predictions", "references", "split"}
    assert set(modules["retrieval_embeddings"].info.features) == {"query_embeddings", "gallery_embeddings", "ids"}
    assert [p for p in data_cache.rglob("*") if p.is_file()] == []  # keep_in_memory: no Arrow cache files
    with pytest.raises(ValueError, match="unknown metric module"):
        load_metric("accuracy")  # never falls through to a Hub download


# ----------------------------------------------------------------------------------------------------------------
# data


def _random(seed: int = 0, n: int = 90, n_labels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Labels of varied prevalence; probabilities with signal, rounded to 3 decimals so some scores tie."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < rng.uniform(0.15, 0.6, n_labels)).astype(int)
    y[0], y[1] = 1, 0
    s = np.round(1 / (1 + np.exp(-(1.3 * y + rng.normal(size=(n, n_labels))))), 3)
    return y, s


def _adversarial(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Columns: heavy ties (0.1 grid), scores on CT-CLIP's threshold grid, a single positive, all scores equal,
    no positive, no negative."""
    rng = np.random.default_rng(11)
    y = np.zeros((n, 6), dtype=int)
    s = np.zeros((n, 6))
    y[:, 0] = rng.random(n) < 0.4
    s[:, 0] = np.round(np.clip(0.5 + 0.3 * (y[:, 0] - 0.5) + 0.25 * rng.normal(size=n), 0, 1), 1)
    y[:, 1] = rng.random(n) < 0.5
    s[:, 1] = metrics.CTCLIP_THRESHOLD_GRID[rng.integers(0, 100, n)]
    y[5, 2] = 1
    s[:, 2] = rng.random(n)
    y[::3, 3] = 1
    s[:, 3] = 0.5
    s[:, 4] = rng.random(n)  # column 4: no positive
    y[:, 5] = 1
    s[:, 5] = rng.random(n)
    return y, s


CASES = {"random": _random, "adversarial": _adversarial}


def _assert_same(got, expected):
    """Equal structure; arrays equal element-wise with NaN == NaN; floats exactly equal (one implementation)."""
    if isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            _assert_same(got[key], expected[key])
    elif isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(got, expected)
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected


# ----------------------------------------------------------------------------------------------------------------
# multilabel_auroc


@pytest.mark.parametrize("case", CASES)
def test_multilabel_auroc_equals_metrics_and_sklearn(loaded, case):
    y, s = CASES[case]()
    names = [f"finding {j}" for j in range(y.shape[1])]
    out = loaded[0]["multilabel_auroc"].compute(predictions=s, references=y, label_names=names)

    np.testing.assert_array_equal(out["per_label"], metrics.auroc_per_label(y, s))
    assert (out["mean"], out["excluded"]) == metrics.mean_defined(out["per_label"])
    single = [j for j in range(y.shape[1]) if len(np.unique(y[:, j])) < 2]
    sk = [roc_auc_score(y[:, j], s[:, j]) for j in range(y.shape[1]) if j not in single]
    np.testing.assert_allclose(np.delete(out["per_label"], single), sk, rtol=0, atol=1e-12)
    assert out["mean"] == pytest.approx(np.mean(sk), abs=1e-12)
    assert out["excluded"] == single and out["excluded_labels"] == [names[j] for j in single]
    if case == "adversarial":
        assert single == [4, 5]
        assert out["notes"] == [
            "label 4 (finding 4): only negatives; AUROC undefined, excluded from the mean",
            "label 5 (finding 5): only positives; AUROC undefined, excluded from the mean",
        ]
        assert out["per_label"][3] == 0.5  # all scores tied: defined, chance
        assert out["mean"] != pytest.approx(np.mean([*sk, 0.5, 0.5]))  # not imputed as chance
    else:
        assert single == [] and out["notes"] == []


def test_multilabel_auroc_bootstrap_equals_bootstrap_ci(loaded):
    y, s = _adversarial()
    out = loaded[0]["multilabel_auroc"].compute(predictions=s, references=y, n_resamples=30, seed=3)
    ci = metrics.bootstrap_ci(
        lambda a, b: metrics.mean_defined(metrics.auroc_per_label(a, b))[0], y, s, n_resamples=30, seed=3
    )
    assert out["ci"] == [ci.low, ci.high] and out["bootstrap_dropped"] == ci.n_dropped
    assert ci.low < out["mean"] < ci.high and out["n_resamples"] == 30 and "excluded_labels" not in out
    assert "ci" not in loaded[0]["multilabel_auroc"].compute(predictions=s, references=y)


# ----------------------------------------------------------------------------------------------------------------
# ctclip_zero_shot


def _ctclip_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """CT-CLIP's loop, as written there: linspace(0, 1, 100), `s > t`, keep t when the corner distance is <= best."""
    best_t, best_d = math.nan, math.inf
    for t in np.linspace(0, 1, 100):
        pred = s > t
        tpr = (pred & (y == 1)).sum() / (y == 1).sum()
        fpr = (pred & (y == 0)).sum() / (y == 0).sum()
        d = math.sqrt((1 - tpr) ** 2 + fpr**2)
        if d <= best_d:
            best_t, best_d = t, d
    return best_t


@pytest.mark.parametrize("case", CASES)
def test_ctclip_zero_shot_equals_protocol_and_sklearn(loaded, case):
    y, s = CASES[case]()
    out = loaded[0]["ctclip_zero_shot"].compute(predictions=s, references=y)
    _assert_same(out, metrics.ctclip_protocol(y, s))

    for j in range(y.shape[1]):
        if len(np.unique(y[:, j])) < 2:
            assert all(np.isnan(v[j]) for v in out["per_label"].values()) and np.isnan(out["thresholds"][j])
            continue
        t = _ctclip_threshold(y[:, j], s[:, j])
        assert out["thresholds"][j] == t
        pred = (s[:, j] > t).astype(int)
        expected = {
            "auroc": roc_auc_score(y[:, j], s[:, j]),
            "f1_weighted": f1_score(y[:, j], pred, average="weighted"),
            "accuracy": accuracy_score(y[:, j], pred),
            "precision": precision_score(y[:, j], pred, zero_division=0),
            "recall": recall_score(y[:, j], pred),
        }
        for name, value in expected.items():
            assert out["per_label"][name][j] == pytest.approx(value, abs=1e-12), (name, j)
    if case == "adversarial":
        assert all(excluded == [4, 5] for excluded in out["excluded"].values())
        assert any("label 4: only negatives" in note for note in out["notes"])


# ----------------------------------------------------------------------------------------------------------------
# threshold_transfer


def _best_f1_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """Brute force over the distinct validation scores: the highest t with the maximal F1 of `s >= t`."""
    candidates = np.unique(s)[::-1]
    f1 = [f1_score(y, (s >= t).astype(int), zero_division=0) for t in candidates]
    return float(candidates[int(np.argmax(f1))])


@pytest.mark.parametrize("case", CASES)
def test_threshold_transfer_equals_standard_protocol_and_sklearn(loaded, case):
    y, s = CASES[case]()
    rng = np.random.default_rng(5)
    is_val = rng.permutation(len(y)) % 2 == 0  # interleaved rows: the split column alone decides
    if case == "adversarial":
        y[is_val, 2] = 0  # label 2: its only positive moves to test, so validation has one class
    split = np.where(is_val, "valid", "test").tolist()
    out = loaded[0]["threshold_transfer"].compute(
        predictions=s, references=y, split=split, validation_split="valid", test_split="test"
    )
    _assert_same(out, metrics.standard_protocol(y[is_val], s[is_val], y[~is_val], s[~is_val]))

    yv, sv, yt, st = y[is_val], s[is_val], y[~is_val], s[~is_val]
    for j in range(y.shape[1]):
        if len(np.unique(yv[:, j])) < 2:
            assert np.isnan(out["thresholds"][j]) and all(np.isnan(v[j]) for v in out["per_label"].values())
            continue
        t = _best_f1_threshold(yv[:, j], sv[:, j])
        assert out["thresholds"][j] == t
        pred = (st[:, j] >= t).astype(int)
        assert out["per_label"]["accuracy"][j] == pytest.approx(accuracy_score(yt[:, j], pred), abs=1e-12)
        for name, fn in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score)):
            expected = fn(yt[:, j], pred, zero_division=np.nan)
            if np.isnan(expected):
                assert np.isnan(out["per_label"][name][j]) and j in out["excluded"][name]
            else:
                assert out["per_label"][name][j] == pytest.approx(expected, abs=1e-12), (name, j)
    assert out["macro_f1"] == pytest.approx(np.nanmean(out["per_label"]["f1"]), abs=1e-12)
    if case == "adversarial":
        assert "label 2: one class on validation; no threshold, test metrics undefined" in out["notes"]
        assert {2, 4, 5} <= set(out["excluded"]["f1"])


def test_threshold_transfer_refuses_unusable_splits(loaded):
    module = loaded[0]["threshold_transfer"]
    y, s = _random(n=6, n_labels=2)
    with pytest.raises(ValueError, match="neither"):
        module.compute(predictions=s, references=y, split=["validation"] * 3 + ["train"] * 3)
    with pytest.raises(ValueError, match="no row has split 'test'"):
        module.compute(predictions=s, references=y, split=["validation"] * 6)
    with pytest.raises(ValueError, match="thresholds would see test"):
        module.compute(predictions=s, references=y, split=["test"] * 6, validation_split="test")


# ----------------------------------------------------------------------------------------------------------------
# retrieval_recall


def _brute_force_ranks(q: np.ndarray, g: np.ndarray, ids: list[str]) -> np.ndarray:
    """Full similarity matrix (scikit-learn's cosine); rank = 1 + incorrect items at least as similar as the best
    correct one."""
    sim = cosine_similarity(q, g)
    same = np.asarray(ids)[:, None] == np.asarray(ids)[None, :]
    ranks = []
    for i in range(len(q)):
        best = sim[i][same[i]].max()
        ranks.append(1 + int(((sim[i] >= best - 1e-12) & ~same[i]).sum()))
    return np.array(ranks)


def test_retrieval_recall_from_ranks_equals_metrics(loaded):
    ranks = np.random.default_rng(2).integers(1, 300, 257)
    ks = (1, 5, 10, 50, 100)
    out = loaded[0]["retrieval_recall"].compute(ranks=ranks, ks=ks)
    _assert_same(out, {**metrics.recall_at_k(ranks, ks), **metrics.rank_summary(ranks)})
    assert out["R@50"] == pytest.approx(np.mean(ranks <= 50)) and out["median_rank"] == np.median(ranks)


@pytest.mark.parametrize("case", ["random", "adversarial"])
def test_retrieval_recall_from_embeddings_equals_metrics_and_brute_force(loaded, case):
    rng = np.random.default_rng(4)
    n, dim = 60, 16
    q = rng.normal(size=(n, dim)).astype(np.float32)
    g = (q + 1.5 * rng.normal(size=(n, dim))).astype(np.float32)
    ids = [f"scan_{i // 2}" for i in range(n)]  # two reconstructions per scan share its report
    if case == "adversarial":
        g[10:30] = g[10]  # many identical gallery items: ties must count against the query
        q[40] = 0
        q[40, 0] = 1  # an axis-aligned query
    out = loaded[0]["retrieval_embeddings"].compute(
        query_embeddings=q, gallery_embeddings=g, ids=ids, chunk_size=7, return_ranks=True
    )
    direct = metrics.retrieval_ranks(q, g, ids, ids, chunk_size=7)
    np.testing.assert_array_equal(out.pop("ranks"), direct)
    _assert_same(out, {**metrics.recall_at_k(direct), **metrics.rank_summary(direct)})
    np.testing.assert_array_equal(direct, _brute_force_ranks(q.astype(np.float64), g.astype(np.float64), ids))
    if case == "adversarial":
        assert direct[10:30].min() >= 19  # 20 tied items, at most 2 of them correct: pessimistic ranks


# ----------------------------------------------------------------------------------------------------------------
# figures


def _assert_png(path: Path, fig) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    width, height = (fig.get_size_inches() * 100).round().astype(int)
    assert matplotlib.image.imread(path).shape[:2] == (height, width)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the temporary file was replaced, not left


def test_plot_roc_curves_draws_defined_labels_and_notes_undefined(tmp_path):
    y, s = _adversarial()
    labels = list(CT_RATE_LABELS[:6])
    path = tmp_path / "roc" / "roc_curves.png"
    fig = plot_roc_curves(y, s, labels, path)
    _assert_png(path, fig)

    auroc = metrics.auroc_per_label(y, s)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == labels
    curves = [line for ax in panels for line in ax.get_lines() if line.get_gid() == "roc"]
    assert len(curves) == 4  # labels 4 (no positive) and 5 (no negative) are not drawn
    for j in (4, 5):
        assert len(panels[j].get_lines()) == 0 and panels[j].get_legend() is None
        assert "undefined" in panels[j].texts[0].get_text()
    assert "only negatives" in panels[4].texts[0].get_text()
    for j in range(4):
        (legend,) = [t.get_text() for t in panels[j].get_legend().get_texts()]
        assert legend == f"AUROC {auroc[j]:.3f}"
        (line,) = [line for line in panels[j].get_lines() if line.get_gid() == "roc"]
        assert line.get_xdata()[0] == 0 and line.get_ydata()[-1] == 1
    assert len(fig.axes) == 10 and sum(not ax.axison for ax in fig.axes) == 4  # 2 × 5 grid, 4 spare panels hidden


def test_plot_recall_curve_matches_recall_at_k(tmp_path):
    rng = np.random.default_rng(8)
    ranks = {"text_to_ct": rng.integers(1, 200, 150), "ct_to_text": rng.integers(1, 40, 150)}
    path = tmp_path / "recall_at_k.png"
    fig = plot_recall_curve(ranks, path)
    _assert_png(path, fig)

    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    lines = [line for line in ax.get_lines() if line.get_gid() == "recall"]
    assert len(lines) == 2
    for line, (name, r) in zip(lines, ranks.items(), strict=True):
        assert line.get_label().startswith(name.replace("_", " "))
        k, recall = line.get_xdata(), line.get_ydata()
        assert k[0] == 1 and recall[-1] == 1
        for cut, value in metrics.recall_at_k(r, (1, 5, 10, 50)).items():
            assert recall[int(cut[2:]) - 1] == pytest.approx(value)


# ----------------------------------------------------------------------------------------------------------------
# provenance and atomic writes


def _write_tables(root: Path, split: str, rows: list[str]) -> None:
    long = {"valid": "validation", "test": "test"}[split]
    for folder, name in (
        ("radiology_text_reports", f"{long}_reports.csv"),
        ("multi_abnormality_labels", f"{split}_predicted_labels.csv"),
    ):
        path = root / "dataset" / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(rows) + "\n")


def test_provenance_tracks_weights_and_tables(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights v1")
    first = model_revision(model)
    assert first["source"] == "local" and first["sha256"] == hashlib.sha256(b"weights v1").hexdigest()
    (model / "model.safetensors").write_bytes(b"weights v2")
    assert model_revision(model)["sha256"] not in (None, first["sha256"])

    snapshot = tmp_path / "hub" / "models--org--speechct-clip" / "snapshots" / ("ab" * 20)
    snapshot.mkdir(parents=True)
    assert model_revision(snapshot) == {
        "source": "hub",
        "repo_type": "model",
        "repo_id": "org/speechct-clip",
        "commit": "ab" * 20,
    }

    data = tmp_path / "data"
    _write_tables(data, "test", ["VolumeName,x", "test_1_a_1.nii.gz,0"])
    _write_tables(data, "valid", ["VolumeName,x", "valid_1_a_1.nii.gz,0"])
    test_only = data_revision(data, ["test"])
    assert test_only["files"] == [
        "dataset/multi_abnormality_labels/test_predicted_labels.csv",
        "dataset/radiology_text_reports/test_reports.csv",
    ]
    both = data_revision(data, ["test", "valid"])
    assert both["sha256"] != test_only["sha256"] and len(both["files"]) == 4
    _write_tables(data, "valid", ["VolumeName,x", "valid_1_a_1.nii.gz,1"])  # a label of the other split changes
    assert data_revision(data, ["test"]) == test_only
    assert data_revision(data, ["test", "valid"])["sha256"] != both["sha256"]

    record = evaluation_provenance(model, data, ["test"])
    assert record["model"]["sha256"] == hashlib.sha256(b"weights v2").hexdigest()
    assert record["data"] == test_only
    assert record["package"]["version"] == version("speechct-clip")
    if "git_commit" in record["package"]:  # running from a checkout of this package
        assert len(record["package"]["git_commit"]) == 40 and isinstance(record["package"]["git_dirty"], bool)
    json.dumps(record)  # goes into the results JSON as is


def test_atomic_writes_leave_one_readable_file(tmp_path):
    path = tmp_path / "out" / "result.json"
    write_json_atomic(path, {"auroc": 0.5})
    write_text_atomic(tmp_path / "out" / "table.md", "| a |\n")
    assert json.loads(path.read_text()) == {"auroc": 0.5}
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json", "table.md"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # not the temporary file's private 0600
