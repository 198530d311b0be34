"""The one manifest every AcuLa dataset is read through: real datasets' adapters write it, the embedded benchmark
is built in it.

    <root>/acula_manifest.csv   recording,patient,split,dataset,meta:<field>…,label:<task>…
    <root>/acula_tasks.json     {"tasks": [{"name", "label", "positive", "depends_on", "description"}, …],
                                 "excluded_fields": [...]}   (fields that must never reach a report)
    <root>/acula_reports.csv    recording,report            (written once by `reports.write_reports`)

`recording` is a path relative to the root (it may not leave it); `patient` groups a subject's recordings — one
patient never spans two splits (`check_patient_splits`); `meta:` columns are the structured metadata a report is
rendered from, `label:` columns the evaluation targets (an empty cell: unknown for that recording). A manifest that
names a missing file, a row without patient or split, or a patient in two splits is refused with the file and line.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST = "acula_manifest.csv"
TASKS = "acula_tasks.json"
REPORTS = "acula_reports.csv"
SPLITS = ("train", "valid", "test")
DEPENDS_ON = ("metadata", "acoustics")
META, LABEL = "meta:", "label:"


@dataclass(frozen=True)
class Recording:
    """One recording: its file, patient, split, source dataset, metadata (text values) and labels (task → 0/1)."""

    path: Path
    patient: str
    split: str
    dataset: str
    metadata: dict[str, str] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeTask:
    """A binary linear-probe task: `label` is the manifest's `label:<label>` column, `positive` names class 1, and
    `depends_on` says whether the target follows the metadata that reports describe or the acoustics only."""

    name: str
    label: str
    positive: str
    depends_on: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.depends_on not in DEPENDS_ON:
            raise ValueError(f"task {self.name!r}: depends_on={self.depends_on!r} is not one of {DEPENDS_ON}.")


def inside(root: Path, relative: str, where: str) -> Path:
    """`root / relative`, refused when it resolves outside `root` (a manifest cannot point elsewhere)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{where}: {relative!r} points outside the dataset root {root}.")
    return path


def check_patient_splits(recordings: Iterable[Recording], where: str) -> None:
    """ValueError naming the first patient whose recordings fall in more than one split."""
    seen: dict[tuple[str, str], str] = {}
    for r in recordings:
        key = (r.dataset, r.patient)
        if seen.setdefault(key, r.split) != r.split:
            raise ValueError(
                f"{where}: patient {r.patient!r} of {r.dataset} is in both {seen[key]!r} and {r.split!r}; one patient "
                "must stay within one split."
            )


def write_manifest(root: str | os.PathLike, recordings: Sequence[Recording], tasks: Sequence[ProbeTask],
                   excluded_fields: Sequence[str]) -> Path:  # fmt: skip
    """Write the manifest and task file atomically (patients checked first)."""
    root = Path(root)
    check_patient_splits(recordings, str(root / MANIFEST))
    meta = sorted({k for r in recordings for k in r.metadata})
    labels = sorted({k for r in recordings for k in r.labels})
    header = ["recording", "patient", "split", "dataset", *(META + m for m in meta), *(LABEL + t for t in labels)]
    tmp = root / (MANIFEST + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in recordings:
            relative = Path(r.path).resolve().relative_to(root.resolve()) if Path(r.path).is_absolute() else r.path
            writer.writerow([str(relative), r.patient, r.split, r.dataset,
                             *(r.metadata.get(m, "") for m in meta),
                             *("" if r.labels.get(t) is None else int(r.labels[t]) for t in labels)])  # fmt: skip
    tmp.replace(root / MANIFEST)
    payload = {"tasks": [asdict(t) for t in tasks], "excluded_fields": list(excluded_fields)}
    tmp = root / (TASKS + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    tmp.replace(root / TASKS)
    return root / MANIFEST


def read_manifest(root: str | os.PathLike, split: str | None = None) -> list[Recording]:
    """The manifest's recordings (of one split, or all), files checked, patients checked across all splits."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not an AcuLa dataset folder (see data.auscultation.manifest).")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}.")
    recordings = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"recording", "patient", "split", "dataset"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: columns {sorted(missing)} are missing.")
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            if not row["patient"] or row["split"] not in SPLITS:
                raise ValueError(f"{where}: needs a patient and a split in {SPLITS} (got {row['patient']!r}, "
                                 f"{row['split']!r}).")  # fmt: skip
            wav = inside(root, row["recording"], where)
            if not wav.is_file():
                raise FileNotFoundError(f"{where}: {wav} is missing.")
            labels = {}
            for k, v in row.items():
                if k.startswith(LABEL) and v != "":
                    if v not in ("0", "1"):
                        raise ValueError(f"{where}: {k} is {v!r}; labels are 0, 1 or empty.")
                    labels[k[len(LABEL) :]] = int(v)
            metadata = {k[len(META) :]: v for k, v in row.items() if k.startswith(META) and v != ""}
            recordings.append(Recording(wav, row["patient"], row["split"], row["dataset"], metadata, labels))
    check_patient_splits(recordings, str(path))
    return [r for r in recordings if split is None or r.split == split]


def read_tasks(root: str | os.PathLike) -> tuple[list[ProbeTask], list[str]]:
    """The probe tasks and the excluded fields of a dataset folder."""
    path = Path(root) / TASKS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not an AcuLa dataset folder (see data.auscultation.manifest).")
    payload = json.loads(path.read_text(encoding="utf-8"))
    return [ProbeTask(**t) for t in payload["tasks"]], list(payload["excluded_fields"])


def split_patients(patients: Sequence[str], seed: int, fractions: tuple[float, float] = (0.7, 0.1)) -> dict[str, str]:
    """patient → split, drawn per patient (train / valid fractions, the rest test): what adapters of datasets that
    ship no official split use, seeded."""
    import numpy as np

    unique = sorted(set(patients))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_train = round(fractions[0] * len(unique))
    n_valid = round(fractions[1] * len(unique))
    splits = {}
    for rank, index in enumerate(order):
        splits[unique[index]] = "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
    return splits
