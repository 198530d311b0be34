"""The speech manifest: the benchmark build and the speech-tower corpus record who spoke each wav, the records match
the wavs on disk, training speech is from training engines only, and the training loaders refuse held-out speech."""

import csv
import shutil
from dataclasses import replace

import pytest
import soundfile as sf

from modeling_speechct.data import ctrate
from modeling_speechct.data.benchmark_build import (
    rebuild_speech_manifest,
    speech_manifest_path,
)
from modeling_speechct.data.speech_manifest import (
    MANIFEST_COLUMNS,
    check_training_speech,
    held_out_voices,
    read_speech_manifest,
    write_speech_manifest,
)
from modeling_speechct.data.tts_engines import HELD_OUT_ENGINES, get_backend
from modeling_speechct.training.rows import student_rows
from modeling_speechct.training.speech_tower import HELD_OUT, speak, training_voices


@pytest.fixture(scope="module")
def build(small_spoken_build):
    return small_spoken_build(seed=11)


def _report_names(root):
    names = {}
    for split in ctrate.SPLITS:
        with open(ctrate.reports_csv(root, split), newline="") as f:
            names.update({r["VolumeName"]: split for r in csv.DictReader(f)})
    return names


def test_build_writes_one_row_per_spoken_report_matching_the_wavs_on_disk(build):
    config, stats = build
    path = speech_manifest_path(config.out)
    assert stats["speech_manifest"] == str(path) and path == config.out / "dataset" / "speech_manifest.csv"
    with open(path, newline="") as f:
        assert tuple(next(csv.reader(f))) == MANIFEST_COLUMNS
    rows = read_speech_manifest(path)
    assert {row.name: row.split for row in rows} == _report_names(config.out) and len(rows) == 8
    on_disk = {p.relative_to(path.parent).as_posix() for p in (config.out / "dataset").rglob("*.wav")}
    assert {row.wav for row in rows} == on_disk
    for row in rows:
        assert path.parent / row.wav == ctrate.speech_path(config.out, row.name)
        assert sf.info(path.parent / row.wav).frames > 0
    assert not list(path.parent.glob(".*tmp*"))  # written through a temporary file, which is gone


def test_training_rows_name_training_engines_and_voices(build):
    config, _ = build
    rows = read_speech_manifest(speech_manifest_path(config.out))
    train = [row for row in rows if row.split == "train"]
    assert len(train) >= 4
    for row in train:
        assert row.backend in config.tts_backends and row.backend not in HELD_OUT_ENGINES
        assert row.voice in get_backend(row.backend).voices() and row.voice not in held_out_voices()
        assert 0.8 <= row.rate <= 1.25 and 0.85 <= row.pitch <= 1.15
    assert {row.backend for row in rows} == set(config.tts_backends)


def test_manifest_rebuilt_from_the_tables_is_the_build_manifest(build, tmp_path):
    config, _ = build
    copy = replace(config, out=tmp_path / "bench")
    shutil.copytree(config.out, copy.out)
    written = speech_manifest_path(copy.out).read_bytes()
    speech_manifest_path(copy.out).unlink()
    rebuild_speech_manifest(copy, verify=3)  # also re-speaks 3 wavs and compares them byte for byte
    assert speech_manifest_path(copy.out).read_bytes() == written
    # A wav the plan did not make is caught (another report's speech copied over it): no manifest is written.
    rows = read_speech_manifest(speech_manifest_path(copy.out))
    speech_manifest_path(copy.out).unlink()
    shutil.copyfile(copy.out / "dataset" / rows[1].wav, copy.out / "dataset" / rows[0].wav)
    with pytest.raises(ValueError, match=r"not what the reconstructed plan says"):
        rebuild_speech_manifest(copy, verify=len(rows))
    assert not speech_manifest_path(copy.out).exists()
    with pytest.raises(ValueError, match=r"not the 9 this config builds"):
        rebuild_speech_manifest(replace(copy, num_volumes=9))


@pytest.fixture
def train_rows(build, tmp_path):
    """The training split of a copy of the build (so that its manifest can be tampered with)."""
    config, _ = build
    root = tmp_path / "bench"
    shutil.copytree(config.out, root)
    return root, list(ctrate.load_ct_rate(root, "train"))


def _tamper(root, name, **changes):
    path = speech_manifest_path(root)
    rows = [replace(r, **changes) if r.name == name else r for r in read_speech_manifest(path)]
    write_speech_manifest(path, rows)
    return next(i for i, r in enumerate(rows) if r.name == name) + 2  # CSV line (header is line 1)


def test_student_rows_read_the_manifest_and_refuse_a_held_out_engine(train_rows, tmp_path):
    root, rows = train_rows
    assert check_training_speech([r["speech"] for r in rows], "here") == len(rows)  # the build's speech passes
    victim = rows[-1]["volume_name"]
    line = _tamper(root, victim, backend="piper", voice="en_US-joe-medium")
    # The check runs before any tower is touched: no model is needed to see the refusal.
    pattern = rf"training_data\.student_rows: .*manifest\.csv line {line} \(name '{victim}', split 'train'.*'piper'"
    with pytest.raises(ValueError, match=pattern):
        student_rows(None, None, rows, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_a_held_out_voice_or_an_unlisted_wav_is_refused_too(train_rows):
    root, rows = train_rows
    victim = rows[0]["volume_name"]
    _tamper(root, victim, voice="en_US-joe-medium")  # backend column says espeak/flite, the voice is Piper's
    with pytest.raises(ValueError, match=rf"name '{victim}'.*voice 'en_US-joe-medium' belongs to a held-out engine"):
        check_training_speech([r["speech"] for r in rows], "loader")
    path = speech_manifest_path(root)
    write_speech_manifest(path, [r for r in read_speech_manifest(path) if r.name != victim])
    with pytest.raises(ValueError, match=rf"loader: .*{victim.removesuffix('.nii.gz')}_findings\.wav is not listed"):
        check_training_speech([r["speech"] for r in rows], "loader")


def test_speech_without_a_manifest_passes_unchecked(train_rows):
    root, rows = train_rows
    speech_manifest_path(root).unlink()
    assert check_training_speech([r["speech"] for r in rows], "loader") == 0


def test_pretraining_corpus_writes_a_manifest_and_refuses_held_out_speech(tmp_path):
    texts = ["No pleural effusion.", "The heart is normal in size.", "There is no consolidation."]
    folder = tmp_path / "train"
    waves = speak(texts, folder, seed=0, held_out=False, workers=1)
    rows = read_speech_manifest(folder / "speech_manifest.csv")
    assert [row.wav for row in rows] == ["000000.wav", "000001.wav", "000002.wav"] and len(waves) == 3
    assert {row.split for row in rows} == {"train"} and [row.name for row in rows] == ["000000", "000001", "000002"]
    allowed = training_voices(False)
    for row in rows:
        assert (folder / row.wav).is_file() and row.backend not in HELD_OUT_ENGINES
        assert row.voice in allowed[row.backend] and row.voice not in HELD_OUT.get(row.backend, [])
    write_speech_manifest(folder / "speech_manifest.csv", [replace(rows[1], backend="piper"), rows[0], rows[2]])
    with pytest.raises(ValueError, match=r"speech_tower\.speak.*line 2 \(name '000001'.*'piper'"):
        speak(texts, folder, seed=0, held_out=False, workers=1)


def test_a_malformed_manifest_is_named(tmp_path):
    path = tmp_path / "speech_manifest.csv"
    path.write_text("name,wav\nx,y.wav\n")
    with pytest.raises(ValueError, match=r"speech_manifest\.csv lacks columns \['split', 'backend'"):
        read_speech_manifest(path)
    path.write_text("name,split,wav,backend,voice,rate,pitch\nx,train,x.wav,espeak,en,fast,1.0\n")
    with pytest.raises(ValueError, match=r"line 2: rate/pitch are not numbers"):
        read_speech_manifest(path)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.csv"):
        read_speech_manifest(tmp_path / "nowhere.csv")
