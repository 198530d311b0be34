"""AcuLa's log-mel input against torchaudio's MelSpectrogram (an independent implementation), and its refusals."""

import numpy as np
import pytest
import torch
import torchaudio

from modeling_speechct.feature_extraction_acula import AcuLaFeatureExtractor


def _wave(seconds=3.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)


def test_log_mel_matches_torchaudio():
    extractor = AcuLaFeatureExtractor()
    wave = _wave(9.0)  # longer than 8 s: cut from the start
    got = extractor([wave], return_tensors="pt")["input_features"][0]
    transform = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=512, win_length=400, hop_length=160,
                                                     f_min=50.0, f_max=8000.0, n_mels=64, power=2.0, norm="slaney",
                                                     mel_scale="slaney").double()  # fmt: skip
    mel = transform(torch.from_numpy(wave[: 8 * 16000]).double())
    ref = torch.log10(mel.clamp(min=1e-10))[:, :800]
    ref = (torch.maximum(ref, ref.max() - 8.0) + 4.0) / 4.0
    assert got.shape == (64, 800)
    torch.testing.assert_close(got.double(), ref, atol=2e-3, rtol=1e-3)


def test_short_input_is_zero_padded_to_eight_seconds():
    extractor = AcuLaFeatureExtractor()
    features = extractor([_wave(2.0), _wave(8.0, seed=1)])["input_features"]
    assert features.shape == (2, 64, 800)
    assert np.allclose(features[0][:, 220:], features[0][:, 220:].min())  # the padding sits at the floor


@pytest.mark.parametrize(
    ("wave", "message"),
    [(np.zeros(16000, np.float32), "silent"), (np.ones(2000, np.float32) * 0.1, "too short"),
     (np.clip(_wave() * 20, -1, 1), "clipped"), (np.full(16000, np.nan, np.float32), "NaN"),
     (np.zeros((2, 16000), np.float32), "mono")],
)  # fmt: skip
def test_bad_recordings_are_refused_by_index(wave, message):
    with pytest.raises(ValueError, match=rf"audio\[1\]: .*{message}"):
        AcuLaFeatureExtractor()([_wave(), wave])


def test_another_rate_is_refused():
    with pytest.raises(ValueError, match="sampling_rate=8000: this extractor takes 16000 Hz"):
        AcuLaFeatureExtractor()([_wave()], sampling_rate=8000)
