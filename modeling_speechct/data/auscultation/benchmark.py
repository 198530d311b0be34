"""The embedded auscultation benchmark: procedural lung, heart and cough recordings of sampled patients, in the AcuLa
manifest layout (`manifest.read_manifest` reads it).

    python processing/build_auscultation.py --out data/auscultation --num-patients 400

Each patient has a latent state (age, sex, smoker, one diagnosis, symptoms); each recording a sound, site, device and
noise level. Acoustics-only tasks (wheeze, crackles, murmur, systolic murmur, wet cough) have loud cues; the
metadata-dependent tasks (obstructive disease, elderly, smartphone) follow what reports describe and carry only a
subtle acoustic cue (a longer expiration, a high-frequency tilt, a mild device response) under loudness and noise
nuisance — so aligning audio to the reports should make them more linearly readable. Wavs are written atomically
and existing ones kept, so an interrupted build resumes; `auscultation.json` refuses another build's folder.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...files.provenance import refuse_other_build
from .manifest import ProbeTask, Recording, split_patients, write_manifest
from .report_template import ReportTemplate
from .synthesis import (
    DEVICES,
    MURMUR_SHAPES,
    NOISE_LEVELS,
    background_noise,
    cough_sound,
    device_channel,
    heart_sound,
    lung_sound,
)

DATASET = "auscultation-benchmark"
STAMP = "auscultation.json"
DIAGNOSES = ("healthy", "asthma", "COPD", "pneumonia", "heart-valve disease", "heart failure")
LUNG_SITES = ("trachea", "left anterior chest", "right anterior chest", "left posterior base", "right posterior base")
HEART_SITES = ("aortic area", "pulmonic area", "tricuspid area", "mitral area")
SYMPTOMS = ("dyspnea", "fever", "chest pain", "cough")
# What decides the content; `out` does not (a moved copy is the same build).
_CONTENT_FIELDS = ("num_patients", "recordings_per_patient", "seed", "duration_s", "sampling_rate")

TASKS = (
    ProbeTask("wheeze", "wheeze", "wheeze present", "acoustics", "tonal expiratory wheezes (lung recordings)"),
    ProbeTask("crackles", "crackles", "crackles present", "acoustics", "short inspiratory transients (lung)"),
    ProbeTask("murmur", "murmur", "murmur present", "acoustics", "turbulent-flow noise in the cardiac cycle (heart)"),
    ProbeTask("systolic murmur", "systolic_murmur", "systolic", "acoustics", "systolic vs diastolic (murmurs only)"),
    ProbeTask("wet cough", "wet_cough", "wet", "acoustics", "wet vs dry cough (cough recordings)"),
    ProbeTask("obstructive disease", "obstructive", "asthma or COPD", "metadata",
              "diagnosis follows age, smoking and dyspnea; cue: a slightly longer expiration (lung and cough)"),
    ProbeTask("elderly", "elderly", "age 65 or over", "metadata", "cue: a small high-frequency tilt with age"),
    ProbeTask("smartphone recording", "smartphone", "smartphone", "metadata", "cue: a mild device response"),
)  # fmt: skip
EXCLUDED_FIELDS = ("diagnosis", *sorted({t.label for t in TASKS}))

TEMPLATE = ReportTemplate(
    dataset=DATASET,
    opening="Auscultation recording.",
    sentences=(
        ("sound", "Recorded {value} sounds."),
        ("site", "Auscultation site: {value}."),
        ("age", "The patient is {value} years old."),
        ("age_group", "Age group: {value}."),
        ("sex", "Sex: {value}."),
        ("smoker", "Smoker: {value}."),
        ("symptoms", "Presenting symptoms: {value}."),
        ("device", "Captured with a {value}."),
        ("noise", "Background noise was {value}."),
    ),
)


@dataclass(frozen=True)
class AuscultationConfig:
    out: Path
    num_patients: int = 400
    recordings_per_patient: int = 3
    seed: int = 0
    duration_s: float = 8.0
    sampling_rate: int = 16000


@dataclass(frozen=True)
class RecordingSpec:
    """Everything a recording's waveform follows from (rendering is deterministic given it): the tests re-render a
    spec with one finding switched off and compare."""

    patient: str
    name: str
    sound: str
    site: str
    device: str
    noise: str
    seed: int
    age: int
    gain_db: float
    breath_rate: float = 16.0
    ie_ratio: float = 1.5
    breath_phase: float = 0.0
    wheeze: bool = False
    wheeze_freq: float = 400.0
    wheeze_rate: float = 0.7
    wheeze_duration: float = 0.6
    crackles_per_cycle: float = 0.0
    heart_rate: float = 72.0
    heart_phase: float = 0.0
    murmur: str = ""
    murmur_shape: str = "plateau"
    murmur_grade: int = 3
    wet: bool = False
    cough_count: int = 3
    cough_tail: float = 1.0

    @property
    def relative(self) -> str:
        return f"recordings/{self.patient}/{self.name}.wav"


def age_tilt_db(age: int) -> float:
    """The subtle age cue: up to −3 dB above ~500 Hz from age 20 to 90."""
    return -3.0 * float(np.clip((age - 20) / 70, 0.0, 1.0))


def render(spec: RecordingSpec, sampling_rate: int = 16000, duration_s: float = 8.0) -> np.ndarray:
    """The spec's float32 waveform: source, device channel (with the age tilt), loudness, background noise."""
    n = round(duration_s * sampling_rate)
    g_source, g_noise = (np.random.default_rng([spec.seed, k]) for k in (0, 1))
    if spec.sound == "lung":
        x = lung_sound(g_source, sampling_rate, n, breath_rate=spec.breath_rate, ie_ratio=spec.ie_ratio,
                       phase=spec.breath_phase, tracheal=spec.site == "trachea", wheeze=spec.wheeze,
                       wheeze_freq=spec.wheeze_freq, wheeze_rate=spec.wheeze_rate,
                       wheeze_duration=spec.wheeze_duration, crackles_per_cycle=spec.crackles_per_cycle)  # fmt: skip
    elif spec.sound == "heart":
        x = heart_sound(g_source, sampling_rate, n, heart_rate=spec.heart_rate, phase=spec.heart_phase,
                        murmur=spec.murmur, murmur_shape=spec.murmur_shape, murmur_grade=spec.murmur_grade)  # fmt: skip
    elif spec.sound == "cough":
        x = cough_sound(g_source, sampling_rate, n, wet=spec.wet, count=spec.cough_count, tail=spec.cough_tail)
    else:
        raise ValueError(f"sound={spec.sound!r} is not lung, heart or cough.")
    x = device_channel(x, sampling_rate, spec.device, age_tilt_db(spec.age))
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12) * 0.05 * 10 ** (spec.gain_db / 20)
    x = background_noise(g_noise, x, sampling_rate, spec.noise)
    peak = np.abs(x).max()
    return (x / max(1.0, peak / 0.95)).astype(np.float32)


def _sample_patient(rng: np.random.Generator) -> dict[str, Any]:
    group = rng.choice(["child", "adult", "elderly"], p=[0.15, 0.5, 0.35])
    age = int({"child": rng.integers(4, 18), "adult": rng.integers(18, 65), "elderly": rng.integers(65, 91)}[group])
    smoker = bool(rng.random() < {"child": 0.02, "adult": 0.25, "elderly": 0.35}[group])
    weights = {
        "healthy": 3.0,
        "asthma": 0.8 + (0.8 if group == "child" else 0.0),
        "COPD": 0.1 + (2.0 if smoker and group == "elderly" else 0.8 if smoker else 0.3 if group == "elderly" else 0),
        "pneumonia": 0.7,
        "heart-valve disease": 0.2 + (1.0 if group == "elderly" else 0.0),
        "heart failure": 0.05 + (1.0 if group == "elderly" else 0.1 if smoker else 0.0),
    }
    p = np.array([weights[d] for d in DIAGNOSES])
    diagnosis = str(rng.choice(DIAGNOSES, p=p / p.sum()))
    symptom_p = {
        "healthy": (0.03, 0.03, 0.03, 0.08),
        "asthma": (0.75, 0.05, 0.2, 0.5),
        "COPD": (0.8, 0.05, 0.15, 0.75),
        "pneumonia": (0.5, 0.8, 0.3, 0.85),
        "heart-valve disease": (0.4, 0.02, 0.35, 0.1),
        "heart failure": (0.8, 0.03, 0.3, 0.3),
    }[diagnosis]
    symptoms = [s for s, q in zip(SYMPTOMS, symptom_p, strict=True) if rng.random() < q]
    return {"age": age, "age_group": str(group), "sex": str(rng.choice(["female", "male"])), "smoker": smoker,
            "diagnosis": diagnosis, "symptoms": symptoms}  # fmt: skip


def _sample_recording(rng: np.random.Generator, patient: str, index: int, state: dict[str, Any]) -> RecordingSpec:
    dx, age = state["diagnosis"], state["age"]
    sound = str(rng.choice(["lung", "heart", "cough"], p=[0.45, 0.35, 0.2]))
    site = str(rng.choice({"lung": LUNG_SITES, "heart": HEART_SITES, "cough": ("mouth",)}[sound]))
    device = str(rng.choice(DEVICES, p=[0.4, 0.3, 0.3]))
    noise = str(rng.choice(NOISE_LEVELS, p=[0.4, 0.35, 0.25]))
    obstructive = dx in ("asthma", "COPD")
    base = RecordingSpec(patient=patient, name=f"{index:02d}_{sound}", sound=sound, site=site, device=device,
                         noise=noise, seed=int(rng.integers(2**31)), age=age,
                         gain_db=float(rng.uniform(-10, 6)))  # fmt: skip
    sick = dx in ("pneumonia", "heart failure")
    breath_rate = float(rng.uniform(12, 20) + (6 if age < 12 else 0) + (4 if sick else 0))
    heart_rate = float(rng.uniform(60, 90) + (20 if age < 12 else 0) + (15 if dx == "heart failure" else 0))
    if sound == "lung":
        wheeze = bool(rng.random() < {"asthma": 0.65, "COPD": 0.5}.get(dx, 0.05))
        crackle_p = {"pneumonia": 0.75, "heart failure": 0.7, "COPD": 0.3}.get(dx, 0.05)
        crackles = float(rng.uniform(2, 6)) if rng.random() < crackle_p else 0.0
        ie = float(rng.normal(2.0 if obstructive else 1.6, 0.25))
        return replace(base, breath_rate=breath_rate, ie_ratio=max(ie, 1.0), breath_phase=float(rng.uniform(0, 3)),
                       wheeze=wheeze, wheeze_freq=float(rng.uniform(150, 800)), wheeze_rate=float(rng.uniform(0.4, 1)),
                       wheeze_duration=float(rng.uniform(0.3, 0.8)), crackles_per_cycle=crackles)  # fmt: skip
    if sound == "heart":
        murmur_p = {"heart-valve disease": 0.85, "heart failure": 0.4}.get(dx, 0.04)
        murmur = str(rng.choice(["systolic", "diastolic"], p=[0.7, 0.3])) if rng.random() < murmur_p else ""
        return replace(base, heart_rate=heart_rate, heart_phase=float(rng.uniform(0.05, 0.6)), murmur=murmur,
                       murmur_shape=str(rng.choice(MURMUR_SHAPES)), murmur_grade=int(rng.integers(2, 6)))  # fmt: skip
    wet = bool(rng.random() < {"pneumonia": 0.8, "COPD": 0.6, "heart failure": 0.35}.get(dx, 0.15))
    tail = float(rng.normal(1.15 if obstructive else 1.0, 0.12))
    return replace(base, wet=wet, cough_count=int(rng.integers(2, 5)), cough_tail=float(np.clip(tail, 0.7, 1.5)))


def plan(config: AuscultationConfig) -> list[tuple[RecordingSpec, Recording]]:
    """Every recording's spec and manifest row, drawn from `config.seed` alone (a resumed build re-plans the same)."""
    rng = np.random.default_rng([config.seed, 7])
    patients = [f"patient_{i:04d}" for i in range(config.num_patients)]
    splits = split_patients(patients, config.seed)
    out = []
    for patient in patients:
        state = _sample_patient(rng)
        for index in range(config.recordings_per_patient):
            spec = _sample_recording(rng, patient, index, state)
            metadata = {
                "sound": spec.sound, "site": spec.site, "age": str(state["age"]), "age_group": state["age_group"],
                "sex": state["sex"], "smoker": "yes" if state["smoker"] else "no", "device": spec.device,
                "noise": spec.noise, "symptoms": ", ".join(state["symptoms"]) or "none",
                "diagnosis": state["diagnosis"],
            }  # fmt: skip
            labels = {"elderly": int(state["age"] >= 65), "smartphone": int(spec.device == "smartphone")}
            if spec.sound in ("lung", "cough"):
                labels["obstructive"] = int(state["diagnosis"] in ("asthma", "COPD"))
            if spec.sound == "lung":
                labels |= {"wheeze": int(spec.wheeze), "crackles": int(spec.crackles_per_cycle > 0)}
            elif spec.sound == "heart":
                labels["murmur"] = int(bool(spec.murmur))
                if spec.murmur:
                    labels["systolic_murmur"] = int(spec.murmur == "systolic")
            else:
                labels["wet_cough"] = int(spec.wet)
            row = Recording(Path(spec.relative), patient, splits[patient], DATASET, metadata, labels)
            out.append((spec, row))
    return out


def _content(config: AuscultationConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(config).items() if k in _CONTENT_FIELDS}


def require_same_build(config: AuscultationConfig) -> None:
    """Refuse a folder that holds another auscultation build (`files.provenance.refuse_other_build`)."""
    refuse_other_build(Path(config.out) / STAMP, _content(config), "auscultation")


def _write(job: tuple[RecordingSpec, str, int, float]) -> None:
    """Render and write one wav atomically (a temporary file in the same folder, then rename)."""
    import soundfile as sf

    spec, path, sampling_rate, duration_s = job
    with tempfile.NamedTemporaryFile(dir=Path(path).parent, suffix=".wav", delete=False) as tmp:
        sf.write(tmp, render(spec, sampling_rate, duration_s), sampling_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp.name, path)


def build_auscultation(config: AuscultationConfig, progress: bool = True) -> dict[str, Any]:
    """Write the benchmark under `config.out`; returns counts (recordings, written, kept, per split and label)."""
    start = time.perf_counter()
    root = Path(config.out)
    require_same_build(config)
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / STAMP
    tmp = stamp.with_suffix(".tmp")
    tmp.write_text(json.dumps({"config": _content(config), "dataset": DATASET}, indent=1))
    tmp.replace(stamp)
    planned = plan(config)
    jobs = []
    for spec, _ in planned:
        path = root / spec.relative
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            jobs.append((spec, str(path), config.sampling_rate, config.duration_s))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="auscultation", unit="wav")
    if len(jobs) > 64:
        with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            for _ in pool.map(_write, jobs, chunksize=16):
                if bar is not None:
                    bar.update()
    else:
        for job in jobs:
            _write(job)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    rows = [row for _, row in planned]
    write_manifest(root, rows, TASKS, EXCLUDED_FIELDS)
    splits = {s: sum(r.split == s for r in rows) for s in ("train", "valid", "test")}
    labels = {t.label: [sum(r.labels.get(t.label) == v for r in rows) for v in (1, 0)] for t in TASKS}
    return {"root": str(root), "recordings": len(rows), "written": len(jobs), "kept": len(rows) - len(jobs),
            "patients": config.num_patients, "splits": splits, "labels_pos_neg": labels,
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
