"""Metadata → a short clinical report per recording, generated once and stored beside the manifest.

The generator is pluggable: the dataset's `ReportTemplate` (default, deterministic, offline), any callable
`(metadata, instruction) → str`, or a transformers text-generation pipeline given the paper's instruction. Whatever
writes it, a report is checked before it is kept: it may not name the value of an excluded field (the evaluation
targets: a report that says "COPD" would let the alignment learn the probe's answer), and the generator never sees
those fields at all.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .manifest import REPORTS, Recording
from .report_template import ReportTemplate

# The paper's instruction to its LLM (AcuLa, §3.1): turn structured metadata into a 2–3 line clinical report.
INSTRUCTION = (
    "You are a clinician. Write a concise 2–3 line clinical report describing this recording from the metadata "
    "below. Use only the information given; do not speculate about a diagnosis.\n\nMetadata:\n{metadata}\n\nReport:"
)
Generator = Callable[[dict[str, str], str], str]


class LeakageError(ValueError):
    """A report names the value of a field that must never reach a report."""


def visible_metadata(recording: Recording, excluded: Iterable[str]) -> dict[str, str]:
    """The recording's metadata without the excluded fields (what a generator may see)."""
    hidden = set(excluded)
    return {k: v for k, v in recording.metadata.items() if k not in hidden}


def check_no_leak(report: str, recording: Recording, excluded: Iterable[str], forbidden: Iterable[str] = ()) -> None:
    """LeakageError when the report contains, as a whole word (case-insensitive), the value of an excluded metadata
    field of this recording, or one of the `forbidden` terms (the probe tasks' class names: "no wheezes" leaks as
    much as "wheezes"). Values that are mere numbers or yes/no flags are skipped (they would match any age)."""
    for term in forbidden:
        if term and re.search(rf"(?<!\w){re.escape(term)}(?!\w)", report, flags=re.IGNORECASE):
            raise LeakageError(f"report of {recording.path.name} names {term!r}, a probe task's class: {report!r}")
    for name in excluded:
        value = recording.metadata.get(name, "").strip()
        if not value or re.fullmatch(r"[\d.\s]+|yes|no|true|false|0|1", value, flags=re.IGNORECASE):
            continue
        if re.search(rf"(?<!\w){re.escape(value)}(?!\w)", report, flags=re.IGNORECASE):
            raise LeakageError(
                f"report of {recording.path.name} names {value!r}, the value of excluded field {name!r}: {report!r}"
            )


def template_generator(template: ReportTemplate) -> Generator:
    """A generator that renders the dataset's template (the instruction is not needed)."""
    return lambda metadata, instruction: template.render(metadata)


def pipeline_generator(pipeline: Any, max_new_tokens: int = 96) -> Generator:
    """A generator around a transformers `text-generation` pipeline (e.g. `google/medgemma-4b-pt`), prompted with
    `INSTRUCTION`; only the continuation is kept."""

    def generate(metadata: dict[str, str], instruction: str) -> str:
        prompt = instruction.format(metadata="\n".join(f"- {k}: {v}" for k, v in metadata.items()))
        out = pipeline(prompt, max_new_tokens=max_new_tokens, do_sample=False, return_full_text=False)
        return out[0]["generated_text"].strip()

    return generate


def generate_reports(recordings: Sequence[Recording], generator: Generator, excluded: Iterable[str],
                     instruction: str = INSTRUCTION, forbidden: Iterable[str] = ()) -> list[str]:  # fmt: skip
    """One checked report per recording; the generator sees only the visible metadata."""
    excluded, forbidden = list(excluded), list(forbidden)
    reports = []
    for r in recordings:
        report = generator(visible_metadata(r, excluded), instruction).strip()
        if not report:
            raise ValueError(f"the generator returned an empty report for {r.path.name}.")
        check_no_leak(report, r, excluded, forbidden)
        reports.append(report)
    return reports


def write_reports(root: str | os.PathLike, recordings: Sequence[Recording], generator: Generator,
                  excluded: Iterable[str], instruction: str = INSTRUCTION,
                  forbidden: Iterable[str] = ()) -> Path:  # fmt: skip
    """Generate (once: recordings already reported are kept) and write `acula_reports.csv` atomically."""
    root = Path(root)
    stored = read_reports(root) if (root / REPORTS).is_file() else {}
    todo = [r for r in recordings if _key(root, r) not in stored]
    new = generate_reports(todo, generator, excluded, instruction, forbidden)
    stored |= {_key(root, r): t for r, t in zip(todo, new, strict=True)}
    tmp = root / (REPORTS + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["recording", "report"])
        writer.writerows(sorted(stored.items()))
    tmp.replace(root / REPORTS)
    return root / REPORTS


def read_reports(root: str | os.PathLike) -> dict[str, str]:
    """recording (relative path, as in the manifest) → report."""
    path = Path(root) / REPORTS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: generate the reports first (data.auscultation.reports).")
    with path.open(newline="", encoding="utf-8") as f:
        return {row["recording"]: row["report"] for row in csv.DictReader(f)}


def reports_for(root: str | os.PathLike, recordings: Sequence[Recording], excluded: Iterable[str],
                forbidden: Iterable[str] = ()) -> list[str]:  # fmt: skip
    """The stored report of each recording, re-checked for leakage; a recording without one is refused by name."""
    root = Path(root)
    stored = read_reports(root)
    out = []
    excluded, forbidden = list(excluded), list(forbidden)
    for r in recordings:
        key = _key(root, r)
        if key not in stored:
            raise KeyError(f"{root / REPORTS} has no report for {key}; run write_reports again.")
        check_no_leak(stored[key], r, excluded, forbidden)
        out.append(stored[key])
    return out


def _key(root: Path, recording: Recording) -> str:
    path = Path(recording.path)
    return str(path.resolve().relative_to(root.resolve()) if path.is_absolute() else path)
