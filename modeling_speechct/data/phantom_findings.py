"""What every phantom abnormality shares: the plan/render contract and the words its `Finding` is written in.

Each label has a plan, drawn before the anatomy (it may edit the patient: heart size, diaphragm), and a renderer that
paints the lesion into the anatomy and returns its `Finding` and the voxel of its centre; each uses only its own
random stream. The renderers live in `phantom_findings_lung` (parenchyma, airways, pleura) and
`phantom_findings_mediastinum` (heart, vessels, mediastinum, hiatus, devices); `phantom` maps labels to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..labels import Finding
from .phantom_anatomy import _Patient

Plan = dict
Rendered = tuple[Finding, tuple[int, int, int]]


def _no_plan(rng: np.random.Generator, pat: _Patient) -> Plan:
    return {}


def _grade(value: float, mild_below: float, moderate_below: float) -> str:
    return "mild" if value < mild_below else "moderate" if value < moderate_below else "severe"


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _sides(sides: Iterable[str]) -> str | None:
    sides = set(sides)
    return None if not sides else "bilateral" if len(sides) > 1 else sides.pop()
