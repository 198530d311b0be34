"""AcuLaProcessor: files at any rate → the extractor's 16 kHz log-mel; reports tokenised at 128; bad audio refused by
index; a saved processor reloads to the same outputs (with the offline MiniLM tokenizer)."""

import numpy as np
import pytest
import soundfile as sf
from transformers import AutoTokenizer

from modeling_speechct import AcuLaFeatureExtractor, AcuLaProcessor
from modeling_speechct.training.teacher import text_tower_path


@pytest.fixture(scope="module")
def processor():
    return AcuLaProcessor(AcuLaFeatureExtractor(), AutoTokenizer.from_pretrained(text_tower_path("minilm")))


def _tone(rate, seconds=2.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def test_a_file_at_another_rate_equals_the_array_resampled(processor, tmp_path):
    sf.write(tmp_path / "a.wav", _tone(8000), 8000)
    from_file = processor(audio=str(tmp_path / "a.wav"))["input_features"]
    from_array = processor(audio=_tone(8000), sampling_rate=8000)["input_features"]
    native = processor(audio=_tone(16000), sampling_rate=16000)["input_features"]
    assert from_file.shape == (1, 64, 800)
    np.testing.assert_allclose(from_file.numpy(), from_array.numpy(), atol=1e-2)  # 16-bit PCM: quiet bins move
    peak = lambda x: int(x[0, :, :150].mean(dim=1).argmax())  # noqa: E731 — the tone's mel bin
    assert peak(from_file) == peak(native)


def test_reports_are_truncated_and_bad_audio_is_named(processor):
    out = processor(text=["word " * 400, "short report"])
    assert out["input_ids"].shape[1] == 128 and out["attention_mask"][1].sum() < 10
    with pytest.raises(ValueError, match=r"audio\[1\]: .*silent"):
        processor(audio=[_tone(16000), np.zeros(16000, np.float32)], sampling_rate=16000)
    with pytest.raises(ValueError, match="unknown sample rate"):
        processor(audio=_tone(16000))


def test_save_and_reload(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    again = AcuLaProcessor.from_pretrained(tmp_path)
    a = processor(audio=_tone(16000), text="Crackles absent.", sampling_rate=16000)
    b = again(audio=_tone(16000), text="Crackles absent.", sampling_rate=16000)
    assert set(a) == set(b) and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
