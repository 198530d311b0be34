"""AcuLa's audio input: 8 s at 16 kHz as a 64-bin log-mel spectrogram (the paper's), for `SpectrogramMAEModel`.

Recordings are checked before anything is computed — too short, silent, clipped, NaN, or at another rate than the
extractor's is refused by index (the processor resamples) — then cut or zero-padded to `duration_s` from the start
(deterministic; training may crop elsewhere before calling), and turned into log10 mel energies compressed like
Whisper's (an 8-decade floor below the recording's peak, then (x + 4) / 4) so loudness differences between devices
do not dominate the features.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function


class AcuLaFeatureExtractor(SequenceFeatureExtractor):
    model_input_names: ClassVar[list[str]] = ["input_features"]

    def __init__(self, feature_size: int = 64, sampling_rate: int = 16000, padding_value: float = 0.0,
                 duration_s: float = 8.0, hop_length: int = 160, n_fft: int = 512, win_length: int = 400,
                 f_min: float = 50.0, f_max: float = 8000.0, min_duration_s: float = 0.5,
                 max_clipped_fraction: float = 0.01, **kwargs: Any):  # fmt: skip
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.duration_s, self.hop_length, self.n_fft, self.win_length = duration_s, hop_length, n_fft, win_length
        self.f_min, self.f_max = f_min, f_max
        self.min_duration_s, self.max_clipped_fraction = min_duration_s, max_clipped_fraction

    @property
    def num_samples(self) -> int:
        return round(self.duration_s * self.sampling_rate)

    @property
    def num_frames(self) -> int:
        return self.num_samples // self.hop_length

    def check(self, samples: np.ndarray, name: str) -> None:
        """ValueError naming the recording when it cannot be a usable auscultation input."""
        if samples.ndim != 1:
            raise ValueError(f"{name}: expected a mono waveform (samples,), got shape {samples.shape}.")
        if not np.isfinite(samples).all():
            raise ValueError(f"{name}: {int((~np.isfinite(samples)).sum())} NaN/Inf sample(s).")
        if samples.size < self.min_duration_s * self.sampling_rate:
            raise ValueError(f"{name}: {samples.size / self.sampling_rate:.2f} s is too short (at least "
                             f"{self.min_duration_s} s at {self.sampling_rate} Hz).")  # fmt: skip
        if not np.any(samples):
            raise ValueError(f"{name}: the recording is silent (every sample is zero).")
        peak = np.abs(samples).max()
        clipped = np.mean(np.abs(samples) >= 0.999 * max(peak, 1.0))
        if clipped > self.max_clipped_fraction:
            raise ValueError(f"{name}: {clipped:.1%} of samples sit at full scale — the recording is clipped "
                             f"(more than {self.max_clipped_fraction:.0%}).")  # fmt: skip

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """`(feature_size, num_frames)` for one checked waveform."""
        wave = np.zeros(self.num_samples, dtype=np.float32)
        wave[: min(samples.size, self.num_samples)] = samples[: self.num_samples]
        filters = mel_filter_bank(1 + self.n_fft // 2, self.feature_size, self.f_min, self.f_max, self.sampling_rate,
                                  norm="slaney", mel_scale="slaney")  # fmt: skip
        window = window_function(self.win_length, "hann", frame_length=self.n_fft)
        mel = spectrogram(wave, window, self.n_fft, self.hop_length, power=2.0, mel_filters=filters,
                          log_mel="log10")[:, : self.num_frames]  # fmt: skip
        mel = np.maximum(mel, mel.max() - 8.0)
        return ((mel + 4.0) / 4.0).astype(np.float32)

    def __call__(self, raw_audio: Any, sampling_rate: int | None = None, return_tensors: str | None = None,
                 **kwargs: Any) -> BatchFeature:  # fmt: skip
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(f"sampling_rate={sampling_rate}: this extractor takes {self.sampling_rate} Hz (the "
                             "processor resamples; arrays given directly must be at that rate).")  # fmt: skip
        batch = raw_audio if isinstance(raw_audio, (list, tuple)) else [raw_audio]
        if not len(batch):
            raise ValueError("raw_audio is an empty list.")
        features = []
        for index, item in enumerate(batch):
            samples = np.asarray(item.detach().cpu().numpy() if hasattr(item, "detach") else item, dtype=np.float32)
            self.check(samples, f"audio[{index}]")
            features.append(self.log_mel(samples))
        return BatchFeature({"input_features": np.stack(features)}, tensor_type=return_tensors)
