"""The embedded auscultation benchmark: manifest round trip, patient-level splits, audio that shows its labels
(each checked against a re-render of the same recording with the finding switched off), resume and refusal, and
reports that never carry an excluded field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from modeling_speechct.data.auscultation.benchmark import (
    TEMPLATE,
    AuscultationConfig,
    RecordingSpec,
    build_auscultation,
    plan,
    render,
)
from modeling_speechct.data.auscultation.manifest import read_manifest, read_tasks
from modeling_speechct.data.auscultation.synthesis import bandpass, cardiac_timing

SR = 16000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuscultationConfig, dict[str, RecordingSpec]]:
    config = AuscultationConfig(out=tmp_path_factory.mktemp("auscultation"), num_patients=14, seed=22)
    build_auscultation(config, progress=False)
    specs = {spec.relative: spec for spec, _ in plan(config)}
    return config, specs


def _rows(config: AuscultationConfig, label: str, value: int) -> list:
    rows = [r for r in read_manifest(config.out) if r.labels.get(label) == value]
    assert rows, f"the test build has no recording with {label}={value}: pick another seed or size"
    return rows


def _pair(config: AuscultationConfig, specs: dict[str, RecordingSpec], row, **off) -> tuple[np.ndarray, np.ndarray]:
    """The wav on disk and the same recording re-rendered with the finding switched off."""
    spec = specs[str(Path(row.path).relative_to(Path(config.out).resolve()))]
    audio, sr = sf.read(row.path, dtype="float32")
    assert sr == SR and len(audio) == int(config.duration_s * SR)
    return audio.astype(np.float64), render(replace(spec, **off), SR, config.duration_s).astype(np.float64)


def _tonality(x: np.ndarray, low: float = 100.0, high: float = 1000.0) -> float:
    """Largest ratio, within the band, of the averaged power spectrum to its median over the surrounding ±160 Hz:
    high for sustained tones, near 1 for noise however it is coloured."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 2048)[::1024] * np.hanning(2048)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(0)
    freqs = np.fft.rfftfreq(2048, 1 / SR)
    local = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(power, 20, mode="edge"), 41), axis=1)
    band = (freqs >= low) & (freqs <= high)
    return float((power[band] / local[band]).max())


def _transients(x: np.ndarray) -> int:
    """Count of 5 ms frames whose 200–1500 Hz energy jumps above 6× the median of the surrounding 105 ms (onsets
    only): local, so breath envelopes do not count, and band-limited, so broadband noise does not."""
    y = bandpass(x, SR, 200.0, 1500.0)
    energy = (y[: len(y) // 80 * 80].reshape(-1, 80) ** 2).sum(1)
    local = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(energy, 10, mode="edge"), 21), axis=1)
    above = energy > 6 * local
    return int(np.sum(above[1:] & ~above[:-1]))


def test_manifest_reads_back(built: tuple[AuscultationConfig, dict[str, RecordingSpec]]) -> None:
    config, specs = built
    rows = read_manifest(config.out)
    assert len(rows) == config.num_patients * config.recordings_per_patient == len(specs)
    tasks, excluded = read_tasks(config.out)
    assert {t.depends_on for t in tasks} == {"acoustics", "metadata"}
    assert {t.label for t in tasks} | {"diagnosis"} <= set(excluded)
    for r in rows:
        assert r.path.is_file() and r.metadata["sound"] in ("lung", "heart", "cough")
        assert set(r.labels.values()) <= {0, 1}
        if r.metadata["sound"] != "heart":
            assert "murmur" not in r.labels
        if r.metadata["sound"] != "lung":
            assert "wheeze" not in r.labels and "crackles" not in r.labels


def test_no_patient_spans_two_splits(built: tuple[AuscultationConfig, dict[str, RecordingSpec]]) -> None:
    config, _ = built
    seen: dict[str, set[str]] = {}
    for r in read_manifest(config.out):
        seen.setdefault(r.patient, set()).add(r.split)
    assert len(seen) == config.num_patients
    assert all(len(s) == 1 for s in seen.values())


def test_wheeze_is_tonal(built: tuple[AuscultationConfig, dict[str, RecordingSpec]]) -> None:
    config, specs = built
    for row in _rows(config, "wheeze", 1):
        audio, without = _pair(config, specs, row, wheeze=False)
        assert _tonality(audio) > 2 * _tonality(without), row.path


def test_crackles_add_transients(built: tuple[AuscultationConfig, dict[str, RecordingSpec]]) -> None:
    config, specs = built
    for row in _rows(config, "crackles", 1):
        audio, without = _pair(config, specs, row, crackles_per_cycle=0.0)
        assert _transients(audio) > _transients(without), row.path


def _systole_diastole_ratio(x: np.ndarray, spec: RecordingSpec) -> float:
    """Murmur-band energy between S1 and S2 over that in the rest of diastole (beat times from the spec)."""
    y = bandpass(x, SR, 150.0, 600.0) ** 2
    period, systole = cardiac_timing(spec.heart_rate)
    sys_e, dia_e = [], []
    for onset in np.arange(spec.heart_phase, len(x) / SR - period, period):
        sys_e.append(y[int((onset + 0.13) * SR) : int((onset + systole - 0.03) * SR)].mean())
        dia_e.append(y[int((onset + systole + 0.12) * SR) : int((onset + period - 0.03) * SR)].mean())
    return float(np.mean(sys_e) / np.mean(dia_e))


def test_murmur_timing(built: tuple[AuscultationConfig, dict[str, RecordingSpec]]) -> None:
    config, specs = built
    for row in _rows(config, "murmur", 1):
        spec = specs[str(Path(row.path).relative_to(Path(config.out).resolve()))]
        audio, without = _pair(config, specs, row, murmur="")
        with_ratio, without_ratio = _systole_diastole_ratio(audio, spec), _systole_diastole_ratio(without, spec)
        if row.labels["systolic_murmur"] == 1:
            assert with_ratio > 1.5 * without_ratio, row.path
        else:
            assert with_ratio < without_ratio / 1.5, row.path


def test_wet_cough_has_low_gurgles(built: tuple[AuscultationConfig, dict[str, RecordingSpec]]) -> None:
    config, specs = built

    def low_fraction(x: np.ndarray) -> float:
        return float(np.sum(bandpass(x, SR, 90.0, 400.0) ** 2) / np.sum(x**2))

    for row in _rows(config, "wet_cough", 1):
        audio, dry = _pair(config, specs, row, wet=False)
        assert low_fraction(audio) > 1.2 * low_fraction(dry), row.path


def test_resume_keeps_files_and_other_seed_is_refused(tmp_path: Path) -> None:
    config = AuscultationConfig(out=tmp_path, num_patients=3, recordings_per_patient=2, seed=1)
    first = build_auscultation(config, progress=False)
    assert first["written"] == 6
    wavs = sorted((tmp_path / "recordings").rglob("*.wav"))
    mtimes = [w.stat().st_mtime_ns for w in wavs]
    wavs[0].unlink()
    again = build_auscultation(config, progress=False)
    assert again["written"] == 1 and again["kept"] == 5
    assert [w.stat().st_mtime_ns for w in wavs[1:]] == mtimes[1:]
    assert len(read_manifest(tmp_path)) == 6
    with pytest.raises(ValueError, match="another auscultation build"):
        build_auscultation(replace(config, seed=2), progress=False)


def test_reports_never_carry_excluded_fields(built: tuple[AuscultationConfig, dict[str, RecordingSpec]]) -> None:
    config, _ = built
    _, excluded = read_tasks(config.out)
    for r in read_manifest(config.out):
        assert "diagnosis" in r.metadata
        text = TEMPLATE.render(r.metadata, set(excluded))
        assert r.metadata["device"] in text and r.metadata["age"] in text
        for field in excluded:
            if field in r.metadata:
                assert r.metadata[field] not in text, (field, text)
