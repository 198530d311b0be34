"""`eval/paired_bootstrap.py` as users run it: two evaluation folders in, the paired differences out."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modeling_speechct.evaluation.paired_comparison import compare_models

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["Cardiomegaly", "Pleural effusion", "Emphysema"]


def _write(folder: Path, names, truth, probs, ranks, order) -> None:
    folder.mkdir(parents=True)
    with open(folder / "zero_shot_scores.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["VolumeName", "label", "p_present", "truth"])
        for i in order:
            for j, label in enumerate(LABELS):
                w.writerow([names[i], label, f"{probs[i, j]:.6f}", int(truth[i, j])])
    with open(folder / "retrieval_ranks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["direction", "VolumeName", "rank"])
        w.writerows(["speech_to_ct", names[i], int(ranks[i])] for i in order)


def _run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "eval" / "paired_bootstrap.py"), *args]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    names = [f"test_{i}_a_1.nii.gz" for i in range(n)]
    truth = (rng.random((n, 3)) < 0.4).astype(int)
    probs_a = np.round(np.clip(truth * 0.3 + rng.random((n, 3)) * 0.7, 0, 1), 6)
    probs_b = np.round(rng.random((n, 3)), 6)
    ranks_a, ranks_b = rng.integers(1, 20, n), rng.integers(1, 40, n)
    _write(tmp_path / "a", names, truth, probs_a, ranks_a, range(n))
    _write(tmp_path / "b", names, truth, probs_b, ranks_b, rng.permutation(n))  # B's rows in another order
    order = np.argsort(names)  # the CLI aligns by sorted volume name
    expected = compare_models(
        truth[order], probs_a[order], probs_b[order], {"speech_to_ct": ranks_a[order]},
        {"speech_to_ct": ranks_b[order]}, n_resamples=40, seed=2,
    )  # fmt: skip
    return tmp_path, expected


def test_rows_are_aligned_by_volume_and_every_difference_matches(folders):
    root, expected = folders
    done = _run(str(root / "a"), str(root / "b"), "--names", "good", "bad", "--output_dir", str(root / "ab"),
                "--n_resamples", "40", "--seed", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads((root / "ab" / "paired.json").read_text())
    assert record["volumes"] == 60 and record["names"] == ["good", "bad"]
    assert set(record["paired"]) == set(expected)
    for metric, entry in expected.items():
        assert record["paired"][metric]["difference"] == pytest.approx(entry["difference"], abs=1e-9), metric
        assert record["paired"][metric]["ci95"] == pytest.approx(entry["ci95"], abs=1e-9), metric
    assert "good − bad" in (root / "ab" / "paired.md").read_text()


def test_different_volumes_are_refused(folders):
    root, _ = folders
    lines = (root / "b" / "zero_shot_scores.csv").read_text().splitlines()
    (root / "b" / "zero_shot_scores.csv").write_text("\n".join(lines[:-3]) + "\n")  # one volume fewer
    done = _run(str(root / "a"), str(root / "b"), "--output_dir", str(root / "ab"))
    assert done.returncode != 0 and "scored different volumes" in done.stderr
    assert not (root / "ab" / "paired.json").exists()


def test_different_truths_are_refused(folders):
    root, _ = folders
    path = root / "b" / "zero_shot_scores.csv"
    rows = path.read_text().splitlines()
    name, label, p, truth = rows[1].split(",")
    rows[1] = ",".join([name, label, p, str(1 - int(truth))])
    path.write_text("\n".join(rows) + "\n")
    done = _run(str(root / "a"), str(root / "b"), "--output_dir", str(root / "ab"))
    assert done.returncode != 0 and "disagree on the ground truth" in done.stderr


def test_a_missing_folder_names_the_file(tmp_path):
    done = _run(str(tmp_path / "nowhere"), str(tmp_path / "b"), "--output_dir", str(tmp_path / "ab"))
    assert done.returncode != 0 and "zero_shot_scores.csv: missing" in done.stderr
