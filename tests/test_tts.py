"""Offline TTS: espeak-ng and flite write valid, non-silent, atomic wavs that follow rate and pitch; the batch runner
caches and resumes; the plan is seeded and spread; Kokoro fails clearly without its package or its weights.

espeak-ng and flite are installed by scripts/bootstrap.sh, so these tests do not skip when they are missing."""

import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from modeling_speechct.data.reports import write_report
from modeling_speechct.data.tts import SpeechJob, plan_speech, synthesize_all
from modeling_speechct.data.tts_engines import (
    PITCH_RANGE,
    RATE_RANGE,
    EspeakBackend,
    FliteBackend,
    KokoroBackend,
    get_backend,
    speakable,
)
from modeling_speechct.labels import Finding

SHORT = "No pleural effusion."
LONG = write_report(
    [
        Finding("Lung nodule", "right", "right upper lobe", 6.2, None, 2, "solid"),
        Finding("Cardiomegaly", severity="mild"),
    ],
    np.random.default_rng(0),
)[0]
DEFAULT_VOICE = {"espeak": "en-us", "flite": "kal16"}


def _read(path: Path) -> tuple[np.ndarray, int, sf._SoundFileInfo]:
    info = sf.info(str(path))
    audio, rate = sf.read(str(path), dtype="float32")
    return audio, rate, info


def _f0(audio: np.ndarray, rate: int) -> float:
    """Median fundamental frequency of the voiced 40 ms frames (autocorrelation peak)."""
    frame = int(0.04 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    estimates = []
    for start in range(0, len(audio) - frame, frame // 2):
        w = audio[start : start + frame]
        if np.sqrt(np.mean(w**2)) < 0.02:
            continue
        w = w - w.mean()
        ac = np.correlate(w, w, "full")[frame - 1 :]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.3 * ac[0]:
            estimates.append(rate / k)
    return float(np.median(estimates))


@pytest.mark.parametrize("name", ["espeak", "flite"])
def test_engine_is_installed(name):
    assert get_backend(name).available(), f"{name} missing: run scripts/bootstrap.sh (apt-get install espeak-ng flite)"


@pytest.mark.parametrize("name", ["espeak", "flite"])
def test_writes_valid_wav_growing_with_text(name, tmp_path):
    backend = get_backend(name)
    durations = {}
    for label, text in (("short", SHORT), ("long", LONG)):
        path = tmp_path / f"{label}.wav"
        backend.synthesize(text, path, DEFAULT_VOICE[name], 1.0, 1.0)
        audio, rate, info = _read(path)
        assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)
        assert rate == backend.sample_rate
        assert np.sqrt(np.mean(audio**2)) > 0.01  # not silent
        durations[label] = len(audio) / rate
    assert durations["short"] > 0.5
    assert durations["long"] > 10 * durations["short"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav", "short.wav"]  # no temporaries left


@pytest.mark.parametrize("name", ["espeak", "flite"])
def test_every_listed_voice_speaks(name, tmp_path):
    backend = get_backend(name)
    assert len(backend.voices()) >= 5
    for voice in backend.voices():
        path = tmp_path / f"{voice}.wav"
        backend.synthesize("Heart size is normal.", path, voice)
        audio, rate, _ = _read(path)
        assert len(audio) / rate > 0.5 and np.sqrt(np.mean(audio**2)) > 0.01, voice


@pytest.mark.parametrize(("name", "voice"), [("espeak", "en-us"), ("flite", "kal16"), ("flite", "slt")])
def test_rate_and_pitch_follow_the_factors(name, voice, tmp_path):
    backend = get_backend(name)
    text = "The heart size is within normal limits and there is no pericardial effusion."
    results = {}
    for rate, pitch in ((0.8, 1.0), (1.25, 1.0), (1.0, 0.85), (1.0, 1.15)):
        path = tmp_path / f"{rate}-{pitch}.wav"
        backend.synthesize(text, path, voice, rate, pitch)
        audio, sr, _ = _read(path)
        results[rate, pitch] = (len(audio) / sr, _f0(audio, sr))
    slow, fast = results[0.8, 1.0][0], results[1.25, 1.0][0]
    assert 1.3 < slow / fast < 1.8  # 1.25 / 0.8 = 1.56
    low, high = results[1.0, 0.85][1], results[1.0, 1.15][1]
    assert 1.2 < high / low < 1.5  # 1.15 / 0.85 = 1.35


def test_units_are_spoken_as_words():
    assert speakable("A 6 mm nodule; a 6-mm nodule; an 11.5 cm mass; measuring 1.2 cm; 0.6cm thick. Mmm, mm.") == (
        "A 6 millimeter nodule; a 6 millimeter nodule; an 11.5 centimeter mass; measuring 1.2 centimeters; "
        "0.6 centimeters thick. Mmm, mm."
    )


def test_unknown_voice_and_backend(tmp_path):
    with pytest.raises(ValueError, match=r"unknown voice 'en-klingon'.*en-us"):
        get_backend("espeak").synthesize(SHORT, tmp_path / "x.wav", "en-klingon")
    with pytest.raises(ValueError, match=r"unknown voice 'en-us'.*kal"):
        get_backend("flite").synthesize(SHORT, tmp_path / "x.wav", "en-us")
    with pytest.raises(ValueError, match=r"Unknown TTS backend 'festival'.*espeak"):
        get_backend("festival")
    with pytest.raises(ValueError, match="rate"):
        get_backend("espeak").synthesize(SHORT, tmp_path / "x.wav", "en-us", rate=175)
    assert get_backend("espeak-ng") is get_backend("espeak")
    assert not list(tmp_path.iterdir())


def test_missing_engine_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(EspeakBackend, "executable", "espeak-ng-not-installed")
    monkeypatch.setattr(FliteBackend, "executable", "flite-not-installed")
    for name, package in (("espeak", "espeak-ng"), ("flite", "flite")):
        backend = get_backend(name)
        assert not backend.available()
        with pytest.raises(RuntimeError, match=rf"apt-get install {package}"):
            backend.synthesize(SHORT, tmp_path / "x.wav", backend.voices()[0])
    jobs = [SpeechJob(SHORT, tmp_path / "a.wav", "flite", "kal", 1.0, 1.0)]
    with pytest.raises(RuntimeError, match="apt-get install flite"):
        synthesize_all(jobs, progress=False)
    assert not list(tmp_path.iterdir())


def test_failed_engine_leaves_no_file(monkeypatch, tmp_path):
    def broken(self, text, path, voice, rate, pitch):
        Path(path).write_bytes(b"RIFF....not a wav")

    monkeypatch.setattr(EspeakBackend, "_synthesize_to", broken)
    with pytest.raises(RuntimeError, match="readable wav"):
        get_backend("espeak").synthesize(SHORT, tmp_path / "x.wav", "en-us")
    assert not list(tmp_path.iterdir())


def _jobs(tmp_path: Path, n: int = 4) -> list[SpeechJob]:
    texts = [
        (f"Report number {i}. No pleural effusion.", tmp_path / "speech" / f"valid_{i}_a_1_findings.wav")
        for i in range(n)
    ]
    return plan_speech(texts, ["espeak", "flite"], seed=3)


def test_synthesize_all_caches_and_resumes(tmp_path):
    jobs = _jobs(tmp_path)
    first = synthesize_all(jobs, workers=2, progress=False)
    assert (first["synthesized"], first["skipped"]) == (4, 0)
    durations = sum(sf.info(str(job.path)).duration for job in jobs)
    assert first["seconds_of_audio"] == pytest.approx(durations)
    assert first["wall_seconds"] > 0
    stamps = [job.path.stat().st_mtime_ns for job in jobs]

    again = synthesize_all(jobs, workers=2, progress=False)
    assert (again["synthesized"], again["skipped"], again["seconds_of_audio"]) == (0, 4, 0.0)
    assert [job.path.stat().st_mtime_ns for job in jobs] == stamps  # untouched

    # An interrupted run: one wav never renamed into place (only its stale temporary exists), one truncated file.
    jobs[0].path.unlink()
    stale = jobs[0].path.with_name(f".{jobs[0].path.name}.99999-deadbeef.tmp")
    stale.write_bytes(jobs[1].path.read_bytes()[:1000])
    old = time.time() - 3600
    os.utime(stale, (old, old))
    jobs[2].path.write_bytes(b"")
    resumed = synthesize_all(jobs, workers=2, progress=False)
    assert (resumed["synthesized"], resumed["skipped"]) == (2, 2)
    assert not stale.exists()
    for job in jobs:
        assert sf.info(str(job.path)).frames > 0
    assert sorted(p.name for p in (tmp_path / "speech").iterdir()) == sorted(job.path.name for job in jobs)


def test_synthesize_all_progress_bar(tmp_path, capsys):
    stats = synthesize_all(_jobs(tmp_path, 2), workers=1, progress=True)
    assert stats["synthesized"] == 2
    assert "speech" in capsys.readouterr().err


def test_plan_is_seeded_and_spread(tmp_path):
    texts = [(f"text {i}", tmp_path / f"{i}.wav") for i in range(120)]
    plan = plan_speech(texts, ["espeak", "flite"], seed=11)
    assert plan == plan_speech(texts, ["espeak", "flite"], seed=11)
    assert plan != plan_speech(texts, ["espeak", "flite"], seed=12)
    assert [(job.text, job.path) for job in plan] == texts
    by_backend = {name: [job for job in plan if job.backend == name] for name in ("espeak", "flite")}
    assert len(by_backend["espeak"]) == len(by_backend["flite"]) == 60
    for name, jobs in by_backend.items():
        voices = [job.voice for job in jobs]
        assert set(voices) == set(get_backend(name).voices())
        counts = np.unique(voices, return_counts=True)[1]
        assert counts.max() - counts.min() <= 1  # even within a backend
    rates = np.array([job.rate for job in plan])
    pitches = np.array([job.pitch for job in plan])
    assert RATE_RANGE[0] <= rates.min() and rates.max() <= RATE_RANGE[1] and rates.std() > 0.08
    assert PITCH_RANGE[0] <= pitches.min() and pitches.max() <= PITCH_RANGE[1] and pitches.std() > 0.05
    with pytest.raises(ValueError, match="festival"):
        plan_speech(texts, ["espeak", "festival"], seed=0)
    assert {job.backend for job in plan_speech(texts[:3], ["kokoro"], seed=0)} == {"kokoro"}  # plans need no engine


def test_kokoro_without_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "kokoro", None)  # makes `import kokoro` fail, installed or not
    backend = KokoroBackend()
    assert not backend.available()
    assert "af_heart" in backend.voices() and "bm_george" in backend.voices()
    with pytest.raises(ValueError, match="unknown voice 'en-us'"):
        backend.synthesize(SHORT, tmp_path / "x.wav", "en-us")
    with pytest.raises(RuntimeError, match="pip install kokoro"):
        backend.synthesize(SHORT, tmp_path / "x.wav", "af_heart")
    assert not list(tmp_path.iterdir())


def _fake_kokoro(pipeline_factory) -> types.ModuleType:
    module = types.ModuleType("kokoro")
    module.KPipeline = pipeline_factory
    return module


def test_kokoro_offline_names_the_hub(monkeypatch, tmp_path):
    def offline(lang_code, repo_id=None):
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load the files of {repo_id}.")

    monkeypatch.setitem(sys.modules, "kokoro", _fake_kokoro(offline))
    backend = KokoroBackend()
    assert backend.available()
    with pytest.raises(RuntimeError, match=r"downloads its weights from the Hugging Face Hub.*network"):
        backend.synthesize(SHORT, tmp_path / "x.wav", "af_heart")
    assert not list(tmp_path.iterdir())


def test_kokoro_wiring_with_a_stand_in_model(monkeypatch, tmp_path):
    calls = []

    class Result:
        def __init__(self, audio):
            self.audio = audio

    class Pipeline:
        def __init__(self, lang_code, repo_id=None):
            calls.append(("init", lang_code, repo_id))

        def __call__(self, text, voice, speed):
            calls.append(("call", voice, speed))
            t = np.arange(12_000) / 24_000
            yield Result(0.3 * np.sin(2 * np.pi * 180 * t))
            yield (text, "phonemes", 0.3 * np.sin(2 * np.pi * 200 * t))  # older releases yield tuples

    monkeypatch.setitem(sys.modules, "kokoro", _fake_kokoro(Pipeline))
    backend = KokoroBackend()
    backend.synthesize(SHORT, tmp_path / "k.wav", "bf_emma", rate=1.1, pitch=0.9)
    audio, rate, info = _read(tmp_path / "k.wav")
    assert (rate, info.subtype, info.channels, len(audio)) == (24_000, "PCM_16", 1, 24_000)
    assert calls == [("init", "b", "hexgrad/Kokoro-82M"), ("call", "bf_emma", 1.1)]


def test_plan_speech_can_hold_voices_out():
    jobs = plan_speech([(f"text {i}", Path(f"/tmp/{i}.wav")) for i in range(40)], ["espeak", "flite"], seed=1,
                       voices={"espeak": ["en-us", "en-gb"], "flite": ["slt"]})  # fmt: skip
    assert {(j.backend, j.voice) for j in jobs} == {("espeak", "en-us"), ("espeak", "en-gb"), ("flite", "slt")}
    with pytest.raises(ValueError, match="unknown voice 'nobody'"):
        plan_speech([("a", Path("/tmp/a.wav"))], ["flite"], seed=1, voices={"flite": ["nobody"]})
