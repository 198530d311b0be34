"""Build the embedded benchmark: procedural chest CTs, CT-RATE-style reports and spoken reports, on disk in the
CT-RATE + Speech-RATE layout, reproducibly (every volume is a function of the seed and its index alone) and
resumably (finished volumes, tables and wavs are kept; files are written through temporary names).
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..ct_io import write_nifti
from ..labels import CT_RATE_LABELS
from . import ctrate

# Stored voxel orders drawn per volume, so that loading always has to reorient (CT-RATE itself stores L, P, S).
ORIENTATIONS = ("LPS", "RAS", "LAS", "RPI", "SLP", "PLS")


@dataclass(frozen=True)
class BuildConfig:
    out: Path
    num_volumes: int = 1000
    valid_fraction: float = 0.15
    test_fraction: float = 0.15
    shape: tuple[int, int, int] = (48, 96, 96)
    seed: int = 0
    workers: int = 2
    tts_backends: tuple[str, ...] = ("espeak", "flite")
    speech: bool = True
    # Extra recordings of every *training* report, each another seeded draw of engine, voice, rate and pitch: the
    # student's text target is voice-free, so hearing one report in several voices teaches the loss invariance.
    extra_train_voices: int = 0
    # Shorter than write_report's defaults: fewer negatives and fillers → ~35 s of speech per report instead of ~50.
    negation_share: tuple[float, float] = (0.15, 0.45)
    max_fillers: int = 1


def assign_splits(config: BuildConfig) -> list[tuple[str, int]]:
    """(split, patient number) per volume index: a seeded shuffle, then the requested fractions."""
    order = np.random.default_rng([config.seed, 1]).permutation(config.num_volumes)
    n_valid = round(config.num_volumes * config.valid_fraction)
    n_test = round(config.num_volumes * config.test_fraction)
    splits = [""] * config.num_volumes
    counters = dict.fromkeys(ctrate.SPLITS, 0)
    for rank, index in enumerate(order):
        splits[index] = "valid" if rank < n_valid else "test" if rank < n_valid + n_test else "train"
    assigned = []
    for split in splits:
        counters[split] += 1
        assigned.append((split, counters[split]))
    return assigned


def build_volume(args: tuple[BuildConfig, int, str, int]) -> dict[str, Any]:
    """Generate volume `index` (and its report) from `(seed, index)` alone; write the NIfTI unless present."""
    from .phantom import generate_case
    from .reports import write_report

    config, index, split, patient = args
    rng = np.random.default_rng([config.seed, 0, index])
    case = generate_case(rng, shape=config.shape)
    findings, impressions = write_report(case.findings, rng, config.negation_share, config.max_fillers)
    axcodes = ORIENTATIONS[int(rng.integers(len(ORIENTATIONS)))]
    name = ctrate.volume_name(split, patient)
    path = ctrate.volume_path(config.out, name)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".nii.gz", delete=False) as tmp:
            pass
        write_nifti(case.volume, case.spacing, tmp.name, axcodes)
        os.replace(tmp.name, path)
    return {
        "split": split,
        "name": name,
        "findings": findings,
        "impressions": impressions,
        "labels": [case.labels[label] for label in CT_RATE_LABELS],
        "spacing": case.spacing,
    }


def write_tables(root: Path, rows: list[dict[str, Any]]) -> None:
    """Reports, labels and metadata CSVs per split, with CT-RATE's file and column names."""
    for split in ctrate.SPLITS:
        part = [r for r in rows if r["split"] == split]
        ctrate.write_csv_atomic(
            ctrate.reports_csv(root, split),
            ctrate.REPORT_COLUMNS,
            [(r["name"], ctrate.NOT_GIVEN, "Non-contrast chest CT.", r["findings"], r["impressions"]) for r in part],
        )
        ctrate.write_csv_atomic(
            ctrate.labels_csv(root, split), ("VolumeName", *CT_RATE_LABELS), [(r["name"], *r["labels"]) for r in part]
        )
        ctrate.write_csv_atomic(
            ctrate.metadata_csv(root, split),
            ctrate.METADATA_COLUMNS,
            [
                (r["name"], 1, 0, f"[{r['spacing'][1]:.4f}, {r['spacing'][2]:.4f}]", f"{r['spacing'][0]:.4f}")
                for r in part
            ],
        )


def spoken_text(row: dict[str, Any]) -> str:
    """What the benchmark speaks for a report: its findings as written (the engines apply `tts_engines.speakable`). One
    function, so an evaluation that re-speaks a report (`voice_robustness`) says exactly what the build said; it
    takes a build row or a `ctrate.load_ct_rate` row (both carry `findings`)."""
    return row["findings"]


def speech_manifest_path(root: Path) -> Path:
    """The benchmark's speech manifest: beside the split folders, its `wav` column relative to `root/dataset`."""
    from .speech_manifest import MANIFEST_NAME

    return Path(root) / "dataset" / MANIFEST_NAME


def plan_benchmark_speech(texts_and_paths: list[tuple[str, Path]], backends, seed: int) -> list:
    """The benchmark's speech plan (`tts.plan_speech`), refusing held-out engines (`tts_engines.HELD_OUT_ENGINES`): the
    benchmark's speech is training data, so an engine kept for evaluation must never be heard in it."""
    from .tts import plan_speech
    from .tts_engines import require_training_engines

    backends = list(backends)
    require_training_engines(backends, "benchmark_build.plan_benchmark_speech")
    return plan_speech(texts_and_paths, backends, seed=seed)


def build_benchmark(config: BuildConfig, progress: bool = True) -> dict[str, Any]:
    """Volumes and reports (process pool), tables, then speech (thread pool around the TTS engines)."""
    from tqdm.auto import tqdm

    config.out.mkdir(parents=True, exist_ok=True)
    jobs = [(config, i, split, patient) for i, (split, patient) in enumerate(assign_splits(config))]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=config.workers) as pool:
        rows = list(
            tqdm(pool.map(build_volume, jobs, chunksize=8), total=len(jobs), desc="volumes", disable=not progress)
        )
    volume_seconds = time.perf_counter() - start
    write_tables(config.out, rows)
    stats: dict[str, Any] = {"volumes": len(rows), "volume_seconds": volume_seconds}
    if config.speech:
        from .tts import synthesize_all

        plan = benchmark_speech_plan(config, rows)
        stats["speech"] = synthesize_all(plan, workers=config.workers, progress=progress)
        stats["speech_manifest"] = str(write_benchmark_manifest(config, rows, plan))
    return stats


def spoken_rows(config: BuildConfig, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """(row, voice) for every recording, in speech-plan order: every row in its primary voice 0, then the training
    rows once per extra voice k ≥ 1."""
    train = [r for r in rows if r["split"] == "train"]
    return [(r, 0) for r in rows] + [(r, k) for k in range(1, config.extra_train_voices + 1) for r in train]


def benchmark_speech_plan(config: BuildConfig, rows: list[dict[str, Any]]) -> list:
    """The seeded speech plan of `spoken_rows` (rows in volume-index order, as `build_volume` returns them). Voice 0
    is planned with the build's seed, extra voice k with seed `seed · 1000 + k`, so adding extra voices changes no
    primary recording."""
    spoken = spoken_rows(config, rows)
    plan = []
    for k in range(config.extra_train_voices + 1):
        texts = [(spoken_text(r), ctrate.speech_voice_path(config.out, r["name"], v)) for r, v in spoken if v == k]
        plan += plan_benchmark_speech(
            texts, config.tts_backends, seed=config.seed if k == 0 else config.seed * 1_000 + k
        )
    return plan


def write_benchmark_manifest(config: BuildConfig, rows: list[dict[str, Any]], plan: list) -> Path:
    """`speech_manifest.csv` for the build's spoken reports (one row per recording), written atomically."""
    from .speech_manifest import manifest_rows, write_speech_manifest

    path = speech_manifest_path(config.out)
    spoken = [row for row, _ in spoken_rows(config, rows)]
    entries = manifest_rows(plan, path.parent, [r["name"] for r in spoken], [r["split"] for r in spoken])
    return write_speech_manifest(path, entries)


def rows_from_tables(config: BuildConfig) -> list[dict[str, Any]]:
    """The build's rows (split, name, findings) read back from its report tables, in volume-index order: what
    `build_volume` returned, without regenerating any volume. ValueError when the tables are not this config's."""
    import csv

    findings: dict[str, str] = {}
    for split in ctrate.SPLITS:
        path = ctrate.reports_csv(config.out, split)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {config.out} is not a built benchmark.")
        with open(path, newline="", encoding="utf-8") as f:
            findings.update({r["VolumeName"]: r["Findings_EN"] for r in csv.DictReader(f)})
    names = [(split, ctrate.volume_name(split, patient)) for split, patient in assign_splits(config)]
    missing = [name for _, name in names if name not in findings]
    if missing or len(findings) != len(names):
        raise ValueError(
            f"{config.out}'s tables hold {len(findings)} reports, not the {len(names)} this config builds "
            f"(e.g. {missing[:2]} missing): pass the build's own num_volumes, fractions and seed."
        )
    return [{"split": split, "name": name, "findings": findings[name]} for split, name in names]


def rebuild_speech_manifest(config: BuildConfig, verify: int = 4) -> Path:
    """Write the speech manifest of a benchmark built before builds wrote one, from its tables and seeded plan,
    after checking the plan: every wav must exist and `verify` of them (a seeded sample) must be reproduced byte
    for byte by re-speaking them with the planned engine, voice, rate and pitch (the engines are deterministic)."""
    from .tts_engines import get_backend

    rows = rows_from_tables(config)
    plan = benchmark_speech_plan(config, rows)
    absent = [job.path for job in plan if not Path(job.path).is_file()]
    if absent:
        raise FileNotFoundError(f"{len(absent)} planned wavs are missing, e.g. {absent[0]}: finish the build first.")
    sample = np.random.default_rng([config.seed, 3]).permutation(len(plan))[:verify]
    with tempfile.TemporaryDirectory() as scratch:
        for index in sample:
            job = plan[int(index)]
            again = Path(scratch) / f"{index}.wav"
            get_backend(job.backend).synthesize(job.text, again, job.voice, job.rate, job.pitch)
            if again.read_bytes() != Path(job.path).read_bytes():
                raise ValueError(
                    f"{job.path} is not what the reconstructed plan says ({job.backend}, {job.voice}, rate "
                    f"{job.rate}, pitch {job.pitch}): the build used other settings; no manifest written."
                )
    return write_benchmark_manifest(config, rows, plan)
