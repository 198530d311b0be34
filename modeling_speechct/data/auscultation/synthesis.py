"""Procedural auscultation sounds for the embedded AcuLa benchmark: lung, heart and cough waveforms, a device channel
and background noise (numpy only).

Every generator takes a `np.random.Generator` and draws its sub-seeds first, so switching a finding on or off (a
wheeze, crackles, a murmur) leaves the rest of the waveform identical: the tests render "the same patient without
the finding" and compare. Filters are zero-phase masks in the rFFT domain (smooth Butterworth magnitudes), which is
fast enough to render 1200 eight-second recordings in well under a minute.
"""

from __future__ import annotations

import numpy as np

DEVICES = ("electronic stethoscope", "analogue stethoscope via microphone", "smartphone")
NOISE_LEVELS = ("quiet", "moderate", "noisy")
MURMUR_SHAPES = ("crescendo", "decrescendo", "plateau")
# (high-pass Hz, low-pass Hz, resonance Hz, resonance gain dB, filter order): mild on purpose, so the device is a
# subtle cue beside the loudness and noise nuisance.
_DEVICE_RESPONSE = {
    "electronic stethoscope": (20.0, 2000.0, 120.0, 2.0, 2),
    "analogue stethoscope via microphone": (30.0, 1200.0, 250.0, 4.0, 2),
    "smartphone": (110.0, 3800.0, 1500.0, 2.0, 1),
}
_SNR_DB = {"quiet": 30.0, "moderate": 18.0, "noisy": 8.0}


def _seeds(rng: np.random.Generator, count: int) -> list[np.random.Generator]:
    """Independent child generators drawn up front, so optional components never shift the others' streams."""
    return [np.random.default_rng(s) for s in rng.integers(0, 2**63 - 1, size=count)]


def band_response(freqs: np.ndarray, low: float | None, high: float | None, order: int = 2) -> np.ndarray:
    """Butterworth-like magnitude of a band-pass (either edge may be None)."""
    response = np.ones_like(freqs)
    f = np.maximum(freqs, 1e-3)
    if low:
        response /= np.sqrt(1.0 + (low / f) ** (2 * order))
    if high:
        response /= np.sqrt(1.0 + (f / high) ** (2 * order))
    return response


def bandpass(x: np.ndarray, sr: int, low: float | None, high: float | None, order: int = 2) -> np.ndarray:
    """Zero-phase band-pass through the rFFT (no scipy in the benchmark's dependencies)."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    return np.fft.irfft(spectrum * band_response(freqs, low, high, order), n=len(x))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def breath_timing(breath_rate: float, ie_ratio: float) -> tuple[float, float]:
    """(cycle period, inspiration length) in seconds: expiration is `ie_ratio` times inspiration."""
    period = 60.0 / breath_rate
    return period, period / (1.0 + ie_ratio)


def cardiac_timing(heart_rate: float) -> tuple[float, float]:
    """(beat period, S1→S2 interval) in seconds; systole shortens with rate roughly like the square root of RR."""
    period = 60.0 / heart_rate
    return period, 0.33 * np.sqrt(period)


def lung_sound(rng: np.random.Generator, sr: int, n: int, *, breath_rate: float = 16.0, ie_ratio: float = 1.5,
               phase: float = 0.0, tracheal: bool = False, wheeze: bool = False, wheeze_freq: float = 400.0,
               wheeze_rate: float = 0.7, wheeze_duration: float = 0.6, crackles_per_cycle: float = 0.0,
               ) -> np.ndarray:  # fmt: skip
    """Breath cycles of band-passed noise; wheezes (tones + harmonics during expiration, in a `wheeze_rate` fraction
    of cycles, lasting `wheeze_duration` of the expiration) and crackles (5–20 ms damped transients, mostly late
    inspiratory, Poisson with `crackles_per_cycle`)."""
    g_breath, g_wheeze, g_crackle = _seeds(rng, 3)
    t = np.arange(n) / sr
    period, t_in = breath_timing(breath_rate, ie_ratio)
    tc = (t + phase) % period
    insp = np.where(tc < t_in, np.sin(np.pi * np.clip(tc / t_in, 0, 1)) ** 2, 0.0)
    exp_pos = np.clip((tc - t_in) / (period - t_in), 0, 1)
    expi = np.where(tc >= t_in, 0.55 * np.sin(np.pi * exp_pos) ** 1.5, 0.0)
    low, high = (150.0, 1500.0) if tracheal else (100.0, 600.0)
    noise = bandpass(g_breath.standard_normal(n), sr, low, high)
    breath = noise * (insp + expi)
    breath /= _rms(breath)
    out = breath.copy()
    cycle_starts = np.arange(-phase, n / sr, period)
    if wheeze:
        windows = []  # (first, last sample) of each cycle's wheeze window that lies inside the recording
        for start in cycle_starts:
            t0 = start + t_in + 0.1 * (period - t_in)
            i0, i1 = max(int(t0 * sr), 0), min(int((t0 + wheeze_duration * (period - t_in)) * sr), n)
            windows.append((i0, i1))
        full = [k for k, (i0, i1) in enumerate(windows) if i1 - i0 >= sr // 10]
        chosen = g_wheeze.random(len(windows)) < wheeze_rate
        if full:
            chosen[full[g_wheeze.integers(len(full))]] = True  # a wheezing patient wheezes at least once
        for (i0, i1), on in zip(windows, chosen, strict=True):
            if not on or i1 - i0 < sr // 20:
                continue
            f0 = wheeze_freq * g_wheeze.uniform(0.97, 1.03)
            tt = np.arange(i1 - i0) / sr
            glide = f0 * (1.0 + 0.02 * tt / tt[-1])
            ph = 2 * np.pi * np.cumsum(glide) / sr
            tone = np.sin(ph) + 0.45 * np.sin(2 * ph) + 0.2 * np.sin(3 * ph)
            ramp = np.minimum(1.0, np.minimum(tt, tt[-1] - tt) / 0.04)
            out[i0:i1] += 2.5 * tone * ramp
    if crackles_per_cycle > 0:
        for start in cycle_starts:
            for _ in range(max(1, g_crackle.poisson(crackles_per_cycle))):
                t0 = start + t_in * g_crackle.uniform(0.3, 1.0)
                dur = g_crackle.uniform(0.005, 0.020)
                i0, m = int(t0 * sr), int(dur * sr)
                if i0 < 0 or i0 + m >= n:
                    continue
                tt = np.arange(m) / sr
                f = g_crackle.uniform(250.0, 700.0)
                amp = g_crackle.uniform(12.0, 24.0)  # explosive: far above the breath sound for a few ms
                out[i0 : i0 + m] += amp * np.sin(2 * np.pi * f * tt) * np.exp(-tt / (dur / 3))
    return out


def heart_sound(rng: np.random.Generator, sr: int, n: int, *, heart_rate: float = 72.0, phase: float = 0.0,
                murmur: str = "", murmur_shape: str = "plateau", murmur_grade: int = 3) -> np.ndarray:  # fmt: skip
    """S1/S2 low-frequency damped bursts at `heart_rate`, the first S1 at `phase` s; an optional `murmur`
    ("systolic": between S1 and S2, "diastolic": after S2) of band-passed noise shaped crescendo / decrescendo /
    plateau, its amplitude growing with the grade (1–6)."""
    g_beat, g_murmur = _seeds(rng, 2)
    period, systole = cardiac_timing(heart_rate)
    out = np.zeros(n)
    onsets = np.arange(phase, n / sr, period)
    for onset in onsets:
        for t0, f, dur, amp in ((onset, 45.0, 0.11, 1.0), (onset + systole, 70.0, 0.08, 0.7)):
            i0, m = int(t0 * sr), int(dur * sr)
            if i0 + m > n:
                continue
            tt = np.arange(m) / sr
            f_jit = f * g_beat.uniform(0.9, 1.1)
            burst = np.sin(2 * np.pi * f_jit * tt) * np.sin(np.pi * tt / dur) ** 2 * np.exp(-tt / (dur / 2.5))
            out[i0 : i0 + m] += amp * g_beat.uniform(0.85, 1.15) * burst
    out /= np.abs(out).max() + 1e-9
    noise = bandpass(g_murmur.standard_normal(n), sr, 150.0, 600.0)
    noise /= _rms(noise)
    if murmur:
        t = np.arange(n) / sr
        tc = (t - phase) % period
        if murmur == "systolic":
            a, b = 0.11, systole - 0.02
        elif murmur == "diastolic":
            a, b = systole + 0.09, systole + 0.09 + 0.45 * (period - systole)
        else:
            raise ValueError(f"murmur={murmur!r} is not '', 'systolic' or 'diastolic'.")
        pos = (tc - a) / (b - a)
        inside = (pos >= 0) & (pos <= 1) & (t >= phase)
        shape = {"crescendo": pos, "decrescendo": 1 - pos, "plateau": np.ones_like(pos)}[murmur_shape]
        edge = np.minimum(1.0, np.minimum(pos, 1 - pos) / 0.08)
        out += np.where(inside, shape * edge, 0.0) * noise * 0.06 * murmur_grade
    return out


def cough_sound(rng: np.random.Generator, sr: int, n: int, *, wet: bool = False, count: int = 3,
                tail: float = 1.0) -> np.ndarray:  # fmt: skip
    """`count` coughs: a 1 ms-attack explosive broadband burst, then a decaying intermediate phase (`tail` scales
    its length); wet coughs add low-frequency gurgles (bubbling transients) and a longer, modulated tail."""
    g_time, g_burst, g_wet = _seeds(rng, 3)
    out = np.zeros(n)
    starts = 0.4 + np.cumsum(g_time.uniform(1.4, 2.4, size=count)) - 1.4
    for start in starts:
        dur = tail * g_burst.uniform(0.25, 0.4) * (1.3 if wet else 1.0)
        i0, m = int(start * sr), int(dur * sr)
        if i0 + m > n:
            continue
        tt = np.arange(m) / sr
        env = np.minimum(1.0, tt / 0.001) * (np.exp(-tt / 0.03) + 0.35 * np.exp(-tt / (dur / 3)))
        burst = bandpass(g_burst.standard_normal(m), sr, 200.0, 4000.0, 1) * env
        if wet:
            gurgle = np.zeros(m)
            for _ in range(g_wet.poisson(25)):
                j, k = g_wet.integers(int(0.02 * sr), m), int(g_wet.uniform(0.005, 0.015) * sr)
                seg = np.arange(min(k, m - j)) / sr
                gurgle[j : j + len(seg)] += np.sin(2 * np.pi * g_wet.uniform(100, 350) * seg) * np.exp(-seg / 0.004)
            burst += 0.6 * gurgle * np.exp(-tt / (dur / 2)) * (1 + 0.5 * np.sin(2 * np.pi * 9 * tt))
        out[i0 : i0 + m] += burst / (np.abs(burst).max() + 1e-9)
    return out


def device_channel(x: np.ndarray, sr: int, device: str, age_tilt_db: float = 0.0) -> np.ndarray:
    """The recording chain's frequency response (band limits and a resonance per device) and an optional
    high-shelf tilt (dB above ~500 Hz) for the chest wall's attenuation."""
    low, high, res_f, res_db, order = _DEVICE_RESPONSE[device]
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    response = band_response(freqs, low, high, order)
    response *= 10 ** (res_db / 20 * np.exp(-0.5 * (np.log(np.maximum(freqs, 1.0) / res_f) / 0.3) ** 2))
    if age_tilt_db:
        response *= 10 ** (age_tilt_db / 20 / (1.0 + (500.0 / np.maximum(freqs, 1.0)) ** 2))
    return np.fft.irfft(spectrum * response, n=len(x))


def background_noise(rng: np.random.Generator, x: np.ndarray, sr: int, level: str) -> np.ndarray:
    """`x` plus pink noise (and, when noisy, slow-modulated room babble) at the level's SNR."""
    n = len(x)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    pink = np.fft.irfft(spectrum / np.sqrt(np.maximum(freqs, 20.0)), n=n)
    if level == "noisy":
        t = np.arange(n) / sr
        babble = bandpass(rng.standard_normal(n), sr, 300.0, 3000.0) * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        pink = pink / _rms(pink) + babble / _rms(babble)
    noise = pink / _rms(pink) * _rms(x) * 10 ** (-_SNR_DB[level] / 20)
    return x + noise
