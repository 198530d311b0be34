"""Which engine, voice, rate and pitch spoke each wav: `speech_manifest.csv`, written next to the speech.

Why: a wav does not say which engine made it, yet the held-out engines (`tts_engines.HELD_OUT_ENGINES`) must never
be heard in training. The manifest is that provenance on disk, so a training loader can refuse held-out speech
(`check_training_speech`) and an evaluation can name the voices it compares.

One row per wav, columns `MANIFEST_COLUMNS`; `wav` is relative to the manifest's own folder (the CT-RATE layout's
`dataset/` folder for the benchmark, the corpus folder for the speech-tower pretraining corpus), so a moved tree
stays valid. Written atomically after the speech is complete, so every row names a finished wav.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

from .ctrate import write_csv_atomic
from .tts import SpeechJob
from .tts_engines import HELD_OUT_ENGINES, get_backend, require_training_engines

MANIFEST_NAME = "speech_manifest.csv"
MANIFEST_COLUMNS = ("name", "split", "wav", "backend", "voice", "rate", "pitch")
# A wav's manifest is looked for this many folders up (the CT-RATE tree puts a wav four below `dataset/`).
SEARCH_DEPTH = 4

__all__ = [
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "ManifestRow",
    "check_training_speech",
    "find_manifest",
    "held_out_voices",
    "manifest_rows",
    "read_speech_manifest",
    "refuse_held_out",
    "write_speech_manifest",
]


@dataclass(frozen=True)
class ManifestRow:
    """One spoken wav: what it is (`name`, `split`), where (`wav`, relative to the manifest) and who spoke it."""

    name: str
    split: str
    wav: str
    backend: str
    voice: str
    rate: float
    pitch: float


def manifest_rows(
    jobs: Sequence[SpeechJob], folder: str | os.PathLike, names: Sequence[str], splits: Sequence[str]
) -> list[ManifestRow]:
    """Manifest rows of speech `jobs` (as planned by `tts.plan_speech`) whose wavs lie under `folder`."""
    if not len(jobs) == len(names) == len(splits):
        raise ValueError(f"manifest_rows: {len(jobs)} jobs, {len(names)} names and {len(splits)} splits differ.")
    base = Path(folder).resolve()
    rows = []
    for job, name, split in zip(jobs, names, splits, strict=True):
        path = Path(job.path).resolve()
        if not path.is_relative_to(base):
            raise ValueError(f"manifest_rows: wav {job.path} of {name!r} is not under the manifest folder {folder}.")
        rows.append(
            ManifestRow(name, split, path.relative_to(base).as_posix(), job.backend, job.voice, job.rate, job.pitch)
        )
    return rows


def write_speech_manifest(path: str | os.PathLike, rows: Iterable[ManifestRow]) -> Path:
    """`rows` as CSV at `path`, atomically (a reader never sees half a manifest)."""
    path = Path(path)
    write_csv_atomic(path, MANIFEST_COLUMNS, [astuple(row) for row in rows])
    return path


def read_speech_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """The rows of a manifest; FileNotFoundError / ValueError naming the file (and line) when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"speech manifest {path} is missing.")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"speech manifest {path} lacks columns {missing} (has {reader.fieldnames}).")
        rows = []
        for line, raw in enumerate(reader, start=2):
            try:
                rate, pitch = float(raw["rate"]), float(raw["pitch"])
            except (TypeError, ValueError) as err:
                raise ValueError(f"speech manifest {path} line {line}: rate/pitch are not numbers ({err}).") from err
            fields = [raw[c] or "" for c in MANIFEST_COLUMNS[:5]]
            if not all(fields):
                raise ValueError(f"speech manifest {path} line {line}: empty field in {dict(raw)}.")
            rows.append(ManifestRow(*fields, rate, pitch))
    return rows


def held_out_voices() -> set[str]:
    """Every voice of a held-out engine: a row naming one is held-out speech whatever its backend column says."""
    return {voice for engine in HELD_OUT_ENGINES for voice in get_backend(engine).voices()}


def _refuse_row(row: ManifestRow, line: int, manifest: str | os.PathLike, where: str, voices: set[str]) -> None:
    context = f"{where}: {manifest} line {line} (name {row.name!r}, split {row.split!r}, wav {row.wav!r})"
    require_training_engines([row.backend], context)
    if row.voice in voices:
        raise ValueError(f"{context}: voice {row.voice!r} belongs to a held-out engine {HELD_OUT_ENGINES}.")


def refuse_held_out(rows: Iterable[ManifestRow], where: str, manifest: str | os.PathLike) -> None:
    """ValueError naming `where`, the manifest and the row when any row was spoken by a held-out engine or voice."""
    voices = held_out_voices()
    for line, row in enumerate(rows, start=2):
        _refuse_row(row, line, manifest, where, voices)


def find_manifest(wav: str | os.PathLike) -> Path | None:
    """The nearest `speech_manifest.csv` in the wav's folder or up to `SEARCH_DEPTH` folders above it."""
    folder = Path(wav).resolve().parent
    for candidate in [folder, *folder.parents][: SEARCH_DEPTH + 1]:
        if (candidate / MANIFEST_NAME).is_file():
            return candidate / MANIFEST_NAME
    return None


def check_training_speech(wavs: Iterable[str | os.PathLike], where: str) -> int:
    """Refuse speech a training stage must not hear: every wav with a manifest above it must be listed there, and
    by a training engine. Wavs without a manifest (e.g. a downloaded Speech-RATE) pass unchecked, since nothing
    records their provenance. Returns how many wavs were checked against a manifest."""
    by_folder: dict[Path, Path | None] = {}
    tables: dict[Path, dict[str, tuple[int, ManifestRow]]] = {}
    voices, checked = held_out_voices(), 0
    for wav in wavs:
        folder = Path(wav).resolve().parent
        if folder not in by_folder:
            by_folder[folder] = find_manifest(wav)
        manifest = by_folder[folder]
        if manifest is None:
            continue
        if manifest not in tables:
            rows = read_speech_manifest(manifest)
            tables[manifest] = {
                (manifest.parent / row.wav).resolve().as_posix(): (line, row) for line, row in enumerate(rows, 2)
            }
        entry = tables[manifest].get(Path(wav).resolve().as_posix())
        if entry is None:
            raise ValueError(
                f"{where}: {wav} is not listed in the speech manifest {manifest}, so who spoke it is unknown; "
                "rebuild the speech (or its manifest) before training on it."
            )
        _refuse_row(entry[1], entry[0], manifest, where, voices)
        checked += 1
    return checked
