"""The spoken renditions a voice-robustness run compares, each report said three ways:

- `held_out`: by the held-out engine (`tts_engines.HELD_OUT_ENGINES`, Piper), which no training stage has heard;
- `training`: in the training voice the benchmark build gave it (its wav, named by the build's speech manifest), or
  re-spoken by the training engines when the build has no manifest listing those wavs;
- `training_2`: in a second training voice, from another training engine, so that two training voices can be
  compared with each other as the held-out voice is compared with a training voice.

Synthesised wavs are cached under `<output_dir>/speech/<kind>/` with a `speech_manifest.csv` each (who spoke what);
a rerun skips finished wavs, and a cached wav whose manifest row differs from the plan is spoken again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ctrate
from .benchmark_build import speech_manifest_path, spoken_text
from .speech_manifest import (
    MANIFEST_NAME,
    ManifestRow,
    manifest_rows,
    read_speech_manifest,
    refuse_held_out,
    write_speech_manifest,
)
from .tts import SpeechJob, plan_speech, synthesize_all
from .tts_engines import HELD_OUT_ENGINES, PITCH_RANGE, RATE_RANGE, get_backend

KINDS = ("held_out", "training", "training_2")


@dataclass(frozen=True)
class Rendition:
    """One way of saying the reports: wav paths (row order) and the manifest rows that say who spoke them."""

    kind: str
    paths: list[Path]
    rows: list[ManifestRow]
    source: str


def held_out_plan(texts_paths: list[tuple[str, Path]], engine: str, seed: int) -> list[SpeechJob]:
    """The held-out engine's plan (its voices, seeded rates as the benchmark draws them); refuses a training engine,
    which would make the comparison meaningless."""
    if get_backend(engine).name not in HELD_OUT_ENGINES:
        raise ValueError(f"held-out engine {engine!r} is not one of tts_engines.HELD_OUT_ENGINES {HELD_OUT_ENGINES}.")
    return plan_speech(texts_paths, [engine], seed)


def second_voice_plan(
    texts_paths: list[tuple[str, Path]], first: Sequence[tuple[str, str]], engines: Sequence[str], seed: int
) -> list[SpeechJob]:
    """For each report, a training voice other than its first one `(backend, voice)`: another engine when there is
    one (as the held-out voice is another engine), always another voice; rate and pitch drawn as the build does."""
    rng = np.random.default_rng([seed, 2])
    names = [get_backend(e).name for e in engines]
    jobs = []
    for (text, path), (backend, voice) in zip(texts_paths, first, strict=True):
        others = [e for e in names if e != backend] or names
        engine = others[int(rng.integers(len(others)))]
        voices = [v for v in get_backend(engine).voices() if v != voice]
        chosen = voices[int(rng.integers(len(voices)))]
        rate, pitch = (round(float(rng.uniform(*bounds)), 3) for bounds in (RATE_RANGE, PITCH_RANGE))
        jobs.append(SpeechJob(text, Path(path), engine, chosen, rate, pitch))
    return jobs


def synthesize_cached(
    jobs: list[SpeechJob], folder: Path, names: list[str], split: str, workers: int, progress: bool
) -> list[ManifestRow]:
    """Speak the jobs into `folder`, resumably. The manifest is written first (atomically), as the plan: a wav is
    written atomically too, so a finished wav that its manifest row matches was spoken by that row's voice, even
    after an interrupted run. Cached wavs whose row differs (another seed or engine) or is missing are spoken again."""
    manifest = folder / MANIFEST_NAME
    rows = manifest_rows(jobs, folder, names, [split] * len(jobs))
    old = {row.wav: row for row in read_speech_manifest(manifest)} if manifest.is_file() else {}
    for job, row in zip(jobs, rows, strict=True):
        if old.get(row.wav) != row:
            Path(job.path).unlink(missing_ok=True)
    write_speech_manifest(manifest, rows)
    synthesize_all(jobs, workers=workers, progress=progress, desc=f"speech ({folder.name})")
    return rows


def build_wavs(data_dir: Path, rows: list[dict]) -> Rendition | None:
    """The build's own wavs of `rows` with their manifest rows, or None when the build's manifest is missing or
    does not list them all. A build manifest naming a held-out engine is refused: that benchmark is broken."""
    path = speech_manifest_path(data_dir)
    if not path.is_file():
        return None
    listed = read_speech_manifest(path)
    refuse_held_out(listed, "voice_renditions.build_wavs (the benchmark's training voices)", path)
    by_wav = {(path.parent / row.wav).resolve(): row for row in listed}
    wavs = [Path(r["speech"]) if r.get("speech") else ctrate.speech_path(data_dir, r["volume_name"]) for r in rows]
    found = [by_wav.get(wav.resolve()) for wav in wavs]
    if any(row is None for row in found) or not all(wav.is_file() for wav in wavs):
        return None
    return Rendition("training", wavs, found, f"benchmark build ({path})")  # type: ignore[arg-type]


def make_renditions(
    rows: list[dict],
    data_dir: Path,
    out: Path,
    split: str,
    held_out_engine: str,
    training_engines: Sequence[str],
    seed: int,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, Rendition]:
    """The three renditions of `rows` (`ctrate.load_ct_rate` rows), synthesising (or reusing) what is needed."""
    from .tts_engines import require_training_engines

    require_training_engines(training_engines, "voice_renditions.make_renditions (training voices)")
    names = [r["volume_name"] for r in rows]
    texts = [spoken_text(r) for r in rows]

    def targets(kind: str) -> list[tuple[str, Path]]:
        folder = out / "speech" / kind
        return [(t, folder / f"{n.removesuffix('.nii.gz')}.wav") for t, n in zip(texts, names, strict=True)]

    def speak(kind: str, jobs: list[SpeechJob]) -> Rendition:
        made = synthesize_cached(jobs, out / "speech" / kind, names, split, workers, progress)
        return Rendition(kind, [Path(j.path) for j in jobs], made, f"synthesised into {out / 'speech' / kind}")

    result = {"held_out": speak("held_out", held_out_plan(targets("held_out"), held_out_engine, seed))}
    training = build_wavs(data_dir, rows)
    if training is None:
        training = speak("training", plan_speech(targets("training"), list(training_engines), seed))
    result["training"] = training
    first = [(row.backend, row.voice) for row in training.rows]
    result["training_2"] = speak("training_2", second_voice_plan(targets("training_2"), first, training_engines, seed))
    return result
