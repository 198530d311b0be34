"""The CT-RATE + Speech-RATE on-disk layout: paths, CSV names, a loader into `datasets`, and a batch collator.

One layout for the real download and for our built benchmark:

    dataset/{split}/{split}_{patient}/{split}_{patient}_{scan}/{split}_{patient}_{scan}_{recon}.nii.gz
    dataset/{split}/…/{VolumeName stem}_findings.wav                  (Speech-RATE; may live under its own root)
    dataset/radiology_text_reports/{train,validation,test}_reports.csv
    dataset/multi_abnormality_labels/{train,valid,test}_predicted_labels.csv
    dataset/metadata/{train,validation,test}_metadata.csv

CT-RATE itself has `train` and `valid`; our benchmark adds `test` with the same naming.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..labels import CT_RATE_LABELS

SPLITS = ("train", "valid", "test")
REPORT_COLUMNS = ("VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN")
METADATA_COLUMNS = ("VolumeName", "RescaleSlope", "RescaleIntercept", "XYSpacing", "ZSpacing")
_LONG_SPLIT = {"train": "train", "valid": "validation", "test": "test"}
_NAME = re.compile(r"^(?P<split>train|valid|test)_(?P<patient>\d+)_(?P<scan>[a-z]+)_(?P<recon>\d+)\.nii\.gz$")
NOT_GIVEN = "Not given."


def reports_csv(root: Path, split: str) -> Path:
    return Path(root) / "dataset" / "radiology_text_reports" / f"{_LONG_SPLIT[split]}_reports.csv"


def labels_csv(root: Path, split: str) -> Path:
    return Path(root) / "dataset" / "multi_abnormality_labels" / f"{split}_predicted_labels.csv"


def metadata_csv(root: Path, split: str) -> Path:
    return Path(root) / "dataset" / "metadata" / f"{_LONG_SPLIT[split]}_metadata.csv"


def volume_name(split: str, patient: int, scan: str = "a", recon: int = 1) -> str:
    return f"{split}_{patient}_{scan}_{recon}.nii.gz"


def volume_path(root: Path, name: str) -> Path:
    """Where CT-RATE keeps volume `name`; refuses names that are not CT-RATE volume names (no path can escape
    `root` through a manifest)."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"VolumeName {name!r} is not a CT-RATE volume name like 'valid_53_a_1.nii.gz'.")
    split, patient, scan = match["split"], match["patient"], match["scan"]
    return Path(root) / "dataset" / split / f"{split}_{patient}" / f"{split}_{patient}_{scan}" / name


def speech_path(root: Path, name: str) -> Path:
    """Speech-RATE's wav for volume `name`: the same tree, `<stem>_findings.wav`."""
    path = volume_path(root, name)
    return path.with_name(name.removesuffix(".nii.gz") + "_findings.wav")


def speech_voice_path(root: Path, name: str, voice: int) -> Path:
    """The wav of volume `name`'s report in its `voice`-th voice: 0 is Speech-RATE's own `<stem>_findings.wav`, k ≥ 1
    an extra voice of a training report (the benchmark's `extra_train_voices`), `<stem>_findings_voice<k>.wav`."""
    path = speech_path(root, name)
    return path if voice == 0 else path.with_name(f"{path.stem}_voice{voice}.wav")


def speech_voices(wav: str | os.PathLike) -> list[str]:
    """Every recording of the report whose primary wav is `wav`: itself, then its `_voice<k>` siblings by k."""
    wav = Path(wav)
    extra = {}
    for sibling in wav.parent.glob(f"{wav.stem}_voice*.wav"):
        k = sibling.stem.removeprefix(f"{wav.stem}_voice")
        if k.isdigit():
            extra[int(k)] = str(sibling)
    return [str(wav), *(extra[k] for k in sorted(extra))]


def write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV through a temporary file and `os.replace`, so an interrupted build never leaves half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=path.parent, delete=False) as tmp:
        writer = csv.writer(tmp)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp.name, path)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is this a CT-RATE layout root?")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@dataclass
class ScanResult:
    rows: list[dict[str, Any]]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (VolumeName, reason)


def scan_split(
    root: Path,
    split: str,
    speech_root: Path | None = None,
    require_speech: bool = True,
    on_missing: str = "error",
) -> ScanResult:
    """Join reports, labels and files of one split. `on_missing="skip"` drops rows whose files or table entries are
    missing (counted in `skipped`); `"error"` raises naming the first one."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}.")
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing={on_missing!r} must be 'error' or 'skip'.")
    root = Path(root)
    speech_root = Path(speech_root) if speech_root is not None else root
    reports = {row["VolumeName"]: row for row in _read_csv(reports_csv(root, split))}
    label_rows = _read_csv(labels_csv(root, split))
    if label_rows and (missing := [c for c in CT_RATE_LABELS if c not in label_rows[0]]):
        raise ValueError(f"{labels_csv(root, split)} lacks label columns {missing}.")
    result = ScanResult(rows=[])
    for label_row in label_rows:
        name = label_row["VolumeName"]
        problem = None
        volume = volume_path(root, name)
        wav = speech_path(speech_root, name)
        if name not in reports:
            problem = f"no row in {reports_csv(root, split).name}"
        elif not volume.is_file():
            problem = f"volume file {volume} is missing"
        elif require_speech and not wav.is_file():
            problem = f"speech file {wav} is missing"
        if problem is not None:
            if on_missing == "error":
                raise FileNotFoundError(f"{name}: {problem} (pass on_missing='skip' to drop such rows).")
            result.skipped.append((name, problem))
            continue
        report = reports[name]
        result.rows.append(
            {
                "volume_name": name,
                "volume": str(volume),
                "speech": str(wav) if wav.is_file() else None,
                "findings": _text(report.get("Findings_EN")),
                "impressions": _text(report.get("Impressions_EN")),
                "labels": [int(float(label_row[c])) for c in CT_RATE_LABELS],
            }
        )
    return result


def _text(value: str | None) -> str:
    return "" if value is None or value.strip() == NOT_GIVEN else value.strip()


def resolve_root(root_or_repo: str | os.PathLike, split: str, **hub_kwargs: Any) -> Path:
    """A local folder as is; otherwise a Hub dataset id, whose tables and the split's files are downloaded."""
    path = Path(root_or_repo)
    if path.exists():
        return path
    from huggingface_hub import snapshot_download

    patterns = [
        "dataset/radiology_text_reports/*",
        "dataset/multi_abnormality_labels/*",
        "dataset/metadata/*",
        f"dataset/{split}/*",
    ]
    try:
        return Path(snapshot_download(str(root_or_repo), repo_type="dataset", allow_patterns=patterns, **hub_kwargs))
    except Exception as err:
        raise FileNotFoundError(
            f"{root_or_repo!r} is neither a local folder nor a reachable Hub dataset ({type(err).__name__}: {err})."
        ) from err


def load_ct_rate(
    root: str | os.PathLike,
    split: str = "train",
    speech_root: str | os.PathLike | None = None,
    require_speech: bool = True,
    on_missing: str = "error",
    streaming: bool = False,
):
    """CT-RATE / Speech-RATE (or our build) → `datasets.Dataset` with columns `volume_name`, `volume` (path),
    `speech` (wav path), `findings`, `impressions`, `labels` (18 ints, `CT_RATE_LABELS` order). Files stay on disk
    and are decoded by the collator's processor; `streaming=True` gives an `IterableDataset` for large data."""
    import datasets

    local = resolve_root(root, split)
    speech = resolve_root(speech_root, split) if speech_root is not None else None
    scanned = scan_split(local, split, speech_root=speech, require_speech=require_speech, on_missing=on_missing)
    if scanned.skipped:
        warnings.warn(
            f"{split}: skipped {len(scanned.skipped)} row(s) with missing files, e.g. {scanned.skipped[0]}",
            stacklevel=2,
        )
    features = datasets.Features(
        {
            "volume_name": datasets.Value("string"),
            "volume": datasets.Value("string"),
            "speech": datasets.Value("string"),
            "findings": datasets.Value("string"),
            "impressions": datasets.Value("string"),
            "labels": datasets.Sequence(datasets.Value("int8"), length=len(CT_RATE_LABELS)),
        }
    )
    if streaming:
        rows = scanned.rows
        return datasets.IterableDataset.from_generator(lambda: iter(rows), features=features)
    return datasets.Dataset.from_list(scanned.rows, features=features)


@dataclass
class SpeechCTClipCollator:
    """Rows of `load_ct_rate` → a model batch through the processor (+ `labels`). `modalities` picks what to load;
    `on_error="skip"` drops rows whose files cannot be read (counted in `skipped`) instead of raising."""

    processor: Any
    modalities: tuple[str, ...] = ("ct", "speech", "text")
    on_error: str = "error"
    ct_kwargs: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, rows: list[dict[str, Any]]):
        import torch

        try:
            batch = self._process(rows)
        except (ValueError, OSError):
            if self.on_error != "skip":
                raise
            rows = [row for row in rows if self._readable(row)]  # find the bad rows only when a batch fails
            if not rows:
                raise ValueError(f"every row of the batch was unreadable: {self.skipped[-3:]}") from None
            batch = self._process(rows)
        batch["labels"] = torch.tensor([row["labels"] for row in rows], dtype=torch.long)
        return batch

    def _process(self, rows: list[dict[str, Any]]):
        return self.processor(
            ct=[r["volume"] for r in rows] if "ct" in self.modalities else None,
            audio=[r["speech"] for r in rows] if "speech" in self.modalities else None,
            text=[r["findings"] for r in rows] if "text" in self.modalities else None,
            ct_kwargs={"is_hu": True, **self.ct_kwargs},
        )

    def _readable(self, row: dict[str, Any]) -> bool:
        try:
            self._process([row])
        except (ValueError, OSError) as err:
            self.skipped.append((row["volume_name"], str(err)))
            return False
        return True
