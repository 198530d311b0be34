"""SpeechCTClipProcessor: any rate or channel layout gives the tower features; errors; save/load; into the model."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file
from transformers import AutoProcessor, BertTokenizerFast, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor
from volumes import SPACING, canonical_volume

from modeling_speechct import CTFeatureExtractor, SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.training.tiny import tiny_speechct_config

WORDS = ["no", "pleural", "effusion", "is", "present", "not", "the", "lung", "nodule", "cardiomegaly", "seen", "."]


def tone(rate: int, seconds: float = 1.0) -> np.ndarray:
    """Four partials below 2.6 kHz: representable at every rate tested, so resampling is the only difference."""
    t = np.arange(int(rate * seconds)) / rate
    partials = [(0.5, 300, 0.0), (0.3, 700, 1.0), (0.2, 1500, 2.0), (0.1, 2500, 3.0)]
    return sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in partials).astype(np.float32)


@pytest.fixture
def tokenizer(tmp_path):
    # transformers 5's constructor ignores `vocab_file=` (every word would be [UNK]): give the vocabulary itself.
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)})
    assert tokenizer.unk_token_id not in tokenizer(" ".join(WORDS))["input_ids"]
    return tokenizer


def make_processor(tokenizer, speech="whisper"):
    speech_fe = (
        WhisperFeatureExtractor(feature_size=16)
        if speech == "whisper"
        else Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    )
    return SpeechCTClipProcessor(CTFeatureExtractor(target_shape=(8, 32, 32)), speech_fe, tokenizer)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("layout", ["mono", "channels_first", "channels_last"])
def test_any_rate_and_layout_gives_the_16k_features(tokenizer, rate, layout):
    whisper, wav2vec = make_processor(tokenizer), make_processor(tokenizer, "wav2vec2")
    audio = tone(rate)
    if layout == "channels_first":
        audio = np.stack([audio, audio])
    elif layout == "channels_last":
        audio = np.stack([audio, audio], axis=1)
    # Log-mel (Whisper): compare mel bands the source rate can represent, away from the first/last frames.
    got = whisper(audio=audio, sampling_rate=rate)["speech_values"][0].numpy()
    ref = whisper(audio=tone(16000), sampling_rate=16000)["speech_values"][0].numpy()
    freqs = np.linspace(0, 8000, whisper.feature_extractor.mel_filters.shape[0])
    band_top = np.array([freqs[np.nonzero(f)[0].max()] for f in whisper.feature_extractor.mel_filters.T])
    in_band = band_top < 0.45 * min(rate, 16000)
    assert got.shape == ref.shape == (16, 100) and in_band.sum() >= 10
    assert np.abs(got[in_band, 3:-3] - ref[in_band, 3:-3]).max() <= 5e-3
    # Waveform (wav2vec 2.0): normalised samples, 10 ms from each end.
    got = wav2vec(audio=audio, sampling_rate=rate)["speech_values"][0].numpy()
    ref = wav2vec(audio=tone(16000), sampling_rate=16000)["speech_values"][0].numpy()
    assert got.shape == ref.shape == (16000,)
    assert np.abs(got[160:-160] - ref[160:-160]).max() <= 5e-3


def test_files_are_read_with_their_own_rate(tmp_path, tokenizer):
    processor = make_processor(tokenizer, "wav2vec2")
    sf.write(tmp_path / "report.wav", np.stack([tone(44100), tone(44100)], axis=1), 44100)
    from_file = processor(audio=str(tmp_path / "report.wav"))["speech_values"]
    from_array = processor(audio=tone(44100), sampling_rate=44100)["speech_values"]
    torch.testing.assert_close(from_file, from_array, atol=1e-4, rtol=0)


def test_long_audio_is_kept_whole_and_batches_pad_with_a_mask(tokenizer):
    processor = make_processor(tokenizer)
    out = processor(audio=[tone(16000, 45.0), tone(16000, 2.0)], sampling_rate=16000)
    assert out["speech_values"].shape == (2, 16, 4500)  # Whisper's extractor alone would cut at 30 s
    assert out["speech_attention_mask"].sum(dim=1).tolist() == [4500, 200]


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        (np.zeros(0, np.float32), 16000, r"audio\[0\]: the recording is empty"),
        (np.zeros(1600, np.float32), 16000, r"audio\[0\]: the recording is silent"),
        (np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, r"audio\[0\]: 100 NaN/Inf"),
        (tone(16000), None, r"audio\[0\]: unknown sample rate"),
        (tone(16000), 0, "sample rate 0 is not a positive whole number"),
        (tone(16000), 22050.5, "sample rate 22050.5 is not a positive whole number"),
        (tone(16000), 3, r"audio\[0\]: sample rate 3 Hz is implausible"),
        (tone(16000), 1_000_000, r"audio\[0\]: sample rate 1000000 Hz is implausible"),
        (np.zeros((3, 3, 3), np.float32), 16000, r"shape \(3, 3, 3\) is neither"),
    ],
)
def test_bad_audio_is_named(tokenizer, audio, rate, message):
    with pytest.raises(ValueError, match=message):
        make_processor(tokenizer)(audio=audio, sampling_rate=rate)


def test_unreadable_audio_file(tmp_path, tokenizer):
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(ValueError, match=r"broken\.wav: cannot read as audio"):
        make_processor(tokenizer)(audio=str(tmp_path / "broken.wav"))


def test_outputs_go_straight_into_the_model(tokenizer):
    processor = make_processor(tokenizer)
    model = SpeechCTClipModel(tiny_speechct_config("whisper")).eval()
    batch = processor(
        ct=[canonical_volume(seed=s) for s in range(2)],
        audio=[tone(16000, 0.5), tone(22050, 1.2)],
        sampling_rate=[16000, 22050],
        text=["no pleural effusion .", "lung nodule is present ."],
        ct_kwargs={"spacing": SPACING},
    )
    assert set(batch) == {
        "ct_values",
        "speech_values",
        "speech_attention_mask",
        "input_ids",
        "attention_mask",
        "token_type_ids",
    }
    with torch.no_grad():
        out = model(**batch, return_loss=True)
    assert torch.isfinite(out.loss) and out.logits_speech_ct.shape == (2, 2)
    assert out.speech_model_output.window_mask.sum(dim=1).tolist() == [2, 4]  # 40-frame windows, 10-frame overlap


def test_save_load_round_trip_installed_and_without_the_package(tmp_path, tokenizer):
    processor = make_processor(tokenizer)
    kwargs = dict(
        ct=canonical_volume(),
        audio=tone(22050),
        sampling_rate=22050,
        text=["no nodule ."],
        ct_kwargs={"spacing": SPACING},
    )
    expected = processor(**kwargs)
    processor.save_pretrained(tmp_path / "proc")
    loaded = AutoProcessor.from_pretrained(tmp_path / "proc")
    assert type(loaded) is SpeechCTClipProcessor
    settings = lambda fe: {k: v for k, v in fe.to_dict().items() if k != "auto_map"}  # noqa: E731
    assert settings(loaded.ct_feature_extractor) == settings(processor.ct_feature_extractor)
    for key, value in loaded(**kwargs).items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)

    np.save(tmp_path / "ct.npy", canonical_volume())
    np.save(tmp_path / "audio.npy", tone(22050))
    save_file({k: v.contiguous() for k, v in expected.items()}, tmp_path / "expected.safetensors")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["modeling_speechct"] = None
        import numpy as np, torch
        from safetensors.torch import load_file
        from transformers import AutoProcessor
        torch.set_num_threads(1)
        proc = AutoProcessor.from_pretrained({str(tmp_path / "proc")!r}, trust_remote_code=True)
        assert type(proc).__module__.startswith("transformers_modules"), type(proc).__module__
        out = proc(ct=np.load({str(tmp_path / "ct.npy")!r}), audio=np.load({str(tmp_path / "audio.npy")!r}),
                   sampling_rate=22050, text=["no nodule ."], ct_kwargs={{"spacing": {SPACING!r}}})
        expected = load_file({str(tmp_path / "expected.safetensors")!r})
        assert set(out) == set(expected), (set(out), set(expected))
        for key in expected:
            torch.testing.assert_close(out[key], expected[key], rtol=0, atol=0, msg=key)
        print("REMOTE-PROCESSOR-OK")
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE-PROCESSOR-OK" in result.stdout


def test_from_tower_pretrained_uses_each_towers_preprocessing(tmp_path, tokenizer):
    WhisperFeatureExtractor(feature_size=16).save_pretrained(tmp_path / "speech")
    tokenizer.save_pretrained(tmp_path / "text")
    CTFeatureExtractor(target_shape=(8, 32, 32)).save_pretrained(tmp_path / "ct")
    processor = SpeechCTClipProcessor.from_tower_pretrained(
        speech=str(tmp_path / "speech"), text=str(tmp_path / "text"), ct=str(tmp_path / "ct")
    )
    assert processor.feature_extractor.feature_size == 16 and processor.ct_feature_extractor.target_shape == (8, 32, 32)
    assert processor(text="no effusion")["input_ids"][0].tolist() == tokenizer("no effusion")["input_ids"]
