"""KAUH lung sounds (Fraiwan et al., Mendeley Data jwyy9np4gv) → AcuLa manifest.

Layout assumed (from the dataset description; not re-checked): `Audio Files/<BP|EP|DP><n>_<diagnosis>,<sound
type>,<location>,<age>,<gender>.wav`, where the prefix is the filter (Bell, Extended, Diaphragm) and `<n>` the
subject, so one subject's three filtered copies share `<n>`. Metadata is read from the names, not from
`Data annotation.xlsx` (no openpyxl); the xlsx is not needed. Diagnosis spellings vary ('asthma', 'Asthma', 'N',
'copd'); they are lower-cased, 'n' read as 'normal'. Names that do not parse are an error naming the file.
No official split: `split_patients` on the subject number.
"""

from __future__ import annotations

import re
from pathlib import Path

from .manifest import ProbeTask, Recording, split_patients
from .report_template import ReportTemplate

DATASET = "kauh"
AUDIO = "Audio Files"
NAME = re.compile(r"^(BP|EP|DP)(\d+)_([^,]+),([^,]*),([^,]*),([^,]*),([^,]*)$", re.IGNORECASE)
FILTERS = {"bp": "bell", "ep": "extended", "dp": "diaphragm"}
EXCLUDED = ["diagnosis", "sound_type"]
TEMPLATE = ReportTemplate(
    dataset=DATASET,
    opening="Lung auscultation recording (electronic stethoscope).",
    sentences=(("age", "The patient is {value} years old."), ("gender", "Gender: {value}."),
               ("location", "Recorded at {value}."), ("filter", "Stethoscope filter: {value}."),
               ("sound_type", "Sound type: {value}."), ("diagnosis", "Diagnosis: {value}.")),
)  # fmt: skip


def read_kauh(root: Path, seed: int = 0) -> tuple[list[Recording], list[ProbeTask], list[str]]:
    """Every wav of `Audio Files`, metadata from its name; an empty or absent folder is an error."""
    root = Path(root)
    audio = root / AUDIO
    wavs = sorted(p for p in audio.glob("*") if p.suffix.lower() == ".wav") if audio.is_dir() else []
    if not wavs:
        raise FileNotFoundError(f"{audio} is missing or has no .wav (KAUH layout, see data.auscultation.kauh).")
    parsed = []
    for wav in wavs:
        m = NAME.match(wav.stem.strip())
        if m is None:
            raise ValueError(f"{wav}: name is not <BP|EP|DP><n>_<diagnosis>,<sound>,<location>,<age>,<gender>.")
        prefix, n, diagnosis, sound, location, age, gender = (g.strip() for g in m.groups())
        diagnosis = diagnosis.lower()
        diagnosis = "normal" if diagnosis == "n" else diagnosis
        meta = {"filter": FILTERS[prefix.lower()], "diagnosis": diagnosis, "sound_type": sound,
                "location": location, "age": age, "gender": gender}  # fmt: skip
        parsed.append((f"P{int(n)}", wav, {k: v for k, v in meta.items() if v}))
    splits = split_patients([p for p, _, _ in parsed], seed)
    recordings = []
    for patient, wav, meta in parsed:
        labels = {}
        if meta["diagnosis"] in ("asthma", "normal"):
            labels["asthma"] = int(meta["diagnosis"] == "asthma")
        if meta["diagnosis"] in ("copd", "normal"):
            labels["copd"] = int(meta["diagnosis"] == "copd")
        labels["abnormal"] = int(meta["diagnosis"] != "normal")
        recordings.append(Recording(wav, patient, splits[patient], DATASET, meta, labels))
    tasks = [
        ProbeTask("kauh_asthma", "asthma", "asthma (vs normal)", "acoustics"),
        ProbeTask("kauh_copd", "copd", "COPD (vs normal)", "acoustics"),
        ProbeTask("kauh_abnormal", "abnormal", "any diagnosis (vs normal)", "acoustics"),
    ]
    return recordings, tasks, list(EXCLUDED)
