"""Coswara (IISc) → AcuLa manifest.

Layout assumed (the extracted `Extracted_data` of iiscleap/Coswara-Data, from its README; not re-checked):
`<date>/<user id>/<sound>.wav` for the nine sounds in `SOUNDS`, and `combined_data.csv` with `id`, `a` (age), `g`
(gender), `covid_status` (healthy, positive_mild/moderate/asymp, others), `smoker`, `asthma` and symptom flags
(`cough`, `fever`, …; 'True'/'False' or empty). Label: any `positive_*` = 1, `healthy` = 0, other statuses unlabelled.
A user listed in the CSV without a folder is skipped (not every user is in every extraction); a user folder that
exists but lacks a sound is skipped for that sound; a folder with none of the nine is an error (broken
extraction). No official split: `split_patients` on user ids.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .manifest import ProbeTask, Recording, inside, split_patients
from .report_template import ReportTemplate

DATASET = "coswara"
CSV = "combined_data.csv"
SOUNDS = ("cough-heavy", "cough-shallow", "breathing-deep", "breathing-shallow", "counting-normal", "counting-fast",
          "vowel-a", "vowel-e", "vowel-o")  # fmt: skip
SYMPTOMS = ("cough", "fever", "cold", "diarrhoea", "st", "loss_of_smell", "mp", "ftg", "bd")
EXCLUDED = ["covid_status", "test_status"]
TEMPLATE = ReportTemplate(
    dataset=DATASET,
    opening="Crowd-sourced respiratory sound recording.",
    sentences=(("sound", "Sound type: {value}."), ("age", "The participant is {value} years old."),
               ("gender", "Gender: {value}."), ("smoker", "Smoker: {value}."), ("asthma", "Asthma: {value}."),
               ("symptoms", "Reported symptoms: {value}."), ("covid_status", "COVID status: {value}.")),
)  # fmt: skip


def read_coswara(root: Path, seed: int = 0) -> tuple[list[Recording], list[ProbeTask], list[str]]:
    """Every `<date>/<id>/<sound>.wav` of a CSV user; a CSV user's folder found twice is an error (ambiguous)."""
    root = Path(root)
    path = root / CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (Coswara layout, see data.auscultation.coswara).")
    folders: dict[str, Path] = {}
    for d in sorted(p for p in root.glob("*/*") if p.is_dir()):
        if d.name in folders:
            raise ValueError(f"{root}: user {d.name} has two folders ({folders[d.name]}, {d}).")
        folders[d.name] = d
    with path.open(newline="", encoding="utf-8") as f:
        rows = [(n, r) for n, r in enumerate(csv.DictReader(f), start=2) if r["id"].strip() in folders]
    splits = split_patients([r["id"].strip() for _, r in rows], seed)
    recordings = []
    for line, row in rows:
        user = row["id"].strip()
        status = row.get("covid_status", "").strip()
        base = {"age": row.get("a", "").strip(), "gender": row.get("g", "").strip(),
                "smoker": row.get("smoker", "").strip(), "asthma": row.get("asthma", "").strip(),
                "covid_status": status, "test_status": row.get("test_status", "").strip(),
                "symptoms": ", ".join(s for s in SYMPTOMS if row.get(s, "").strip() == "True")}  # fmt: skip
        labels = {"covid": 1} if status.startswith("positive") else {"covid": 0} if status == "healthy" else {}
        found = 0
        for sound in SOUNDS:
            relative = folders[user].relative_to(root) / f"{sound}.wav"
            wav = inside(root, str(relative), f"{path}:{line}")
            if wav.is_file():
                found += 1
                meta = {k: v for k, v in {**base, "sound": sound}.items() if v}
                recordings.append(Recording(wav, user, splits[user], DATASET, meta, dict(labels)))
        if not found:
            raise FileNotFoundError(f"{path}:{line}: {folders[user] / (SOUNDS[0] + '.wav')} is missing (no sound of "
                                    f"user {user} in {folders[user]}).")  # fmt: skip
    tasks = [ProbeTask("coswara_covid", "covid", "COVID-19 positive (vs healthy)", "acoustics")]
    return recordings, tasks, list(EXCLUDED)
