"""COUGHVID (EPFL, Zenodo 4498364) → AcuLa manifest.

Layout assumed (the Zenodo `public_dataset` archive, from its README; not re-checked): `public_dataset/<uuid>.webm|
.ogg|.wav` and `metadata_compiled.csv` with `uuid`, `datetime`, `cough_detected` (0–1 classifier score), `age`,
`gender`, `respiratory_condition`, `fever_muscle_pain`, `status` (healthy / symptomatic / COVID-19 / empty) and
expert columns. Without the CSV the per-file `<uuid>.json` (same keys) is read. Only formats soundfile decodes
(wav/ogg/flac) are used: webm needs FFmpeg, so those uuids are skipped and counted in a logged warning. Rows with
`cough_detected` < 0.8 are dropped: the authors' classifier puts non-cough audio below it and their recommended
cut-off is 0.8. One uuid is one submission; no user id is published, so each uuid is its own patient (an assumption).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from .manifest import ProbeTask, Recording, inside, split_patients
from .report_template import ReportTemplate

DATASET = "coughvid"
AUDIO = "public_dataset"
CSV = "metadata_compiled.csv"
READABLE = (".wav", ".ogg", ".flac")
MIN_COUGH = 0.8
EXCLUDED = ["status"]
TEMPLATE = ReportTemplate(
    dataset=DATASET,
    opening="Crowd-sourced cough recording.",
    sentences=(("age", "The participant is {value} years old."), ("gender", "Gender: {value}."),
               ("respiratory_condition", "Respiratory condition: {value}."),
               ("fever_muscle_pain", "Fever or muscle pain: {value}."), ("status", "Status: {value}.")),
)  # fmt: skip
logger = logging.getLogger(__name__)


def _rows(root: Path) -> list[tuple[str, dict[str, str]]]:
    path = root / CSV
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as f:
            return [(f"{path}:{n}", r) for n, r in enumerate(csv.DictReader(f), start=2)]
    audio = root / AUDIO
    if not audio.is_dir():
        raise FileNotFoundError(f"{path} and {audio} are missing (COUGHVID layout, see data.auscultation.coughvid).")
    rows = []
    for j in sorted(audio.glob("*.json")):
        data = json.loads(j.read_text(encoding="utf-8"))
        rows.append((str(j), {"uuid": j.stem, **{k: str(v) for k, v in data.items()}}))
    return rows


def read_coughvid(root: Path, seed: int = 0) -> tuple[list[Recording], list[ProbeTask], list[str]]:
    """Cough-detected, soundfile-readable recordings; a row whose audio file is absent in every format is an error."""
    root = Path(root)
    kept, webm, low = [], 0, 0
    for where, row in _rows(root):
        uuid = row["uuid"].strip()
        try:
            score = float(row.get("cough_detected", "") or "nan")
        except ValueError as e:
            raise ValueError(f"{where}: cough_detected {row.get('cough_detected')!r} is not a number.") from e
        if not score >= MIN_COUGH:
            low += 1
            continue
        files = [inside(root, f"{AUDIO}/{uuid}{ext}", where) for ext in (*READABLE, ".webm")]
        audio = next((p for p in files if p.is_file()), None)
        if audio is None:
            raise FileNotFoundError(f"{where}: {root / AUDIO / uuid}.wav|.ogg|.flac|.webm is missing.")
        if audio.suffix == ".webm":
            webm += 1
            continue
        kept.append((uuid, audio, row))
    if low or webm:  # said once per read, not kept in module state (a second read would report the first's)
        logger.warning(
            f"coughvid: {low} rows below cough_detected {MIN_COUGH} dropped; {webm} webm files skipped "
            "(soundfile cannot decode webm; convert them to ogg/wav with FFmpeg to include them)."
        )
    splits = split_patients([u for u, _, _ in kept], seed)
    recordings = []
    for uuid, audio, row in kept:
        status = row.get("status", "").strip()
        meta = {k: row.get(k, "").strip() for k in ("age", "gender", "respiratory_condition", "fever_muscle_pain")}
        meta = {k: v for k, v in {**meta, "status": status}.items() if v and v != "nan"}
        labels = {"covid": 1} if status == "COVID-19" else {"covid": 0} if status == "healthy" else {}
        recordings.append(Recording(audio, uuid, splits[uuid], DATASET, meta, labels))
    tasks = [ProbeTask("coughvid_covid", "covid", "COVID-19 (vs healthy)", "acoustics")]
    return recordings, tasks, list(EXCLUDED)
