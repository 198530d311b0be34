"""Audio in any form (path, numpy, torch; any rate and channel count) → checked mono float32 at a target rate."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

# Largest channel count taken as a channel axis when an array's layout is ambiguous (7.1 surround has 8).
MAX_CHANNELS = 8
# Plausible sample rates: below 4 kHz no speech band survives (telephony is 8 kHz); above 384 kHz no audio
# interface records. A rate outside is a mistake (`sampling_rate=3`, a duration passed as a rate), never resampled.
MIN_SAMPLING_RATE = 4_000
MAX_SAMPLING_RATE = 384_000


def load_audio(audio: Any, sampling_rate: int | None = None, name: str = "audio") -> tuple[np.ndarray, int]:
    """Return `(mono float32 samples, sample rate)`. Paths are read with soundfile (its rate wins); arrays need
    `sampling_rate`. 2-D arrays may be (channels, samples) or (samples, channels)."""
    if isinstance(audio, (str, os.PathLike)):
        import soundfile as sf

        try:
            data, file_rate = sf.read(os.fspath(audio), dtype="float32", always_2d=True)
        except Exception as err:
            raise ValueError(f"{audio}: cannot read as audio ({type(err).__name__}: {err}).") from err
        samples, rate, name = data.mean(axis=1), int(file_rate), os.fspath(audio)
    else:
        array = audio.detach().cpu().numpy() if hasattr(audio, "detach") else np.asarray(audio)
        if sampling_rate is None:
            raise ValueError(
                f"{name}: unknown sample rate — pass `sampling_rate=` with arrays (files carry their own)."
            )
        samples, rate = _to_mono(array.astype(np.float32, copy=False), name), sampling_rate
    if not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ValueError(f"{name}: sample rate {rate!r} is not a positive whole number of Hz.")
    if not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
        raise ValueError(
            f"{name}: sample rate {int(rate)} Hz is implausible for audio (expected {MIN_SAMPLING_RATE:,}–"
            f"{MAX_SAMPLING_RATE:,} Hz); pass the recording's real rate as `sampling_rate=`."
        )
    check_waveform(samples, name)
    return samples, int(rate)


def _to_mono(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 1:
        return array
    if array.ndim == 2:
        if array.shape[0] <= MAX_CHANNELS < array.shape[1] or array.shape[0] < array.shape[1] <= MAX_CHANNELS:
            return array.mean(axis=0)  # (channels, samples)
        if array.shape[1] <= MAX_CHANNELS:
            return array.mean(axis=1)  # (samples, channels)
    raise ValueError(
        f"{name}: audio array of shape {array.shape} is neither (samples,), (channels, samples) nor "
        f"(samples, channels) with at most {MAX_CHANNELS} channels."
    )


def check_waveform(samples: np.ndarray, name: str) -> None:
    if samples.size == 0:
        raise ValueError(f"{name}: the recording is empty (0 samples).")
    if not np.isfinite(samples).all():
        raise ValueError(f"{name}: {int((~np.isfinite(samples)).sum())} NaN/Inf sample(s).")
    if not np.any(samples):
        raise ValueError(f"{name}: the recording is silent (every sample is zero).")


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Band-limited (windowed-sinc) resampling with torchaudio; a no-op at the target rate."""
    if rate == target_rate:
        return samples
    import torch
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(samples)), rate, target_rate).numpy()


def load_recordings(audio: Any, sampling_rate: Any, target_rate: int) -> list[np.ndarray]:
    """Recordings (one or a list; paths or arrays with their rate, one rate or one per recording) → checked mono
    float32 at `target_rate`, each refused by index when it cannot be read or used."""
    recordings = list(audio) if isinstance(audio, (list, tuple)) else [audio]
    if not recordings:
        raise ValueError("`audio` is an empty list.")
    rates = sampling_rate if isinstance(sampling_rate, (list, tuple)) else [sampling_rate] * len(recordings)
    if len(rates) != len(recordings):
        raise ValueError(f"`sampling_rate` has {len(rates)} entries for {len(recordings)} recordings.")
    waves = []
    for index, (recording, rate) in enumerate(zip(recordings, rates, strict=True)):
        samples, rate = load_audio(recording, rate, name=f"audio[{index}]")
        waves.append(resample(samples, rate, target_rate).astype(np.float32))
    return waves


def audio_features(feature_extractor: Any, audio: Any, sampling_rate: Any, return_tensors: str | None) -> dict:
    """Recordings (one or a list) → checked mono at the extractor's rate → its features, padded to the longest and
    never truncated: `{"speech_values", "speech_attention_mask"}` (the processors of every system call this)."""
    import inspect

    target = int(feature_extractor.sampling_rate)
    waves = load_recordings(audio, sampling_rate, target)
    options: dict[str, Any] = {"sampling_rate": target, "padding": "longest", "return_attention_mask": True}
    if "truncation" in inspect.signature(feature_extractor.__call__).parameters:
        options["truncation"] = False  # Whisper's extractor cuts at 30 s by default; the models window instead
    features = feature_extractor(waves, return_tensors=return_tensors, **options)
    values = features.get("input_features", features.get("input_values"))
    return {"speech_values": values, "speech_attention_mask": features["attention_mask"]}
