"""Procedural chest CT phantoms with CT-RATE abnormalities drawn in, for a benchmark that needs no download.

A phantom's labels are known by construction, so a model's zero-shot scores and retrieval can be checked without
CT-RATE, and every drawn abnormality comes with a `Finding` from which a report (and its spoken version) is written.
The anatomy is coarse but laid out as in a patient so that the lesions sit where a radiologist expects them.

Geometry is described in mm about the volume centre (z toward Superior, x toward patient Left, y toward Posterior)
and evaluated on the voxel grid, so any shape or spacing shows the same patient. Volumes are int16 HU in CT-CLIP's
canonical array order (S, L, P). Everything is a function of the generator's state: anatomy, noise and each label's
lesion draw from their own child streams, so a case rendered with and without one label differs only where that
label's lesion is.

This module is the entry point: label prevalences and sampling, `generate_case` (which draws the patient, plans and
renders each label's lesion in a fixed order, adds noise and rounds to HU) and the figure helpers. The parts live in
`phantom_canvas` (voxel grid in mm, HU values, partial-volume painting), `phantom_anatomy` (the normal chest),
`phantom_findings` (the plan/render contract) and `phantom_findings_lung` / `phantom_findings_mediastinum` (each
abnormality's placement, geometry and parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..labels import CT_RATE_LABELS, Finding
from .phantom_anatomy import _build_anatomy, _draw_patient
from .phantom_canvas import _Canvas
from .phantom_findings import _no_plan
from .phantom_findings_lung import (
    _plan_atelectasis,
    _plan_effusion,
    _plan_emphysema,
    _render_atelectasis,
    _render_bronchiectasis,
    _render_consolidation,
    _render_effusion,
    _render_emphysema,
    _render_fibrosis,
    _render_mosaic,
    _render_nodule,
    _render_opacity,
)
from .phantom_findings_mediastinum import (
    _plan_cardiomegaly,
    _render_arterial_calcification,
    _render_cardiomegaly,
    _render_coronary_calcification,
    _render_hernia,
    _render_material,
    _render_nodes,
    _render_pericardial,
)

# Marginal prevalences: common findings (nodules, opacities, calcifications) more often than rare ones, all within
# 0.08-0.35 so that a benchmark of a few hundred cases has positives and negatives for every label. The labels left
# out (peribronchial and interlobular septal thickening) are millimetre-scale and cannot be drawn recognisably at
# ~4 mm voxels; they are always 0.
_PREVALENCE = {
    "Medical material": 0.10,
    "Arterial wall calcification": 0.28,
    "Cardiomegaly": 0.10,
    "Pericardial effusion": 0.08,
    "Coronary artery wall calcification": 0.24,
    "Hiatal hernia": 0.12,
    "Lymphadenopathy": 0.22,
    "Emphysema": 0.18,
    "Atelectasis": 0.22,
    "Lung nodule": 0.35,
    "Lung opacity": 0.30,
    "Pulmonary fibrotic sequela": 0.22,
    "Pleural effusion": 0.12,
    "Mosaic attenuation pattern": 0.08,
    "Consolidation": 0.15,
    "Bronchiectasis": 0.10,
}
RENDERED_LABELS: tuple[str, ...] = tuple(label for label in CT_RATE_LABELS if label in _PREVALENCE)
LABEL_PREVALENCE: dict[str, float] = {label: _PREVALENCE[label] for label in RENDERED_LABELS}

# A share of cases is drawn normal outright; the others draw each label independently with p / (1 - share), which
# keeps the marginals above exact and makes about 14% of cases normal (2.8 labels per case on average).
_NORMAL_SHARE = 0.12
_FOV_MM = (300.0, 380.0, 320.0)  # (S, L, P) field of view the default spacing covers
_SPACING_JITTER = 0.12


@dataclass
class PhantomCase:
    """One generated chest CT and the ground truth a report and a labels row are written from.

    Args:
        volume: int16 HU, (S, L, P) axis order, shape (D, H, W).
        spacing: mm per axis (S, L, P).
        findings: one `Finding` per present label, in CT-RATE label order.
        labels: every CT-RATE label → 0/1; 1 exactly for the labels of `findings`.
        centers: per finding label, the voxel index of its main lesion (for figures and checks).
    """

    volume: np.ndarray
    spacing: tuple[float, float, float]
    findings: list[Finding]
    labels: dict[str, int]
    centers: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def sample_labels(rng: np.random.Generator) -> set[str]:
    """A label set with marginals `LABEL_PREVALENCE`: independent draws, plus a normal share (~14% empty sets)."""
    normal = rng.random() < _NORMAL_SHARE
    draws = rng.random(len(RENDERED_LABELS))  # drawn even for normal cases: each call uses the stream alike
    if normal:
        return set()
    return {
        label for label, u in zip(RENDERED_LABELS, draws, strict=True) if u < _PREVALENCE[label] / (1 - _NORMAL_SHARE)
    }


def generate_case(
    rng: np.random.Generator,
    labels: set[str] | None = None,
    shape: tuple[int, int, int] = (48, 96, 96),
    spacing: tuple[float, float, float] | None = None,
) -> PhantomCase:
    """Draw a patient, render it with `labels` (sampled when None) and return the volume with its findings.

    `spacing` defaults to a ~300 × 380 × 320 mm field of view over `shape`, jittered by ±12% per axis so that
    consumers must resample. Only `RENDERED_LABELS` can be asked for.
    """
    shape = tuple(int(n) for n in shape)
    labels = sample_labels(rng) if labels is None else set(labels)
    unknown = labels - set(RENDERED_LABELS)
    if unknown:
        raise ValueError(f"Cannot render {sorted(unknown)}; renderable labels: {list(RENDERED_LABELS)}.")
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be three sizes of at least 8, got {shape}.")
    if spacing is None:
        jitter = rng.uniform(1 - _SPACING_JITTER, 1 + _SPACING_JITTER, 3)
        spacing = tuple(float(f / n * j) for f, n, j in zip(_FOV_MM, shape, jitter, strict=True))
    spacing = tuple(float(s) for s in spacing)
    entropy = int(rng.integers(2**63))

    def stream(key: int) -> np.random.Generator:
        return np.random.default_rng([entropy, key])

    patient = _draw_patient(stream(100))
    ordered = sorted(labels, key=CT_RATE_LABELS.index)  # plans edit the patient: apply them in a fixed order
    streams = {label: stream(CT_RATE_LABELS.index(label)) for label in ordered}
    plans = {label: _LESIONS[label][0](streams[label], patient) for label in ordered}
    scene = _build_anatomy(_Canvas(shape, spacing), patient)
    found: dict[str, tuple[Finding, tuple[int, int, int]]] = {}
    for label in sorted(labels, key=_RENDER_ORDER.index):
        found[label] = _LESIONS[label][1](scene, streams[label], plans[label])
    volume = scene.cv.vol
    volume += stream(101).standard_normal(shape, dtype=np.float32) * np.float32(patient.noise)
    volume = np.clip(np.rint(volume), -1024, 3071).astype(np.int16)
    return PhantomCase(
        volume=volume,
        spacing=spacing,
        findings=[found[label][0] for label in ordered],
        labels={label: int(label in found) for label in CT_RATE_LABELS},
        centers={label: found[label][1] for label in ordered},
    )


def example_case(label: str, seed: int = 0, shape: tuple[int, int, int] = (48, 96, 96)) -> PhantomCase:
    """A case showing `label` alone, reproducible from (`seed`, label), for figures."""
    return generate_case(np.random.default_rng([seed, CT_RATE_LABELS.index(label)]), {label}, shape)


class LesionViews(NamedTuple):
    """Axial and coronal slices through a lesion's centre, oriented as radiologists view them, for `imshow`.

    Axial: anterior up, patient right on the image left; coronal: superior up, patient right on the image left.
    Aspects are row height over column width (mm); points are the lesion centre's (row, column) in each image.
    """

    axial: np.ndarray
    coronal: np.ndarray
    axial_aspect: float
    coronal_aspect: float
    axial_point: tuple[int, int]
    coronal_point: tuple[int, int]


def lesion_views(case: PhantomCase, label: str) -> LesionViews:
    """The axial and coronal slices through the centre of `label`'s lesion in `case`."""
    s, l_index, p = case.centers[label]
    ss, sl, sp = case.spacing
    return LesionViews(
        axial=case.volume[s].T,  # rows P (anterior first), columns L (patient right first)
        coronal=case.volume[::-1, :, p],  # rows S (superior first), columns L
        axial_aspect=sp / sl,
        coronal_aspect=ss / sl,
        axial_point=(p, l_index),
        coronal_point=(case.volume.shape[0] - 1 - s, l_index),
    )


# label → (plan, render); renderers run in `_RENDER_ORDER`: diffuse lung changes, focal lung lesions, pleura,
# mediastinum, then dense objects painted last so nothing covers them.
_LESIONS: dict[str, tuple[Callable, Callable]] = {
    "Medical material": (_no_plan, _render_material),
    "Arterial wall calcification": (_no_plan, _render_arterial_calcification),
    "Cardiomegaly": (_plan_cardiomegaly, _render_cardiomegaly),
    "Pericardial effusion": (_no_plan, _render_pericardial),
    "Coronary artery wall calcification": (_no_plan, _render_coronary_calcification),
    "Hiatal hernia": (_no_plan, _render_hernia),
    "Lymphadenopathy": (_no_plan, _render_nodes),
    "Emphysema": (_plan_emphysema, _render_emphysema),
    "Atelectasis": (_plan_atelectasis, _render_atelectasis),
    "Lung nodule": (_no_plan, _render_nodule),
    "Lung opacity": (_no_plan, _render_opacity),
    "Pulmonary fibrotic sequela": (_no_plan, _render_fibrosis),
    "Pleural effusion": (_plan_effusion, _render_effusion),
    "Mosaic attenuation pattern": (_no_plan, _render_mosaic),
    "Consolidation": (_no_plan, _render_consolidation),
    "Bronchiectasis": (_no_plan, _render_bronchiectasis),
}
_RENDER_ORDER = (
    "Emphysema",
    "Mosaic attenuation pattern",
    "Lung opacity",
    "Pulmonary fibrotic sequela",
    "Bronchiectasis",
    "Consolidation",
    "Atelectasis",
    "Lung nodule",
    "Pleural effusion",
    "Pericardial effusion",
    "Cardiomegaly",
    "Lymphadenopathy",
    "Hiatal hernia",
    "Arterial wall calcification",
    "Coronary artery wall calcification",
    "Medical material",
)
