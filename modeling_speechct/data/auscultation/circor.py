"""CirCor DigiScope (PhysioNet/CinC 2022) → AcuLa manifest.

Layout assumed (PhysioNet 'circor-heart-sound' 1.0.x, from the challenge description; not re-checked against a
mirror): `training_data.csv` (columns `Patient ID`, `Recording locations:` joined by '+', `Age`, `Sex`, `Height`,
`Weight`, `Pregnancy status`, `Murmur` Present/Absent/Unknown, …, `Outcome` Normal/Abnormal) and
`training_data/<patient>_<AV|PV|TV|MV|Phc>[_<n>].wav`. A location listed twice is numbered `_1`, `_2`. The CSV is
read instead of the `.txt` headers (same fields). No official public test split: patients are split with
`split_patients`. 'Unknown' murmur stays unlabelled.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from .manifest import ProbeTask, Recording, inside, split_patients
from .report_template import ReportTemplate

DATASET = "circor"
CSV = "training_data.csv"
AUDIO = "training_data"
EXCLUDED = ["murmur", "outcome", "murmur_locations"]
TEMPLATE = ReportTemplate(
    dataset=DATASET,
    opening="Paediatric heart-sound recording.",
    sentences=(("age", "Age group: {value}."), ("sex", "Sex: {value}."), ("height", "Height {value} cm."),
               ("weight", "Weight {value} kg."), ("pregnancy", "Pregnant: {value}."),
               ("location", "Auscultation site {value}."), ("murmur", "Murmur: {value}."),
               ("outcome", "Outcome: {value}.")),
)  # fmt: skip


def _clean(v: str | None) -> str:
    return "" if v is None or v.strip() in ("", "nan", "NaN") else v.strip()


def read_circor(root: Path, seed: int = 0) -> tuple[list[Recording], list[ProbeTask], list[str]]:
    """One recording per listed location (a listed but missing wav is an error naming the CSV line)."""
    root = Path(root)
    path = root / CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (CirCor layout, see data.auscultation.circor).")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(enumerate(csv.DictReader(f), start=2))
    splits = split_patients([r["Patient ID"] for _, r in rows], seed)
    recordings = []
    for line, row in rows:
        where = f"{path}:{line}"
        patient = row["Patient ID"].strip()
        base = {"age": _clean(row.get("Age")), "sex": _clean(row.get("Sex")), "height": _clean(row.get("Height")),
                "weight": _clean(row.get("Weight")), "pregnancy": _clean(row.get("Pregnancy status")),
                "murmur": _clean(row.get("Murmur")), "outcome": _clean(row.get("Outcome")),
                "murmur_locations": _clean(row.get("Murmur locations"))}  # fmt: skip
        labels = {}
        if base["murmur"] in ("Present", "Absent"):
            labels["murmur"] = int(base["murmur"] == "Present")
        if base["outcome"] in ("Normal", "Abnormal"):
            labels["abnormal_outcome"] = int(base["outcome"] == "Abnormal")
        locations = [x for x in _clean(row.get("Recording locations:", row.get("Recording locations"))).split("+") if x]
        counts, seen = Counter(locations), Counter()
        for loc in locations:
            seen[loc] += 1
            stem = f"{patient}_{loc}" + (f"_{seen[loc]}" if counts[loc] > 1 else "")
            wav = inside(root, f"{AUDIO}/{stem}.wav", where)
            if not wav.is_file():
                raise FileNotFoundError(f"{where}: {wav} is missing.")
            meta = {k: v for k, v in {**base, "location": loc}.items() if v}
            recordings.append(Recording(wav, patient, splits[patient], DATASET, meta, dict(labels)))
    tasks = [
        ProbeTask("circor_murmur", "murmur", "murmur present (vs absent)", "acoustics"),
        ProbeTask("circor_outcome", "abnormal_outcome", "abnormal clinical outcome", "acoustics"),
    ]
    return recordings, tasks, list(EXCLUDED)
