"""ICBHI 2017 Respiratory Sound Database → AcuLa manifest.

Layout assumed (the distributed zip, per the ICBHI 2017 challenge description; not re-checked against a mirror):
`ICBHI_final_database/<patient>_<rec index>_<location>_<acq mode>_<device>.wav` + `.txt` (start, end, crackles 0/1,
wheezes 0/1 per cycle), `ICBHI_Challenge_diagnosis.txt` (patient TAB diagnosis), `ICBHI_challenge_train_test.txt`
(stem TAB train/test, the official split), `ICBHI_Challenge_demographic_information.txt` (patient, age, sex, adult
BMI, child weight, child height; 'NA' = unknown; Kaggle's `demographic_info.txt` also accepted, checked against the
bhichallenge.med.auth.gr description). Valid is carved from the official train split by patient; a patient listed in
both official splits is refused by `check_patient_splits` when the manifest is written.
"""

from __future__ import annotations

from pathlib import Path

from .manifest import ProbeTask, Recording, inside, split_patients
from .report_template import ReportTemplate

DATASET = "icbhi"
AUDIO = "ICBHI_final_database"
DIAGNOSIS = "ICBHI_Challenge_diagnosis.txt"
SPLIT = "ICBHI_challenge_train_test.txt"
DEMOGRAPHICS = "ICBHI_Challenge_demographic_information.txt"
DEMOGRAPHICS_KAGGLE = "demographic_info.txt"  # the same six columns in the Kaggle mirror
EXCLUDED = ["diagnosis", "crackles", "wheezes"]
TEMPLATE = ReportTemplate(
    dataset=DATASET,
    opening="Lung auscultation recording.",
    sentences=(("age", "The patient is {value} years old."), ("sex", "Sex: {value}."),
               ("bmi", "Adult BMI {value}."), ("location", "Recorded at chest location {value}."),
               ("mode", "Acquisition mode {value}."), ("device", "Recorded with {value}."),
               ("diagnosis", "Diagnosis: {value}.")),
)  # fmt: skip


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (ICBHI layout, see data.auscultation.icbhi).")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]


def read_icbhi(root: Path, seed: int = 0) -> tuple[list[Recording], list[ProbeTask], list[str]]:
    """Recordings from the official split list (so a listed but missing wav or annotation is an error by line)."""
    root = Path(root)
    diagnosis = {f[0]: f[1] for _, f in _rows(root / DIAGNOSIS)}
    demo: dict[str, dict[str, str]] = {}
    found = [root / n for n in (DEMOGRAPHICS, DEMOGRAPHICS_KAGGLE) if (root / n).is_file()]
    if found:  # optional: reports then lack age/sex, labels are unaffected
        for _, f in _rows(found[0]):
            values = dict(zip(("age", "sex", "bmi", "child_weight", "child_height"), f[1:], strict=False))
            demo[f[0]] = {k: v for k, v in values.items() if v != "NA"}
    listed = _rows(root / SPLIT)
    train_patients = [f[0].split("_")[0] for _, f in listed if f[1] == "train"]
    carve = split_patients(train_patients, seed, fractions=(0.875, 0.125))
    recordings = []
    for line, f in listed:
        where = f"{root / SPLIT}:{line}"
        stem, official = f[0], f[1]
        if official not in ("train", "test"):
            raise ValueError(f"{where}: split {official!r} is not train/test.")
        parts = stem.split("_")
        if len(parts) != 5:
            raise ValueError(f"{where}: {stem!r} is not <patient>_<index>_<location>_<mode>_<device>.")
        patient = parts[0]
        wav = inside(root, f"{AUDIO}/{stem}.wav", where)
        txt = wav.with_suffix(".txt")
        for p in (wav, txt):
            if not p.is_file():
                raise FileNotFoundError(f"{where}: {p} is missing.")
        cycles = [c.split() for c in txt.read_text(encoding="utf-8").splitlines() if c.strip()]
        crackles = int(any(c[2] == "1" for c in cycles))
        wheezes = int(any(c[3] == "1" for c in cycles))
        if patient not in diagnosis:
            raise ValueError(f"{where}: patient {patient} has no line in {DIAGNOSIS}.")
        meta = {**demo.get(patient, {}), "location": parts[2], "mode": parts[3], "device": parts[4],
                "diagnosis": diagnosis[patient], "crackles": str(crackles), "wheezes": str(wheezes)}  # fmt: skip
        labels = {"crackles": crackles, "wheezes": wheezes}
        if diagnosis[patient] in ("COPD", "Healthy"):
            labels["copd"] = int(diagnosis[patient] == "COPD")
        split = "test" if official == "test" else carve[patient]
        recordings.append(Recording(wav, patient, split, DATASET, meta, labels))
    tasks = [
        ProbeTask("icbhi_crackles", "crackles", "crackles in any cycle", "acoustics"),
        ProbeTask("icbhi_wheezes", "wheezes", "wheezes in any cycle", "acoustics"),
        ProbeTask("icbhi_copd", "copd", "COPD (vs healthy)", "acoustics"),
    ]
    return recordings, tasks, list(EXCLUDED)
