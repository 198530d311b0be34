"""Several voices per training report: the build speaks each training report again in other seeded voices (and only
training reports), the manifest records every recording, the primary speech is unchanged, and the student's rows
hear one recording per report per draw, every voice over the draws, reproducibly."""

import csv
from dataclasses import replace

import pytest
import torch

from modeling_speechct.data import ctrate
from modeling_speechct.data.benchmark_build import (
    benchmark_speech_plan,
    speech_manifest_path,
)
from modeling_speechct.data.speech_manifest import check_training_speech, read_speech_manifest
from modeling_speechct.data.tts_engines import HELD_OUT_ENGINES
from modeling_speechct.training.rows import VoiceSampledRows


@pytest.fixture(scope="module")
def build(small_spoken_build):
    return small_spoken_build(seed=4, extra_train_voices=2)[0]


def _splits(root):
    names = {}
    for split in ctrate.SPLITS:
        with open(ctrate.reports_csv(root, split), newline="") as f:
            names.update({r["VolumeName"]: split for r in csv.DictReader(f)})
    return names


def test_training_reports_get_every_extra_voice_and_only_they(build):
    splits = _splits(build.out)
    train = [name for name, split in splits.items() if split == "train"]
    assert len(train) >= 4
    for name, split in splits.items():
        voices = ctrate.speech_voices(ctrate.speech_path(build.out, name))
        expected = [ctrate.speech_voice_path(build.out, name, k) for k in range(3 if split == "train" else 1)]
        assert voices == [str(p) for p in expected] and all(p.is_file() for p in expected)


def test_manifest_lists_every_recording_with_training_engines(build):
    rows = read_speech_manifest(speech_manifest_path(build.out))
    splits = _splits(build.out)
    per_name = {}
    for row in rows:
        per_name.setdefault(row.name, []).append(row)
        assert row.backend not in HELD_OUT_ENGINES
    assert {name: len(r) for name, r in per_name.items()} == {
        name: 3 if split == "train" else 1 for name, split in splits.items()
    }
    on_disk = {p.relative_to(build.out / "dataset").as_posix() for p in (build.out / "dataset").rglob("*.wav")}
    assert {row.wav for row in rows} == on_disk
    wavs = [str(build.out / "dataset" / row.wav) for row in rows]
    assert check_training_speech(wavs, "test") == len(rows)  # the guard reads the extra rows too
    # Other draws: across the training reports the extra recordings do not all repeat the primary speaker.
    speakers = [{(r.backend, r.voice, r.rate) for r in per_name[name]} for name in per_name if len(per_name[name]) == 3]
    assert sum(len(s) for s in speakers) > len(speakers)


def test_extra_voices_leave_the_primary_plan_unchanged(build):
    from modeling_speechct.data.benchmark_build import rows_from_tables

    rows = rows_from_tables(build)
    with_extra = benchmark_speech_plan(build, rows)
    without = benchmark_speech_plan(replace(build, extra_train_voices=0), rows)
    assert len(with_extra) == len(without) + 2 * sum(r["split"] == "train" for r in rows)
    assert with_extra[: len(without)] == without


def test_speech_voices_orders_siblings_by_number(tmp_path):
    primary = tmp_path / "train_1_a_1_findings.wav"
    for name in ("train_1_a_1_findings.wav", "train_1_a_1_findings_voice10.wav", "train_1_a_1_findings_voice2.wav",
                 "train_1_a_1_findings_voiceX.wav", "train_1_a_2_findings_voice1.wav"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    siblings = [tmp_path / f"train_1_a_1_findings_voice{k}.wav" for k in (2, 10)]
    assert ctrate.speech_voices(primary) == [str(p) for p in (primary, *siblings)]


def test_voice_sampled_rows_draw_every_voice_reproducibly():
    voices = [torch.full((2, 3), float(v)) for v in range(3)]
    rows = [{"speech_prefix": voices[0], "speech_prefix_voices": voices, "labels": torch.ones(2)},
            {"speech_prefix": voices[1], "labels": torch.zeros(2)}]  # fmt: skip

    def draws(seed):
        data = VoiceSampledRows(rows, seed)
        picks = []
        for epoch in range(60):
            data.set_epoch(epoch)
            picks.append(int(data[0]["speech_prefix"][0, 0]))
            assert int(data[0]["speech_prefix"][0, 0]) == picks[-1]  # one recording per row and epoch
        return picks

    first = draws(0)
    assert set(first) == {0, 1, 2} and draws(0) == first and draws(1) != first
    data = VoiceSampledRows(rows)
    assert "speech_prefix_voices" not in data[0] and "speech_prefix_voices" in rows[0]  # rows are not mutated
    assert torch.equal(data[1]["speech_prefix"], voices[1])  # a report with one recording keeps it


def test_student_rows_refuse_a_held_out_engine_in_an_extra_voice(build, tmp_path):
    from modeling_speechct.data.ctrate import load_ct_rate
    from modeling_speechct.data.speech_manifest import write_speech_manifest
    from modeling_speechct.training.rows import student_rows

    path = speech_manifest_path(build.out)
    original = read_speech_manifest(path)
    rows = list(load_ct_rate(build.out, "train"))
    extra = ctrate.speech_voices(rows[0]["speech"])[2]
    tampered = [
        replace(r, backend="piper", voice="en_US-joe-medium") if str(path.parent / r.wav) == extra else r
        for r in original
    ]
    write_speech_manifest(path, tampered)
    assert check_training_speech([r["speech"] for r in rows], "primary") == len(rows)  # the primaries still pass
    # The check runs before any tower is touched: no model is needed to see the refusal.
    with pytest.raises(ValueError, match=r"student_rows: .*'piper'"):
        student_rows(None, None, rows, tmp_path / "cache", all_voices=True)
    write_speech_manifest(path, original)
