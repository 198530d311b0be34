"""Linear probe (AcuLa protocol) against independent scikit-learn fits, and its handling of undefined and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from modeling_speechct.evaluation.linear_probe import (
    check_split,
    linear_probe,
    load_embedding_file,
    stratified_subsample,
)
from scripts import load_script


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Hundreds of tiny fits: threaded BLAS only adds hand-offs, which a busy 2-core machine turns into seconds."""
    with threadpool_limits(1):
        yield


# ----------------------------------------------------------------------------------------------------------------
# data and an independent probe


def _multilabel(seed: int, n: int, dim: int = 8, n_labels: int = 3, noise: float = 0.7):
    """Features with a per-column offset and scale (so standardisation matters); labels linear in them plus noise,
    each label with its own direction — AUROC high but below 1, different per label."""
    rng = np.random.default_rng(seed)
    directions = np.random.default_rng(123).normal(size=(dim, n_labels))
    z = rng.normal(size=(n, dim))
    y = (z @ directions + noise * rng.normal(size=(n, n_labels)) * np.sqrt(dim) > 0).astype(int)
    x = 5.0 + z * np.linspace(0.5, 20, dim)
    return x, y


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    return [(a - mu) / sd for a in (train, *others)]


def _reference_auroc(xtr, ytr, xte, yte, c: float) -> float:
    """Own float64 fit: standardise on train, L2 logistic regression, AUROC of the decision function on test."""
    xtr, xte = _standardise(np.asarray(xtr, np.float64), np.asarray(xte, np.float64))
    model = LogisticRegression(C=c, max_iter=1000).fit(xtr, ytr)
    return roc_auc_score(yte, model.decision_function(xte))


# ----------------------------------------------------------------------------------------------------------------
# agreement with an independent fit


def test_per_label_auroc_equals_independent_sklearn_fit():
    xtr, ytr = _multilabel(0, 300)
    xte, yte = _multilabel(1, 200)
    result = linear_probe((xtr, ytr), (xte, yte), seeds=[0], train_fraction=1.0, default_c=0.3)
    expected = [_reference_auroc(xtr, ytr[:, j], xte, yte[:, j], 0.3) for j in range(3)]
    np.testing.assert_allclose(result["per_seed"][0]["per_label"], expected, atol=1e-9)
    assert min(expected) > 0.75 and max(expected) < 0.99  # informative, not trivially perfect
    assert result["mean"] == pytest.approx(np.mean(expected), abs=1e-9)
    assert result["std"] == 0.0 and result["excluded"] == []
    assert result["protocol"]["c_grid"] is None and result["per_seed"][0]["C"].tolist() == [0.3] * 3


def test_seeds_are_stratified_subsamples_and_each_matches_a_refit():
    xtr, ytr = _multilabel(2, 240)
    xte, yte = _multilabel(3, 200)
    seeds = [0, 1, 2]
    result = linear_probe((xtr, ytr), (xte, yte), seeds=seeds, train_fraction=0.6)
    mu, sd = xtr.mean(axis=0), xtr.std(axis=0)  # standardised on the whole train split, then subsampled
    for s, seed in enumerate(seeds):
        for j in range(3):
            rows = stratified_subsample(ytr[:, j], 0.6, seed, stream=j)
            for cls in (0, 1):  # stratified: the class counts shrink by the fraction
                assert (ytr[rows, j] == cls).sum() == round(0.6 * (ytr[:, j] == cls).sum())
            model = LogisticRegression(C=1.0, max_iter=1000).fit((xtr[rows] - mu) / sd, ytr[rows, j])
            expected = roc_auc_score(yte[:, j], model.decision_function((xte - mu) / sd))
            assert result["per_seed"][s]["per_label"][j] == pytest.approx(expected, abs=1e-9)
    per_seed_means = [s["mean"] for s in result["per_seed"]]
    assert len(set(per_seed_means)) == 3  # seeds differ
    assert result["mean"] == pytest.approx(np.mean(per_seed_means)) and result["std"] == pytest.approx(
        np.std(per_seed_means)
    )


def test_c_is_chosen_on_validation():
    xtr, ytr = _multilabel(4, 120, dim=16)
    xva, yva = _multilabel(5, 150, dim=16)
    xte, yte = _multilabel(6, 150, dim=16)
    grid = [0.0005, 0.01, 1.0, 100.0]
    result = linear_probe((xtr, ytr), (xte, yte), (xva, yva), seeds=[0], train_fraction=1.0, c_grid=grid)
    xs_tr, xs_va, xs_te = _standardise(xtr, xva, xte)
    for j in range(3):
        fits = [LogisticRegression(C=c, max_iter=1000).fit(xs_tr, ytr[:, j]) for c in grid]
        valid = [roc_auc_score(yva[:, j], m.decision_function(xs_va)) for m in fits]
        best = int(np.argmax(valid))  # first maximum = smallest C
        assert result["per_seed"][0]["C"][j] == grid[best]
        expected = roc_auc_score(yte[:, j], fits[best].decision_function(xs_te))
        assert result["per_seed"][0]["per_label"][j] == pytest.approx(expected, abs=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# undefined labels


def test_one_class_labels_are_undefined_excluded_and_noted():
    xtr, ytr = _multilabel(7, 200, n_labels=5)
    xva, yva = _multilabel(8, 100, n_labels=5)
    xte, yte = _multilabel(9, 150, n_labels=5)
    ytr[:, 1] = 0  # no positive in train: no probe
    yte[:, 3] = 1  # only positives in test: no AUROC
    yva[:, 4] = 0  # one class in valid: C cannot be chosen
    names = ["a", "b", "c", "d", "e"]
    result = linear_probe((xtr, ytr), (xte, yte), (xva, yva), seeds=[0, 1], label_names=names, default_c=0.7)
    assert result["excluded"] == ["b", "d"]
    for seed in result["per_seed"]:
        assert np.isnan(seed["per_label"][[1, 3]]).all() and not np.isnan(seed["per_label"][[0, 2, 4]]).any()
        assert seed["mean"] == pytest.approx(np.mean(seed["per_label"][[0, 2, 4]]))
        assert seed["C"][4] == 0.7
    notes = " | ".join(result["notes"])
    assert "label 1 (b): only negatives in train" in notes
    assert "label 3 (d): only positives in test" in notes
    assert "label 4 (e): only negatives in valid" in notes
    assert np.isnan(result["per_label"]["mean"][[1, 3]]).all()


# ----------------------------------------------------------------------------------------------------------------
# multiclass


def _blobs(seed: int, n: int, n_classes: int = 4, dim: int = 6, spread: float = 1.6):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(n_classes, dim))
    y = rng.integers(0, n_classes, n)
    return centres[y] + spread * rng.normal(size=(n, dim)), y


def test_multiclass_macro_auroc_equals_sklearn_ovr_macro():
    xtr, ytr = _blobs(10, 300)
    xte, yte = _blobs(11, 200)
    result = linear_probe((xtr, ytr), (xte, yte), task="multiclass", seeds=[0], train_fraction=1.0, default_c=0.2)
    xs_tr, xs_te = _standardise(xtr, xte)
    proba = LogisticRegression(C=0.2, max_iter=1000).fit(xs_tr, ytr).predict_proba(xs_te)
    expected = roc_auc_score(yte, proba, multi_class="ovr", average="macro")
    assert 0.6 < expected < 0.99
    assert result["mean"] == pytest.approx(expected, abs=1e-9)
    per_class = [roc_auc_score(yte == c, proba[:, c]) for c in range(4)]
    np.testing.assert_allclose(result["per_label"]["mean"], per_class, atol=1e-9)


def test_multiclass_class_missing_from_test_is_excluded():
    xtr, ytr = _blobs(12, 300)
    xte, yte = _blobs(13, 200)
    keep = yte != 2
    result = linear_probe((xtr, ytr), (xte[keep], yte[keep]), task="multiclass", seeds=[0], train_fraction=1.0)
    assert result["excluded"] == ["2"] and any("class 2: not in test" in n for n in result["notes"])
    per_class = result["per_seed"][0]["per_label"]
    assert result["mean"] == pytest.approx(np.nanmean(per_class)) and np.isnan(per_class[2])


# ----------------------------------------------------------------------------------------------------------------
# signal vs noise


def test_probe_on_informative_features_beats_noise():
    xtr, ytr = _multilabel(14, 300, dim=16)
    xte, yte = _multilabel(15, 300, dim=16)
    rng = np.random.default_rng(16)
    informative = linear_probe((xtr, ytr), (xte, yte), seeds=[0, 1, 2])
    noise = linear_probe((rng.normal(size=xtr.shape), ytr), (rng.normal(size=xte.shape), yte), seeds=[0, 1, 2])
    assert informative["mean"] > 0.85
    assert abs(noise["mean"] - 0.5) < 0.1
    assert informative["mean"] - noise["mean"] > 0.3


# ----------------------------------------------------------------------------------------------------------------
# bad input


def test_bad_input_errors_name_the_input():
    x, y = _multilabel(17, 50)
    with pytest.raises(ValueError, match=r"^train: 50 embedding rows but labels of shape \(49, 3\)"):
        check_split(x, y[:49], "train")
    bad = x.copy()
    bad[[7, 9], 2] = np.nan
    with pytest.raises(ValueError, match=r"^test: 2 embedding row\(s\) contain NaN or inf \(first: row 7\)"):
        linear_probe((x, y), (bad, y))
    with pytest.raises(ValueError, match=r"^valid: multi-label labels must be 0/1"):
        linear_probe((x, y), (x, y), (x, y * 2))
    with pytest.raises(ValueError, match="use task='multiclass'"):
        check_split(x, np.arange(50) % 3, "train")
    with pytest.raises(ValueError, match=r"embedding widths differ between splits: \{'train': 8, 'test': 7\}"):
        linear_probe((x, y), (x[:, :7], y))
    with pytest.raises(ValueError, match=r"label columns differ between splits: \{'train': 3, 'test': 2\}"):
        linear_probe((x, y), (x, y[:, :2]))


def test_embedding_files_load_and_bad_files_are_named(tmp_path):
    x, y = _multilabel(18, 20)
    np.savez(tmp_path / "a.npz", embeddings=x, labels=y)
    save_file({"embeddings": x.astype(np.float32), "labels": y}, str(tmp_path / "a.safetensors"))
    for name in ("a.npz", "a.safetensors"):
        ex, ey = load_embedding_file(tmp_path / name)
        np.testing.assert_allclose(ex, x, rtol=1e-6)
        np.testing.assert_array_equal(ey, y)
    np.savez(tmp_path / "nolabels.npz", embeddings=x)
    with pytest.raises(ValueError, match=r"nolabels\.npz: missing key\(s\) \['labels'\]; found \['embeddings'\]"):
        load_embedding_file(tmp_path / "nolabels.npz")
    with pytest.raises(ValueError, match=r"a\.txt: embeddings must be a \.npz or \.safetensors"):
        (tmp_path / "a.txt").write_text("")
        load_embedding_file(tmp_path / "a.txt")


# ----------------------------------------------------------------------------------------------------------------
# command line


def _cli():
    return load_script("eval/linear_probe.py")


def test_cli_writes_every_number_and_names_bad_files(tmp_path):
    cli = _cli()
    data = {"train": _multilabel(19, 150), "valid": _multilabel(20, 80), "test": _multilabel(21, 100)}
    data["test"][1][:, 2] = 0  # undefined in test
    for split, (x, y) in data.items():
        np.savez(tmp_path / f"{split}.npz", embeddings=x, labels=y)
    out = tmp_path / "out"
    argv = ["--embeddings", *(f"{s}={tmp_path / s}.npz" for s in data)]
    record = cli.main([*argv, "--seeds", "0", "1", "--c_grid", "0.1", "1", "--output_dir", str(out)])
    expected = linear_probe(data["train"], data["test"], data["valid"], seeds=[0, 1], c_grid=[0.1, 1])
    saved = json.loads((out / "linear_probe.json").read_text())
    assert saved["mean"] == pytest.approx(expected["mean"]) and saved["std"] == pytest.approx(expected["std"])
    assert saved["per_seed"][1]["per_label"][2] is None  # undefined → null, never NaN or 0.5
    assert saved["per_seed"][1]["per_label"][:2] == pytest.approx(expected["per_seed"][1]["per_label"][:2].tolist())
    assert saved["protocol"]["c_grid"] == [0.1, 1.0] and saved["protocol"]["seeds"] == [0, 1]
    assert saved["excluded"] == ["2"] and "--seeds 0 1" in saved["command"] and record["data"]["valid"]
    assert "| **mean over labels** |" in (out / "linear_probe.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["linear_probe.json", "linear_probe.md"]  # no temp files left

    x, y = data["train"]
    np.savez(tmp_path / "short.npz", embeddings=x, labels=y[:-1])
    with pytest.raises(SystemExit, match=r"short\.npz: 150 embedding rows but labels of shape \(149, 3\)"):
        cli.main(["--embeddings", f"train={tmp_path / 'short.npz'}", f"test={tmp_path / 'test.npz'}"])
    with pytest.raises(SystemExit, match=r"missing \['test'\]"):
        cli.main(["--embeddings", f"train={tmp_path / 'train.npz'}"])


def test_multiclass_single_train_class_is_undefined_not_a_crash():
    x, y = _blobs(22, 60)
    result = linear_probe((x, np.zeros(60, int)), (x, y), task="multiclass", seeds=[0])
    assert np.isnan(result["mean"]) and result["excluded"] == ["0"]
    assert result["notes"] == ["only class 0 in train; no probe, AUROC undefined"]
