"""The embedded benchmark on a small build: layout, labels ↔ reports, reproducibility, speech, resumption."""

import csv

import nibabel as nib
import numpy as np
import pytest
import soundfile as sf

from modeling_speechct.data import ctrate
from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark
from modeling_speechct.data.reports import describes, negates
from modeling_speechct.labels import CT_RATE_LABELS


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The same small build twice (same seed) and once with another seed."""
    root = tmp_path_factory.mktemp("builds")
    made = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        config = BuildConfig(out=root / name, num_volumes=14, seed=seed, shape=(24, 48, 48), workers=2)
        made[name] = (config, build_benchmark(config, progress=False))
    return made


def _rows(root, split):
    with open(ctrate.labels_csv(root, split), newline="") as f:
        labels = list(csv.DictReader(f))
    with open(ctrate.reports_csv(root, split), newline="") as f:
        reports = {r["VolumeName"]: r for r in csv.DictReader(f)}
    return labels, reports


def test_layout_splits_and_columns_match_ct_rate(builds):
    config, stats = builds["a"]
    assert stats["volumes"] == 14 and stats["speech"]["synthesized"] == 14
    counts = {}
    for split in ctrate.SPLITS:
        labels, reports = _rows(config.out, split)
        counts[split] = len(labels)
        assert list(labels[0]) == ["VolumeName", *CT_RATE_LABELS]
        assert list(next(iter(reports.values()))) == list(ctrate.REPORT_COLUMNS)
        for row in labels:
            name = row["VolumeName"]
            assert name.startswith(f"{split}_") and name.endswith("_a_1.nii.gz")
            assert ctrate.volume_path(config.out, name).is_file()
            assert ctrate.speech_path(config.out, name).name == name.replace(".nii.gz", "_findings.wav")
        assert ctrate.metadata_csv(config.out, split).is_file()
    assert counts == {"train": 10, "valid": 2, "test": 2}


def test_every_positive_label_is_reported_and_no_negative_is_claimed(builds):
    config, _ = builds["a"]
    for split in ctrate.SPLITS:
        labels, reports = _rows(config.out, split)
        for row in labels:
            present = {label for label in CT_RATE_LABELS if row[label] == "1"}
            text = reports[row["VolumeName"]]["Findings_EN"]
            assert describes(text) == present, (row["VolumeName"], text)
            assert not negates(text) & present


def test_same_seed_same_build_other_seed_other_build(builds):
    a, b, c = (builds[k][0].out for k in "abc")
    names = [r["VolumeName"] for r in _rows(a, "train")[0]]
    assert _rows(a, "train") == _rows(b, "train") and _rows(a, "train") != _rows(c, "train")
    for name in names[:4]:
        va, vb = nib.load(ctrate.volume_path(a, name)), nib.load(ctrate.volume_path(b, name))
        assert np.array_equal(va.get_fdata(), vb.get_fdata()) and np.array_equal(va.affine, vb.affine)
        assert ctrate.speech_path(a, name).read_bytes() == ctrate.speech_path(b, name).read_bytes()
    first = [nib.load(ctrate.volume_path(p, names[0])).get_fdata() for p in (a, c)]
    assert first[0].shape != first[1].shape or not np.array_equal(*first)


def test_spoken_reports_are_non_silent_and_as_long_as_their_text(builds):
    config, _ = builds["a"]
    lengths, durations = [], []
    for split in ctrate.SPLITS:
        for name, report in _rows(config.out, split)[1].items():
            audio, rate = sf.read(ctrate.speech_path(config.out, name))
            assert np.sqrt(np.mean(audio**2)) > 0.01
            lengths.append(len(report["Findings_EN"]))
            durations.append(len(audio) / rate)
    assert np.corrcoef(lengths, durations)[0, 1] > 0.8


def test_volumes_are_stored_in_varied_orientations_and_load(builds):
    config, _ = builds["a"]
    ds = ctrate.load_ct_rate(config.out, "train")
    assert len(ds) == 10 and all(sum(labels) >= 0 for labels in ds["labels"])
    codes = {"".join(nib.aff2axcodes(nib.load(path).affine)) for path in ds["volume"]}
    assert len(codes) >= 3


def test_rerun_resumes_without_redoing_finished_work(builds, tmp_path):
    config = BuildConfig(out=tmp_path / "resume", num_volumes=6, seed=3, shape=(24, 48, 48))
    build_benchmark(config, progress=False)
    victim = ctrate.speech_path(config.out, _rows(config.out, "train")[0][0]["VolumeName"])
    victim.unlink()
    stats = build_benchmark(config, progress=False)
    assert stats["speech"]["synthesized"] == 1 and stats["speech"]["skipped"] == 5
