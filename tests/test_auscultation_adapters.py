"""The real-dataset adapters read miniature folders written in each dataset's distributed layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from modeling_speechct.data.auscultation import circor, coswara, coughvid, icbhi, kauh
from modeling_speechct.data.auscultation.adapters import ADAPTERS, write_dataset_manifest
from modeling_speechct.data.auscultation.manifest import read_manifest


def _wav(path: Path, fmt: str = "WAV") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, 2000).astype("float32"), 4000, format=fmt)
    return path


def _csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def make_icbhi(root: Path) -> dict[str, dict[str, int]]:
    """Three patients; 101 has two recordings. Returns stem → expected labels."""
    cycles = {"101_1b1_Al_sc_Meditron": [(0, 1)], "101_1b1_Pr_sc_Meditron": [(0, 0)],
              "102_1b1_Ar_sc_Meditron": [(1, 0), (0, 0)], "103_2b2_Tc_mc_LittC2SE": [(0, 0)]}  # fmt: skip
    for stem, cs in cycles.items():
        _wav(root / icbhi.AUDIO / f"{stem}.wav")
        lines = [f"{0.1 * i:.3f}\t{0.1 * i + 0.1:.3f}\t{c}\t{w}" for i, (c, w) in enumerate(cs)]
        (root / icbhi.AUDIO / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (root / icbhi.DIAGNOSIS).write_text("101\tCOPD\n102\tHealthy\n103\tURTI\n")
    (root / icbhi.SPLIT).write_text("".join(f"{s}\t{'test' if s.startswith('103') else 'train'}\n" for s in cycles))
    demographics = "101\t75\tM\t25.2\tNA\tNA\n102\t0.5\tF\tNA\t7.1\t64\n103\t70\tF\tNA\tNA\tNA\n"
    (root / icbhi.DEMOGRAPHICS).write_text(demographics)
    return {"101_1b1_Al_sc_Meditron": {"crackles": 0, "wheezes": 1, "copd": 1},
            "101_1b1_Pr_sc_Meditron": {"crackles": 0, "wheezes": 0, "copd": 1},
            "102_1b1_Ar_sc_Meditron": {"crackles": 1, "wheezes": 0, "copd": 0},
            "103_2b2_Tc_mc_LittC2SE": {"crackles": 0, "wheezes": 0}}  # fmt: skip


def make_circor(root: Path) -> dict[str, dict[str, int]]:
    rows = [{"Patient ID": "2530", "Recording locations:": "AV+PV+PV", "Age": "Child", "Sex": "Female",
             "Height": "98.0", "Weight": "15.9", "Pregnancy status": "False", "Murmur": "Present",
             "Murmur locations": "AV+PV", "Outcome": "Abnormal"},
            {"Patient ID": "9979", "Recording locations:": "MV", "Age": "Infant", "Sex": "Male", "Height": "nan",
             "Weight": "nan", "Pregnancy status": "False", "Murmur": "Absent", "Murmur locations": "nan",
             "Outcome": "Normal"},
            {"Patient ID": "14241", "Recording locations:": "TV", "Age": "Child", "Sex": "Male", "Height": "120",
             "Weight": "20", "Pregnancy status": "False", "Murmur": "Unknown", "Murmur locations": "nan",
             "Outcome": "Abnormal"}]  # fmt: skip
    _csv(root / circor.CSV, rows)
    for stem in ("2530_AV", "2530_PV_1", "2530_PV_2", "9979_MV", "14241_TV"):
        _wav(root / circor.AUDIO / f"{stem}.wav")
    return {"2530_AV": {"murmur": 1, "abnormal_outcome": 1}, "2530_PV_1": {"murmur": 1, "abnormal_outcome": 1},
            "2530_PV_2": {"murmur": 1, "abnormal_outcome": 1}, "9979_MV": {"murmur": 0, "abnormal_outcome": 0},
            "14241_TV": {"abnormal_outcome": 1}}  # fmt: skip


def make_coswara(root: Path) -> dict[str, dict[str, int]]:
    users = {"u1": ("2020-04-13", "positive_mild"), "u2": ("2020-04-13", "healthy"),
             "u3": ("2020-05-01", "recovered_full")}  # fmt: skip
    rows = [{"id": u, "a": "30", "covid_status": s, "g": "male", "smoker": "False", "asthma": "False",
             "cough": "True", "fever": "False", "test_status": "p" if "positive" in s else "na"}
            for u, (_, s) in users.items()]  # fmt: skip
    rows.append({**rows[1], "id": "absent_user"})
    _csv(root / coswara.CSV, rows)
    expected = {}
    for u, (date, s) in users.items():
        for sound in coswara.SOUNDS[:2]:
            _wav(root / date / u / f"{sound}.wav")
            expected[f"{u}/{sound}"] = {"covid": 1} if "positive" in s else {"covid": 0} if s == "healthy" else {}
    return expected


def make_coughvid(root: Path) -> dict[str, dict[str, int]]:
    rows = [("a1", "0.95", "COVID-19", ".wav"), ("a2", "0.9", "healthy", ".ogg"), ("a3", "0.99", "symptomatic", ".wav"),
            ("a4", "0.1", "healthy", ".wav"), ("a5", "0.97", "healthy", ".webm")]  # fmt: skip
    _csv(root / coughvid.CSV, [{"uuid": u, "datetime": "2020-04-13", "cough_detected": c, "age": "40",
                                "gender": "female", "respiratory_condition": "False", "fever_muscle_pain": "False",
                                "status": s} for u, c, s, _ in rows])  # fmt: skip
    for u, _, _, ext in rows:
        path = root / coughvid.AUDIO / f"{u}{ext}"
        if ext == ".webm":
            path.write_bytes(b"\x1a\x45\xdf\xa3 not decodable")
        else:
            _wav(path, "OGG" if ext == ".ogg" else "WAV")
    return {"a1": {"covid": 1}, "a2": {"covid": 0}, "a3": {}}


def make_kauh(root: Path) -> dict[str, dict[str, int]]:
    names = {"BP1_Asthma,I E W,P L L,70,M": {"asthma": 1, "abnormal": 1},
             "EP1_Asthma,I E W,P L L,70,M": {"asthma": 1, "abnormal": 1},
             "DP2_N,N,P R M,30,F": {"asthma": 0, "copd": 0, "abnormal": 0},
             "BP3_copd,Crep,A R U,60,M": {"copd": 1, "abnormal": 1},
             "BP4_heart failure,Crep,P L L,55,F": {"abnormal": 1}}  # fmt: skip
    for n in names:
        _wav(root / kauh.AUDIO / f"{n}.wav")
    return names


MAKERS = {"icbhi": make_icbhi, "circor": make_circor, "coswara": make_coswara, "coughvid": make_coughvid,
          "kauh": make_kauh}  # fmt: skip
MODULES = {"icbhi": icbhi, "circor": circor, "coswara": coswara, "coughvid": coughvid, "kauh": kauh}


def _key(name: str, root: Path, path: Path) -> str:
    rel = path.relative_to(root.resolve()) if path.is_absolute() else path
    return f"{rel.parent.name}/{rel.stem}" if name == "coswara" else rel.stem


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_labels_splits_and_round_trip(name: str, tmp_path: Path) -> None:
    expected = MAKERS[name](tmp_path)
    recordings, tasks, _ = ADAPTERS[name](tmp_path, 0)
    got = {_key(name, tmp_path, Path(r.path).resolve()): r.labels for r in recordings}
    assert got == expected
    splits: dict[str, set[str]] = {}
    for r in recordings:
        splits.setdefault(r.patient, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())
    assert len(splits) < len(recordings) or name == "coughvid"  # some patient has several recordings
    assert {t.label for t in tasks} >= {k for r in recordings for k in r.labels}
    write_dataset_manifest(name, tmp_path, 0)
    back = read_manifest(tmp_path)
    assert [(Path(b.path).resolve(), b.patient, b.split, b.labels, b.metadata) for b in back] == [
        (Path(r.path).resolve(), r.patient, r.split, r.labels, r.metadata) for r in recordings
    ]


def test_icbhi_official_test_split_kept(tmp_path: Path) -> None:
    make_icbhi(tmp_path)
    recordings, _, _ = icbhi.read_icbhi(tmp_path)
    assert {r.patient for r in recordings if r.split == "test"} == {"103"}


def test_coughvid_counts_skipped_webm(tmp_path: Path, caplog) -> None:
    make_coughvid(tmp_path)
    with caplog.at_level("WARNING", logger=coughvid.__name__):
        recordings, _, _ = coughvid.read_coughvid(tmp_path)
    (message,) = [r.getMessage() for r in caplog.records if r.name == coughvid.__name__]
    assert "1 webm" in message and "1 rows below" in message
    assert all(r.path.suffix != ".webm" for r in recordings)


MISSING = {"icbhi": f"{icbhi.AUDIO}/102_1b1_Ar_sc_Meditron.wav", "circor": f"{circor.AUDIO}/2530_PV_2.wav",
           "coswara": "2020-04-13/u1/cough-heavy.wav", "coughvid": f"{coughvid.AUDIO}/a2.ogg",
           "kauh": None}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_missing_wav_refused_by_name(name: str, tmp_path: Path) -> None:
    MAKERS[name](tmp_path)
    if name == "kauh":  # KAUH has no list: the folder itself is what is missing
        for p in (tmp_path / kauh.AUDIO).iterdir():
            p.unlink()
        with pytest.raises(FileNotFoundError, match="Audio Files"):
            kauh.read_kauh(tmp_path)
        return
    if name == "coswara":
        for p in (tmp_path / "2020-04-13" / "u1").iterdir():
            p.unlink()
    else:
        (tmp_path / MISSING[name]).unlink()
    with pytest.raises(FileNotFoundError, match=r"\.(csv|txt):\d+") as e:
        ADAPTERS[name](tmp_path, 0)
    assert Path(MISSING[name]).stem in str(e.value)


TARGETS = {"icbhi": {"diagnosis", "crackles", "wheezes"}, "circor": {"murmur", "outcome"},
           "coswara": {"covid_status"}, "coughvid": {"status"}, "kauh": {"diagnosis"}}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_report_never_names_excluded_values(name: str, tmp_path: Path) -> None:
    MAKERS[name](tmp_path)
    recordings, _, excluded = ADAPTERS[name](tmp_path, 0)
    assert set(excluded) >= TARGETS[name]  # the fields the labels are read from never reach a report
    template = MODULES[name].TEMPLATE
    assert template.dataset == name
    assert set(excluded) & {f for f, _ in template.sentences}  # the guard has something to remove
    for r in recordings:
        report = template.render(r.metadata, set(excluded))
        assert report and report == template.render({k: v for k, v in r.metadata.items() if k not in excluded})
        for field in excluded:
            value = r.metadata.get(field)
            if value and len(value) > 2:
                assert value not in report, (field, value, report)
