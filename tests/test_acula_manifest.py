"""The AcuLa manifest: round trip, one patient per split, paths kept inside the root, bad rows refused by line."""

import numpy as np
import pytest
import soundfile as sf

from modeling_speechct.data.auscultation.manifest import (
    ProbeTask,
    Recording,
    read_manifest,
    read_tasks,
    split_patients,
    write_manifest,
)

TASK = ProbeTask("crackles", "crackles", "crackles", "acoustics", "any crackle")


def _wav(path):
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, 800), 4000)
    return path


def test_round_trip_and_tasks(tmp_path):
    rows = [Recording(_wav(tmp_path / "a.wav"), "p1", "train", "toy", {"age": "70"}, {"crackles": 1}),
            Recording(_wav(tmp_path / "b.wav"), "p2", "test", "toy", {"site": "trachea"}, {})]  # fmt: skip
    write_manifest(tmp_path, rows, [TASK], ["crackles"])
    back = read_manifest(tmp_path)
    assert [(r.path.name, r.patient, r.split, r.metadata, r.labels) for r in back] == [
        ("a.wav", "p1", "train", {"age": "70"}, {"crackles": 1}),
        ("b.wav", "p2", "test", {"site": "trachea"}, {}),
    ]
    assert [r.patient for r in read_manifest(tmp_path, "test")] == ["p2"]
    assert read_tasks(tmp_path) == ([TASK], ["crackles"])


def test_a_patient_in_two_splits_is_refused(tmp_path):
    rows = [Recording(_wav(tmp_path / "a.wav"), "p1", "train", "toy"),
            Recording(_wav(tmp_path / "b.wav"), "p1", "test", "toy")]  # fmt: skip
    with pytest.raises(ValueError, match="patient 'p1' of toy is in both 'train' and 'test'"):
        write_manifest(tmp_path, rows, [TASK], [])


def test_bad_rows_are_refused_with_their_line(tmp_path):
    _wav(tmp_path / "a.wav")
    header = "recording,patient,split,dataset,label:crackles\n"
    for body, message in [("../x.wav,p1,train,toy,1\n", "points outside the dataset root"),
                          ("gone.wav,p1,train,toy,1\n", "gone.wav is missing"),
                          ("a.wav,,train,toy,1\n", "needs a patient"),
                          ("a.wav,p1,train,toy,2\n", "label:crackles is '2'")]:  # fmt: skip
        (tmp_path / "acula_manifest.csv").write_text(header + body)
        with pytest.raises((ValueError, FileNotFoundError), match=message) as info:
            read_manifest(tmp_path)
        assert "acula_manifest.csv:2" in str(info.value)


def test_split_patients_is_seeded_and_per_patient():
    patients = [f"p{i}" for i in range(50)] * 2
    a, b = split_patients(patients, seed=1), split_patients(patients, seed=1)
    assert a == b and set(a) == set(patients) and split_patients(patients, seed=2) != a
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "valid", "test")}
    assert counts == {"train": 35, "valid": 5, "test": 10}
