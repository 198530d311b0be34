"""Procedural chest CT phantoms with CT-RATE abnormalities drawn in, for a benchmark that needs no download.

A phantom's labels are known by construction, so a model's zero-shot scores and retrieval can be checked without
CT-RATE, and every drawn abnormality comes with a `Finding` from which a report (and its spoken version) is written.
The anatomy is coarse but laid out as in a patient so that the lesions sit where a radiologist expects them.

Geometry is described in mm about the volume centre (z toward Superior, x toward patient Left, y toward Posterior)
and evaluated on the voxel grid, so any shape or spacing shows the same patient. Volumes are int16 HU in CT-CLIP's
canonical array order (S, L, P). Everything is a function of the generator's state: anatomy, noise and each label's
lesion draw from their own child streams, so a case rendered with and without one label differs only where that
label's lesion is.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..labels import CT_RATE_LABELS, Finding

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

AIR, FAT, MEDIASTINAL_FAT, SOFT, BLOOD, FLUID, LUNG, METAL = -1000.0, -100.0, -80.0, 40.0, 40.0, 10.0, -850.0, 3000.0
_LOBES = {
    1: "right upper lobe",
    2: "right middle lobe",
    3: "right lower lobe",
    4: "left upper lobe",
    5: "left lower lobe",
}
_SIGN = {"right": -1.0, "left": 1.0}


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


# ----------------------------------------------------------------------------------------------------------------
# Drawing on a voxel grid in mm.


class _Canvas:
    """The float volume being painted and its voxel-centre coordinates in mm (z: S, x: L, y: P)."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, ...]):
        self.shape, self.spacing = tuple(int(n) for n in shape), spacing
        self.axes = [((np.arange(n) - (n - 1) / 2) * s).astype(np.float32) for n, s in zip(shape, spacing, strict=True)]
        self.z = self.axes[0][:, None, None]
        self.x = self.axes[1][None, :, None]
        self.y = self.axes[2][None, None, :]
        self.vol = np.full(self.shape, AIR, np.float32)
        self.ramp = float(np.mean(spacing))  # width of the partial-volume edge

    def index(self, point: Sequence[float]) -> tuple[int, int, int]:
        """Nearest voxel of a point in mm, clipped into the volume."""
        return tuple(
            int(np.clip(round(c / s + (n - 1) / 2), 0, n - 1))
            for c, s, n in zip(point, self.spacing, self.shape, strict=True)
        )

    def point(self, index: Sequence[int]) -> np.ndarray:
        return np.array([float(a[i]) for a, i in zip(self.axes, index, strict=True)])

    def box(self, lo: Sequence[float], hi: Sequence[float]):
        """Slices of the voxels whose centres lie within [lo, hi] mm and their open coordinate grids, or None."""
        slices = []
        for low, high, s, n in zip(lo, hi, self.spacing, self.shape, strict=True):
            i0 = max(math.ceil(low / s + (n - 1) / 2), 0)
            i1 = min(math.floor(high / s + (n - 1) / 2) + 1, n)
            if i1 <= i0:
                return None
            slices.append(slice(i0, i1))
        return tuple(slices), self.box_grids(slices)

    def box_grids(self, sl: tuple[slice, slice, slice]):
        """Open coordinate grids of a box given by its slices."""
        return (
            self.axes[0][sl[0]][:, None, None],
            self.axes[1][sl[1]][None, :, None],
            self.axes[2][sl[2]][None, None, :],
        )

    def alpha(self, distance: np.ndarray, ramp: float | None = None) -> np.ndarray:
        """Coverage of each voxel by a shape, from an approximate signed distance to its surface (mm)."""
        return np.clip(0.5 - distance / (ramp or self.ramp), 0.0, 1.0)

    def blend(self, sl, alpha: np.ndarray, hu, keep: np.ndarray | None = None, record: np.ndarray | None = None):
        """Paint `hu` with coverage `alpha` into the box `sl`, only where `keep`; mark covered voxels in `record`."""
        if keep is not None:
            alpha = alpha * keep[sl]
        view = self.vol[sl]
        view += alpha * (np.float32(hu) - view) if np.isscalar(hu) else alpha * (hu - view)
        if record is not None:
            record[sl] |= alpha > 0.5
        return alpha

    def stamp(self, points: np.ndarray, hu: float, keep: np.ndarray | None = None):
        """Raise the nearest voxel of each point to `hu`: thin dense objects (wires, plaques) stay visible."""
        idx = np.rint(points / np.array(self.spacing) + (np.array(self.shape) - 1) / 2).astype(int)
        inside = np.all((idx >= 0) & (idx < np.array(self.shape)), axis=1)
        z, x, y = idx[inside].T
        if keep is not None:
            z, x, y = z[keep[z, x, y]], x[keep[z, x, y]], y[keep[z, x, y]]
        self.vol[z, x, y] = np.maximum(self.vol[z, x, y], hu)


def _unit(v: Sequence[float]) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _ellipsoid_distance(grids, center, semi, basis=None) -> np.ndarray:
    """Approximate signed distance (mm) to an ellipsoid with semi-axes `semi` along the rows of `basis`."""
    d = [g - np.float32(c) for g, c in zip(grids, center, strict=True)]
    if basis is None:
        q = (d[0] / semi[0]) ** 2 + (d[1] / semi[1]) ** 2 + (d[2] / semi[2]) ** 2
    else:
        q = sum(((b[0] * d[0] + b[1] * d[1] + b[2] * d[2]) / a) ** 2 for b, a in zip(basis, semi, strict=True))
    return (np.sqrt(q) - 1.0) * np.float32(min(semi))


def _paint_ellipsoid(cv: _Canvas, center, semi, hu, basis=None, keep=None, record=None, ramp=None):
    """Paint an ellipsoid; returns (slices, coverage) or None when it misses the volume."""
    reach = max(semi) + cv.ramp
    found = cv.box(np.asarray(center) - reach, np.asarray(center) + reach)
    if found is None:
        return None
    sl, grids = found
    alpha = cv.alpha(_ellipsoid_distance(grids, center, semi, basis), ramp)
    return sl, cv.blend(sl, alpha, hu, keep, record)


def _segment_distance(grids, p0, p1, r0, r1) -> np.ndarray:
    """Signed distance (mm) to a capsule from p0 (radius r0) to p1 (radius r1)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    w = [g - np.float32(c) for g, c in zip(grids, p0, strict=True)]
    t = np.clip((w[0] * d[0] + w[1] * d[1] + w[2] * d[2]) / max(float(d @ d), 1e-6), 0.0, 1.0)
    dist = np.sqrt((w[0] - t * d[0]) ** 2 + (w[1] - t * d[1]) ** 2 + (w[2] - t * d[2]) ** 2)
    return dist - (r0 + t * (r1 - r0))


def _paint_tube(cv: _Canvas, points, radii, hu, keep=None, record=None, ramp=None):
    """Paint a polyline tube whose radius runs linearly between the per-point `radii`."""
    points = np.asarray(points, float)
    radii = np.broadcast_to(np.asarray(radii, float), (len(points),))
    for p0, p1, r0, r1 in zip(points[:-1], points[1:], radii[:-1], radii[1:], strict=True):
        reach = max(r0, r1) + cv.ramp
        found = cv.box(np.minimum(p0, p1) - reach, np.maximum(p0, p1) + reach)
        if found is not None:
            sl, grids = found
            cv.blend(sl, cv.alpha(_segment_distance(grids, p0, p1, r0, r1), ramp), hu, keep, record)


def _densify(points, step: float) -> np.ndarray:
    """Points along a polyline every `step` mm or closer."""
    points = np.asarray(points, float)
    out = [points[:1]]
    for p0, p1 in itertools.pairwise(points):
        n = max(int(np.ceil(np.linalg.norm(p1 - p0) / step)), 1)
        out.append(p0 + (p1 - p0) * (np.arange(1, n + 1)[:, None] / n))
    return np.concatenate(out)


def _pick(rng: np.random.Generator, mask: np.ndarray) -> tuple[int, int, int] | None:
    """A uniformly drawn voxel of `mask`, or None when it is empty."""
    flat = np.flatnonzero(mask)
    if flat.size == 0:
        return None
    return tuple(int(i) for i in np.unravel_index(flat[rng.integers(flat.size)], mask.shape))


def _central_voxel(mask: np.ndarray) -> tuple[int, int, int]:
    """The voxel of `mask` nearest to its centroid (a centroid may fall outside a crescent)."""
    idx = np.argwhere(mask)
    return tuple(int(i) for i in idx[np.argmin(((idx - idx.mean(axis=0)) ** 2).sum(axis=1))])


def _rim(mask: np.ndarray) -> np.ndarray:
    """Voxels of `mask` with an in-plane neighbour outside it (the pleural surface of a lung)."""
    inner = mask.copy()
    inner[:, 1:-1, 1:-1] &= mask[:, :-2, 1:-1] & mask[:, 2:, 1:-1] & mask[:, 1:-1, :-2] & mask[:, 1:-1, 2:]
    return mask & ~inner


def _grade(value: float, mild_below: float, moderate_below: float) -> str:
    return "mild" if value < mild_below else "moderate" if value < moderate_below else "severe"


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _sides(sides: Iterable[str]) -> str | None:
    sides = set(sides)
    return None if not sides else "bilateral" if len(sides) > 1 else sides.pop()


# ----------------------------------------------------------------------------------------------------------------
# The patient: anatomy drawn once per case, in mm.

# Landmarks of a template patient (z, x, y) about the thoracic cavity centre, for cavity semi-axes (115, 75) mm.
_TEMPLATE = {
    "carina": (30, -2, 2),
    "trachea_top": (260, -2, -18),
    "rmb": (10, -32, 8),
    "bi": (-25, -45, 18),
    "rul": (15, -62, 4),
    "lmb": (0, 42, 12),
    "lul": (5, 60, -6),
    "lll": (-35, 56, 26),
    "hilum_right": (-5, -48, 4),
    "hilum_left": (-8, 50, 8),
    "heart": (-48, 18, -22),
    "aorta_root": (-25, 2, -28),
    "arch_start": (40, 2, -28),
    "arch_end": (40, 26, 26),
    "aorta_mid": (-60, 18, 30),
    "aorta_low": (-260, 8, 28),
    "svc_top": (260, -24, -25),
    "svc_low": (-10, -24, -24),
    "pa_root": (-30, 22, -45),
    "pa_fork": (12, 22, -14),
    "rpa_mid": (5, -10, -8),
    "rpa_end": (-2, -42, 4),
    "lpa_mid": (18, 42, 2),
    "lpa_end": (-12, 56, 22),
    "esophagus_top": (260, 4, 14),
    "esophagus_mid": (-20, 6, 18),
    "hiatus": (-100, 18, 10),
    "vertebra": (0, 0, 47),
    "canal": (0, 0, 75),
    "lung_right": (-110, -72, 5),
    "lung_left": (-110, 76, 5),
    "dome_right": (-72, -60, -5),
    "dome_left": (-86, 65, -5),
}
_LUNG_SEMI = {"right": (228, 76, 84), "left": (224, 70, 80)}
_HEART_SEMI = (58, 46, 40)
_EPICARDIAL_FAT = 6.0  # mm; the stripe that shows a pericardial effusion apart from the myocardium
_NODE_STATIONS = {  # station → (offset from the carina, side or None, weight); hilar nodes hide among vessels
    "right paratracheal": ((25, -18, -12), None, 1.0),
    "anterior mediastinum": ((18, 2, -52), None, 1.0),
    "subcarinal": ((-20, 2, 10), None, 1.0),
    "right hilar": ((-32, -50, 6), "right", 0.5),
    "left hilar": ((-38, 56, 12), "left", 0.5),
}


@dataclass
class _Patient:
    """One patient's anatomy in mm; lesion plans may edit it before it is drawn (heart size, diaphragm)."""

    origin: np.ndarray  # cavity centre (z, x, y)
    stretch: np.ndarray  # template → patient scale per axis (z, x, y)
    cav_a: float
    cav_b: float
    fat: float
    pts: dict[str, np.ndarray]
    heart_scale: np.ndarray
    heart_shift: np.ndarray
    heart_basis: np.ndarray
    dome_shift: dict[str, float]
    lung_hu: float
    noise: float
    rib_pitch: float
    rib_phase: float
    vessel_paths: list[tuple[str, np.ndarray, tuple[float, ...]]]

    @property
    def wall(self) -> tuple[float, float, float]:
        """Outer surface of the muscle wall (a superellipse in x, y): semi-axes (x, y) and centre y."""
        front, back = self.origin[2] - self.cav_b - 11, self.origin[2] + self.cav_b + 30
        return self.cav_a + 14, (back - front) / 2, (front + back) / 2

    def front_of_wall(self, x: float) -> float:
        """y of the muscle wall's front surface at `x` (mm): where subcutaneous devices lie."""
        a, b, c = self.wall
        return c - b * (1 - min(abs((x - self.origin[1]) / a), 0.95) ** 2.3) ** (1 / 2.3)

    def diaphragm(self, x, y):
        """Height (mm) of the diaphragm at (x, y): two domes, the right one higher, lowest at the back."""
        domes = []
        for side in ("right", "left"):
            c = self.pts[f"dome_{side}"]
            domes.append(c[0] + self.dome_shift[side] - 60 * (((x - c[1]) / 100) ** 2 + ((y - c[2]) / 95) ** 2))
        return np.maximum(*domes)

    def at(self, offset: Sequence[float]) -> np.ndarray:
        """A template offset (mm) placed in this patient."""
        return self.origin + self.stretch * np.asarray(offset, float)

    @property
    def heart_center(self) -> np.ndarray:
        return self.pts["heart"] + self.heart_shift

    @property
    def heart_semi(self) -> np.ndarray:
        return np.asarray(_HEART_SEMI) * self.stretch.mean() * self.heart_scale


def _draw_patient(rng: np.random.Generator) -> _Patient:
    size = rng.uniform(0.92, 1.06)
    stretch = size * rng.uniform(0.95, 1.05, 3)
    origin = np.array([rng.uniform(-10, 6), rng.uniform(-8, 8), rng.uniform(-16, -4)])
    pts = {name: origin + stretch * np.asarray(off, float) for name, off in _TEMPLATE.items()}
    airway_shift = rng.uniform(-5, 5, 3)  # the carina and the bronchi move together
    for name in ("carina", "rmb", "bi", "rul", "lmb", "lul", "lll"):
        pts[name] = pts[name] + airway_shift
    for name in ("heart", "hilum_right", "hilum_left"):
        pts[name] = pts[name] + rng.uniform(-5, 5, 3)
    axis = _unit(np.array([-0.6, 0.62, -0.47]) + rng.uniform(-0.08, 0.08, 3))  # base → apex: left, anterior, down
    side = _unit(np.cross(axis, [1.0, 0.0, 0.0]))
    patient = _Patient(
        origin=origin,
        stretch=stretch,
        cav_a=115 * stretch[1],
        cav_b=75 * stretch[2],
        fat=rng.uniform(8, 24),
        pts=pts,
        heart_scale=rng.uniform(0.93, 1.05) * np.ones(3),
        heart_shift=np.zeros(3),
        heart_basis=np.stack([axis, side, np.cross(axis, side)]),
        dome_shift={"right": rng.uniform(-6, 6), "left": rng.uniform(-6, 6)},
        lung_hu=rng.uniform(-870, -830),
        noise=rng.uniform(10, 20),
        rib_pitch=rng.uniform(24, 28) * stretch[0],
        rib_phase=rng.uniform(0, 1),
        vessel_paths=[],
    )
    for side_name in ("right", "left"):  # pulmonary vessels radiating from the hilum to random lung points
        hilum = pts[f"hilum_{side_name}"]
        center, semi = patient.at(_TEMPLATE[f"lung_{side_name}"]), np.asarray(_LUNG_SEMI[side_name]) * stretch
        for _ in range(9):  # a trunk to a random lung point, then 2-3 branches fanning out from its end
            for _attempt in range(20):
                u = rng.uniform(-1, 1, 3)
                tip = center + semi * u
                lateral = _SIGN[side_name] * (tip[1] - origin[1])
                if u @ u < 1 and tip[0] < center[0] + 200 * stretch[0] and lateral > 35:
                    break
            bend = hilum + 0.5 * (tip - hilum) + rng.uniform(-8, 8, 3)
            patient.vessel_paths.append((side_name, np.stack([hilum, bend]), (4.5, 3.0)))
            reach = np.linalg.norm(tip - bend)
            for _ in range(int(rng.integers(2, 4))):
                end = tip + rng.normal(0, 0.45 * reach, 3)
                patient.vessel_paths.append((side_name, np.stack([bend, (bend + end) / 2, end]), (2.6, 1.8, 0.8)))
    return patient


@dataclass
class _Scene:
    """The painted anatomy and what lesions need to find their place."""

    cv: _Canvas
    pat: _Patient
    lung: dict[str, np.ndarray]  # parenchyma region per side (bool), big mediastinal structures excluded
    lobes: np.ndarray  # int8: 0 outside the lungs, else a key of _LOBES
    protect: np.ndarray  # heart, aorta, airways and bone: lesions outside them must not paint over them
    heart: np.ndarray
    bone: np.ndarray
    aorta_path: np.ndarray
    aorta_radii: np.ndarray
    horizontal_fissure: float

    def lobe_name(self, index: Sequence[int]) -> str:
        """Report words for the lobe at a voxel (the nearest lobe for a voxel just outside the lungs)."""
        lobe = int(self.lobes[tuple(index)])
        if lobe == 0:
            inside = np.argwhere(self.lobes > 0)
            nearest = inside[np.argmin(((inside - np.asarray(index)) * self.cv.spacing) ** 2 @ np.ones(3))]
            lobe = int(self.lobes[tuple(nearest)])
        if lobe == 4 and self.cv.point(index)[0] < self.horizontal_fissure - 10:
            return "lingula"
        return _LOBES[lobe]


def _aorta_path(pat: _Patient) -> tuple[np.ndarray, np.ndarray]:
    """Root → ascending → arch (passing left of the trachea) → descending aorta, with radii."""
    a, b = pat.pts["arch_start"], pat.pts["arch_end"]
    t = np.linspace(0, 1, 9)[1:-1, None]
    bulge = np.sin(np.pi * t)
    arch = a + (b - a) * t + bulge * np.array([28.0, 16.0, 0.0]) * pat.stretch
    points = np.concatenate([[pat.pts["aorta_root"], a], arch, [b, pat.pts["aorta_mid"], pat.pts["aorta_low"]]])
    radii = np.concatenate([[15.0, 15.0], np.linspace(14, 12.5, len(arch)), [12.0, 11.5, 11.0]])
    return points, radii * pat.stretch[1:].mean()


def _build_anatomy(cv: _Canvas, pat: _Patient) -> _Scene:
    z, x, y = cv.z, cv.x, cv.y
    o = pat.origin
    vol = cv.vol
    # Body outline (skin/fat), muscle wall, thoracic cavity narrowing toward the apex.
    body_a, body_b, body_c = pat.wall

    def outline(extra: float) -> np.ndarray:
        return (np.abs((x - o[1]) / (body_a + extra)) ** 2.3 + np.abs((y - body_c) / (body_b + extra)) ** 2.3) < 1

    vol[:] = np.where(outline(pat.fat), np.float32(FAT), vol)
    vol[:] = np.where(outline(0.0), np.float32(SOFT), vol)
    lung_base = pat.at(_TEMPLATE["lung_right"])[0]
    taper = np.sqrt(np.clip(1 - np.abs((z - lung_base) / (252 * pat.stretch[0])) ** 3, 0.16, 1))
    cavity = (((x - o[1]) / pat.cav_a) ** 2 + ((y - o[2]) / pat.cav_b) ** 2) < taper**2
    diaphragm = pat.diaphragm(x, y)  # (1, H, W)
    thorax = cavity & (z > diaphragm)
    abdomen = cavity & ~thorax
    vol[thorax] = MEDIASTINAL_FAT
    liver = x < o[1] + 25 * pat.stretch[1]
    vol[:] = np.where(abdomen, np.where(liver, np.float32(60), np.float32(35)), vol)
    gas = pat.pts["dome_left"] + np.array([-22.0, 0, -5]) * pat.stretch
    _paint_ellipsoid(cv, gas, (12, 30, 24), AIR, keep=abdomen)  # gastric fundus gas under the left dome

    # Lungs: ellipsoids cut by the cavity, the diaphragm, the mediastinum and the paravertebral block.
    midline = o[1] + 3
    upper = z > pat.pts["carina"][0] - 10
    slab = np.abs(x - midline) < np.where(upper, np.float32(22), np.float32(9))
    vb = pat.pts["vertebra"]
    spine_block = ((x - vb[1]) ** 2 + (y - vb[2]) ** 2 < (23 * pat.stretch[1]) ** 2) | (
        (np.abs(x - vb[1]) < 16) & (y > vb[2])
    )
    lung = {}
    for side in ("right", "left"):
        c, semi = pat.at(_TEMPLATE[f"lung_{side}"]), np.asarray(_LUNG_SEMI[side]) * pat.stretch
        ell = ((x - c[1]) / semi[1]) ** 2 + ((y - c[2]) / semi[2]) ** 2 + np.abs((z - c[0]) / semi[0]) ** 3 < 1
        half = (x < midline) if side == "right" else (x >= midline)
        lung[side] = ell & thorax & half & ~slab & ~spine_block
    lungs = lung["right"] | lung["left"]
    gradient = (y - o[2]) / pat.cav_b * 45  # dependent lung is denser
    vol[:] = np.where(lungs, np.float32(pat.lung_hu) + gradient, vol)

    # Mediastinum and heart; `big` collects structures the lungs give way to.
    big = np.zeros(cv.shape, bool)
    heart = np.zeros(cv.shape, bool)
    hc, hs, hb = pat.heart_center, pat.heart_semi, pat.heart_basis
    _paint_ellipsoid(cv, hc, hs + _EPICARDIAL_FAT, -95.0, hb, record=big)
    _paint_ellipsoid(cv, hc, hs, BLOOD, hb, keep=cavity, record=heart)
    aorta_path, aorta_radii = _aorta_path(pat)
    protect = heart.copy()
    aorta = np.zeros(cv.shape, bool)
    _paint_tube(cv, aorta_path, aorta_radii, BLOOD, record=aorta)
    arch = aorta_path[2:-3]
    vessels = [  # (points, radius)
        ([pat.pts["svc_top"], pat.pts["svc_low"]], 9),
        ([pat.pts["pa_root"], pat.pts["pa_fork"]], 13),
        ([pat.pts["pa_fork"], pat.pts["rpa_mid"], pat.pts["rpa_end"]], 10),
        ([pat.pts["pa_fork"], pat.pts["lpa_mid"], pat.pts["lpa_end"]], 10),
        ([arch[1], pat.at((260, -14, -26))], 7),  # brachiocephalic trunk
        ([arch[3], pat.at((260, 14, -16))], 5),  # left common carotid
        ([arch[4], pat.at((260, 34, 0))], 6),  # left subclavian
        ([pat.pts["esophagus_top"], pat.pts["esophagus_mid"], pat.pts["hiatus"]], 8),
    ]
    for points, radius in vessels:
        _paint_tube(cv, points, radius * pat.stretch[1:].mean(), SOFT, record=big)
    for side, path, radii in pat.vessel_paths:  # pulmonary vessels, inside the lung only
        _paint_tube(cv, path, np.array(radii) * pat.stretch[1:].mean(), BLOOD, keep=lung[side])

    # Airways: trachea and main/lobar bronchi with a soft-tissue wall.
    airway = np.zeros(cv.shape, bool)
    car = pat.pts["carina"]
    trees = [
        ([pat.pts["trachea_top"], car], 9.0),
        ([car, pat.pts["rmb"], pat.pts["bi"]], 6.5),
        ([pat.pts["rmb"], pat.pts["rul"]], 4.5),
        ([car, pat.pts["lmb"], pat.pts["lll"]], 6.0),
        ([pat.pts["lmb"], pat.pts["lul"]], 4.5),
    ]
    for points, radius in trees:
        _paint_tube(cv, points, radius + 2.0, SOFT, record=big)
    for points, radius in trees:
        _paint_tube(cv, points, radius, AIR, record=airway)

    bone = _paint_bones(cv, pat, diaphragm)
    protect |= aorta | airway | bone
    for side in lung:
        lung[side] &= ~(big | heart | aorta | airway | bone)
    lobes = np.zeros(cv.shape, np.int8)
    oblique_slope = (car[0] + 5 - pat.pts["dome_right"][0] + 20) / (2 * pat.cav_b)
    lower = z < car[0] + 5 + (y - (o[2] + pat.cav_b)) * oblique_slope
    fissure = pat.pts["heart"][0] + 30 * pat.stretch[0]
    lobes[lung["right"]] = 1
    lobes[lung["right"] & ~lower & (z < fissure)] = 2
    lobes[lung["right"] & lower] = 3
    lobes[lung["left"]] = 4
    lobes[lung["left"] & lower] = 5
    return _Scene(cv, pat, lung, lobes, protect, heart, bone, aorta_path, aorta_radii, float(fissure))


def _paint_bones(cv: _Canvas, pat: _Patient, diaphragm: np.ndarray) -> np.ndarray:
    """Vertebrae (cortical rim, discs, posterior arch), ribs in the chest wall, sternum; returns the bone mask."""
    x2, y2 = cv.x[0], cv.y[0]  # (H, 1), (1, W)
    o, st = pat.origin, pat.stretch
    bone = np.zeros(cv.shape, bool)
    vb, canal = pat.pts["vertebra"], pat.pts["canal"]
    r_body = 17 * st[1:].mean()
    rv = np.sqrt((x2 - vb[1]) ** 2 + (y2 - vb[2]) ** 2)
    rc = np.sqrt((x2 - canal[1]) ** 2 + (y2 - canal[2]) ** 2)
    arch = (rc > 8) & (rc < 14) & (y2 > canal[2] - 6)
    process = (np.abs(x2 - canal[1]) < 4) & (y2 > canal[2]) & (y2 < canal[2] + 34)
    transverse = (np.abs(x2 - canal[1]) < 30) & (np.abs(y2 - canal[2] + 3) < 5)
    posterior = arch | process | transverse  # (H, W); per vertebra below
    pitch = 30 * st[0]
    level = ((cv.z - o[0]) / pitch + pat.rib_phase) % 1.0  # (D, 1, 1): position within a vertebra
    disc = level < 0.2
    posterior = posterior & (np.abs(level - 0.55) < 0.33)  # one arch and process per vertebra
    body2 = rv < r_body
    rim2 = body2 & (rv > r_body - 4)
    hu_body = np.where(rim2, np.float32(700), np.float32(300))
    extent = body2 | arch | process | transverse
    rows, cols = np.flatnonzero(np.any(extent, axis=1)), np.flatnonzero(np.any(extent, axis=0))
    if rows.size:  # painted in the spine's bounding box only
        sl = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        sub = cv.vol[sl]
        b2, p2, hb = body2[sl[1:]], posterior[:, sl[1], sl[2]], hu_body[sl[1:]]
        sub[:] = np.where(b2, np.where(disc, np.float32(80), hb), sub)
        sub[:] = np.where(p2, np.float32(550), sub)
        sub[:] = np.where(rc[sl[1:]] <= 8, np.float32(30), sub)  # spinal cord
        bone[sl] = (b2 & ~disc) | p2

    # Ribs: bands in a shell just outside the cavity, sloping down anteriorly, absent at the midline.
    ring = (x2 - o[1]) ** 2 / pat.cav_a**2 + (y2 - o[2]) ** 2 / pat.cav_b**2
    shell = (ring > 1.02) & (ring < (1 + 11 / pat.cav_b) ** 2)
    shell &= ~((np.abs(x2 - o[1]) < 24) & (y2 < o[2]))  # costal cartilage / sternum
    shell &= ~((np.abs(x2 - o[1]) < 30) & (y2 > o[2]))  # spine
    xi, yi = np.nonzero(shell)
    slope = (cv.axes[2][yi] - o[2]) / pat.cav_b * 50  # posterior ends higher
    phase = (cv.axes[0][:, None] - o[0] - slope[None, :]) / pat.rib_pitch + pat.rib_phase
    top = pat.at(_TEMPLATE["lung_right"])[0] + 225 * st[0]
    rib = ((phase % 1.0) < 11 / pat.rib_pitch) & (cv.axes[0][:, None] < top)
    rib &= cv.axes[0][:, None] > diaphragm[0][xi, yi][None, :] - 45
    zi, k = np.nonzero(rib)
    cv.vol[zi, xi[k], yi[k]] = 600
    bone[zi, xi[k], yi[k]] = True

    # Sternum: anterior midline plate from the manubrium to the xiphoid.
    top_z, low_z = pat.pts["carina"][0] + 70 * st[0], pat.pts["heart"][0] - 45 * st[0]
    front = o[2] - pat.cav_b
    found = cv.box((low_z, o[1] - 26, front - 20), (top_z, o[1] + 26, front))
    if found is not None:
        sl, (gz, gx, gy) = found
        half = np.where(gz > pat.pts["carina"][0] + 30, np.float32(24), np.float32(15))
        inner = (np.abs(gx - o[1]) < half - 3) & (np.abs(gy - front + 9) < 3)
        outer = (np.abs(gx - o[1]) < half) & (np.abs(gy - front + 9) < 6.5)
        cv.vol[sl] = np.where(outer, np.where(inner, np.float32(300), np.float32(650)), cv.vol[sl])
        bone[sl] |= outer
    return bone


# ----------------------------------------------------------------------------------------------------------------
# Abnormalities. Each label has a plan (drawn before the anatomy: may edit the patient) and a renderer that paints
# the lesion and returns its Finding and the voxel of its centre. Each uses only its own random stream.

Plan = dict
Rendered = tuple[Finding, tuple[int, int, int]]


def _no_plan(rng: np.random.Generator, pat: _Patient) -> Plan:
    return {}


def _lung_spot(scene: _Scene, rng: np.random.Generator, mask: np.ndarray, radius: float, tries: int = 40):
    """A voxel of `mask` whose neighbourhood within ~`radius` mm stays in the lungs (falls back to any voxel)."""
    cv = scene.cv
    lungs = scene.lung["right"] | scene.lung["left"]
    first = None
    for _ in range(tries):
        idx = _pick(rng, mask)
        if idx is None:
            return None
        first = first or idx
        p = cv.point(idx)
        probes = p + radius * np.array([[0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1], [1, 0, 0], [-1, 0, 0]])
        if all(lungs[cv.index(q)] for q in probes):
            return idx
    return first


def _render_nodule(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    cv, lungs = scene.cv, scene.lung["right"] | scene.lung["left"]
    count = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
    nodules = []
    for _ in range(count):
        size = float(round(4 + 26 * rng.beta(1.3, 3.0)))
        side = "right" if rng.random() < 0.55 else "left"
        idx = _lung_spot(scene, rng, scene.lung[side], 0.6 * size)
        if idx is None:
            continue
        semi = size / 2 * rng.uniform(0.85, 1.0, 3)
        semi[rng.integers(3)] = size / 2
        _paint_ellipsoid(cv, cv.point(idx), semi, rng.uniform(20, 45), keep=lungs)
        nodules.append((size, side, idx))
    size, _, idx = max(nodules)
    finding = Finding(
        "Lung nodule",
        side=_sides(n[1] for n in nodules),
        location=scene.lobe_name(idx),
        size_mm=size,
        count=len(nodules),
    )
    return finding, idx


def _plan_effusion(rng: np.random.Generator, pat: _Patient) -> Plan:
    side = str(rng.choice(["right", "left", "bilateral"], p=[0.35, 0.25, 0.4]))
    depth = float(round(rng.uniform(15, 80)))
    return {"sides": ["right", "left"] if side == "bilateral" else [side], "side": side, "depth": depth}


def _dependent(cv: _Canvas, lung: np.ndarray, depth: float, height: float) -> np.ndarray:
    """The dependent (posterior) layer of a lung's base, as fluid settles in a supine patient.

    `depth` mm thick at the lung base, thinning to nothing `height` mm higher; it follows the posterior chest wall
    column by column, thickest where the wall is most posterior and thinner where the wall turns forward.
    """
    slices = np.flatnonzero(lung.any(axis=(1, 2)))
    if slices.size == 0:
        return np.zeros_like(lung)
    thickness = depth * np.clip(1 - (cv.axes[0] - cv.axes[0][slices[0]]) / height, 0, 1) ** 0.6  # (D,)
    last = cv.shape[2] - 1 - np.argmax(lung[..., ::-1], axis=2)  # (D, H): most posterior lung voxel per column
    wall = np.where(lung.any(axis=2), cv.axes[2][last], np.float32(-1e4))
    deepest = wall.max(axis=1, keepdims=True)
    share = np.clip(1 - (deepest - wall) / 60, 0.3, 1)  # thinner where the wall lies further forward
    limit = np.minimum(wall - thickness[:, None] * share, deepest - 1.2 * thickness[:, None])
    return lung & (cv.y > limit[:, :, None]) & (thickness > 0)[:, None, None]


def _render_effusion(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Free fluid: a posterior crescent along the lung base, tapering upward."""
    cv = scene.cv
    fluid_all = np.zeros(cv.shape, bool)
    for side in plan["sides"]:
        depth = plan["depth"] * (rng.uniform(0.7, 1.0) if len(plan["sides"]) > 1 else 1.0)
        fluid = _dependent(cv, scene.lung[side], depth, 30 + 1.5 * depth)
        cv.vol[fluid] = FLUID + rng.uniform(-3, 8)
        fluid_all |= fluid
    severity = _grade(plan["depth"], 25, 45)
    side = plan["side"]
    main = fluid_all & scene.lung["left" if side == "left" else "right"]
    main = main if main.any() else fluid_all
    per_slice = main.sum(axis=(1, 2))  # centre: the highest slice with much fluid (aerated lung still in view)
    shown = np.zeros_like(main)
    shown[np.flatnonzero(per_slice >= 0.6 * per_slice.max())[-1]] = True
    center = _central_voxel(main & shown)
    return Finding("Pleural effusion", side=side, size_mm=plan["depth"], severity=severity), center


def _plan_cardiomegaly(rng: np.random.Generator, pat: _Patient) -> Plan:
    """The heart grows mostly across and backward (ventricles), and leftward."""
    grow = rng.uniform(1.14, 1.42)
    pat.heart_scale = pat.heart_scale * np.array([1 + (grow - 1) * 0.7, grow, grow])
    pat.heart_shift = pat.heart_shift + np.array([-4.0, 8.0, 4.0]) * (grow - 1) / 0.3
    return {"severity": _grade(grow, 1.22, 1.32)}


def _render_cardiomegaly(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    return Finding("Cardiomegaly", severity=plan["severity"]), scene.cv.index(scene.pat.heart_center)


def _render_pericardial(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Fluid between heart and pericardium, thicker dependently (posteriorly)."""
    cv, pat = scene.cv, scene.pat
    thickness = float(round(rng.uniform(8, 35)))
    center = pat.heart_center + np.array([-0.2, 0.0, 0.3]) * thickness
    found = _paint_ellipsoid(
        cv, center, pat.heart_semi + _EPICARDIAL_FAT + thickness, FLUID, pat.heart_basis, keep=~scene.protect
    )
    sl, _ = found
    fat = cv.alpha(
        _ellipsoid_distance(cv.box_grids(sl), pat.heart_center, pat.heart_semi + _EPICARDIAL_FAT, pat.heart_basis)
    )
    cv.blend(sl, fat, -95.0, keep=~scene.protect)  # the epicardial fat stripe stays between heart and fluid
    finding = Finding("Pericardial effusion", size_mm=thickness, severity=_grade(thickness, 10, 20))
    return finding, cv.index(pat.heart_center)


def _plan_emphysema(rng: np.random.Generator, pat: _Patient) -> Plan:
    severity = str(rng.choice(["mild", "moderate", "severe"], p=[0.45, 0.35, 0.2]))
    if severity == "severe":  # hyperinflation flattens the diaphragm
        pat.dome_shift = {side: shift - 10 for side, shift in pat.dome_shift.items()}
    return {"severity": severity, "kind": str(rng.choice(["centrilobular", "paraseptal"], p=[0.65, 0.35]))}


def _render_emphysema(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Darker, upper-predominant parenchyma with lucencies: small and scattered (centrilobular) or subpleural."""
    cv, pat = scene.cv, scene.pat
    level = ["mild", "moderate", "severe"].index(plan["severity"])
    lungs = scene.lung["right"] | scene.lung["left"]
    low, high = pat.pts["dome_right"][0], pat.pts["carina"][0] + 40
    weight = np.clip((cv.z - low) / (high - low), 0.25, 1.0)
    darken = np.float32([-45, -70, -95][level]) * weight
    parenchyma = np.clip((BLOOD - cv.vol) / (BLOOD - LUNG), 0, 1)
    cv.vol[:] = np.where(lungs, cv.vol + darken * parenchyma, cv.vol)
    upper = lungs & (cv.z > (low + high) / 2)
    if plan["kind"] == "centrilobular":
        count, radii, pool = [60, 100, 160][level], (3.0, 7.5), upper
    else:
        count, radii, pool = [10, 18, 28][level], (6.0, 15.0), _rim(lungs) & upper
    bullae = []
    for _ in range(count):
        source = pool if rng.random() < 0.85 else lungs
        idx = _pick(rng, source)
        if idx is None:
            break
        r = rng.uniform(*radii)
        _paint_ellipsoid(cv, cv.point(idx), (r, r, r), -995.0, keep=lungs)
        bullae.append((r, idx))
    center = max(bullae)[1] if bullae else _central_voxel(upper)
    finding = Finding(
        "Emphysema", side="bilateral", location="upper lobes", severity=plan["severity"], kind=plan["kind"]
    )
    return finding, center


def _blob(scene: _Scene, rng: np.random.Generator, center: np.ndarray, size: float, parts: int = 3):
    """Union of overlapping ellipsoids around `center`, about `size` mm across: (slices, signed distance)."""
    cv = scene.cv
    reach = size + cv.ramp
    found = cv.box(center - reach, center + reach)
    sl, grids = found
    distance = None
    for k in range(parts):
        c = center + (rng.uniform(-0.25, 0.25, 3) * size if k else 0)
        semi = size / 2 * rng.uniform(0.6, 1.0, 3)
        d = _ellipsoid_distance(grids, c, semi)
        distance = d if distance is None else np.minimum(distance, d)
    return sl, distance


_LOBE_WEIGHTS = {1: 0.16, 2: 0.1, 3: 0.29, 4: 0.16, 5: 0.29}


def _pick_lobe(scene: _Scene, rng: np.random.Generator, weights=_LOBE_WEIGHTS) -> int:
    """A lobe drawn with `weights` among the lobes the field of view holds."""
    present = set(np.unique(scene.lobes).tolist())
    lobes = [k for k in weights if k in present]
    p = np.array([weights[k] for k in lobes])
    return int(rng.choice(lobes, p=p / p.sum()))


def _render_consolidation(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """A dense pleural-based region confined to one lobe (sharp at fissures) with air bronchograms."""
    cv, pat = scene.cv, scene.pat
    lobe = _pick_lobe(scene, rng)
    in_lobe = scene.lobes == lobe
    side = "right" if lobe <= 3 else "left"
    size = float(round(rng.uniform(40, 90)))
    costal = _rim(in_lobe) & (
        (np.abs(cv.x - pat.origin[1]) > 0.55 * pat.cav_a) | (cv.y > pat.origin[2] + 0.5 * pat.cav_b)
    )
    pleura = cv.point(_pick(rng, costal) or _pick(rng, in_lobe))  # against the chest wall, not the heart
    inward = _unit(pat.pts[f"hilum_{side}"] - pleura)
    depths = (0.3, 0.2, 0.1, 0.0)  # inward from the pleura, staying inside the lobe
    center = next((c for c in (pleura + inward * size * f for f in depths) if in_lobe[cv.index(c)]), pleura)
    idx = cv.index(center)
    sl, distance = _blob(scene, rng, center, size, parts=4)
    alpha = cv.blend(sl, cv.alpha(distance), rng.uniform(15, 40), keep=in_lobe)
    dense = np.zeros(cv.shape, bool)
    dense[sl] = alpha > 0.6
    inside = np.argwhere(dense)
    if inside.size:  # air bronchograms: branching from the hilar end of the region toward its far parts
        points = (inside - (np.array(cv.shape) - 1) / 2) * np.array(cv.spacing)  # voxel centres in mm
        root = points[np.argmin(np.linalg.norm(points - pat.pts[f"hilum_{side}"], axis=1))]
        for _ in range(int(rng.integers(3, 6))):
            end = points[rng.integers(len(points))]
            bend = (root + end) / 2 + rng.uniform(-4, 4, 3)
            _paint_tube(cv, [root, bend, end], [3.0, 2.5, 1.8], -900.0, keep=dense)
    finding = Finding(
        "Consolidation", side=side, location=scene.lobe_name(idx), size_mm=size, severity=_grade(size, 45, 70)
    )
    return finding, idx


def _render_opacity(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Ground-glass patches: hazy raised attenuation that leaves vessels visible."""
    cv = scene.cv
    lungs = scene.lung["right"] | scene.lung["left"]
    patches = []
    for _ in range(int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))):
        lobe = _pick_lobe(scene, rng, {1: 0.2, 2: 0.1, 3: 0.25, 4: 0.2, 5: 0.25})
        size = float(round(rng.uniform(20, 70)))
        idx = _lung_spot(scene, rng, scene.lobes == lobe, size / 4)
        sl, distance = _blob(scene, rng, cv.point(idx), size)
        alpha = cv.alpha(distance, ramp=10.0) * lungs[sl]
        target = np.float32(rng.uniform(-600, -480))
        view = cv.vol[sl]
        view[:] = np.maximum(view, view + alpha * (target - view))
        patches.append((size, "right" if lobe <= 3 else "left", idx))
    size, _, idx = max(patches)
    finding = Finding(
        "Lung opacity",
        side=_sides(p[1] for p in patches),
        location=scene.lobe_name(idx),
        size_mm=size,
        count=len(patches),
        kind="ground-glass",
    )
    return finding, idx


def _plan_atelectasis(rng: np.random.Generator, pat: _Patient) -> Plan:
    kind = str(rng.choice(["linear", "subsegmental", "passive"], p=[0.4, 0.3, 0.3]))
    side = "right" if rng.random() < 0.5 else "left"
    if kind == "passive":  # volume loss: the hemidiaphragm rises
        pat.dome_shift = {**pat.dome_shift, side: pat.dome_shift[side] + rng.uniform(8, 16)}
    return {"kind": kind, "side": side}


def _paint_plate(cv: _Canvas, center, normal, radius: float, half_thickness: float, hu: float, keep=None):
    """Paint a disc (a plate of lung collapse or scar) of `radius` mm across and 2 × `half_thickness` thick."""
    found = cv.box(center - radius - cv.ramp, center + radius + cv.ramp)
    if found is None:
        return
    sl, grids = found
    d = [g - np.float32(c) for g, c in zip(grids, center, strict=True)]
    h = normal[0] * d[0] + normal[1] * d[1] + normal[2] * d[2]
    rho = np.sqrt(np.maximum(d[0] ** 2 + d[1] ** 2 + d[2] ** 2 - h**2, 0))
    cv.blend(sl, cv.alpha(np.maximum(np.abs(h) - half_thickness, rho - radius)), hu, keep=keep)


def _render_atelectasis(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    cv, pat = scene.cv, scene.pat
    side, kind = plan["side"], plan["kind"]
    lung = scene.lung[side]
    if kind == "linear":  # a thin, nearly horizontal plate in a lower lobe, the middle lobe or the lingula
        lobe = int(rng.choice([3, 2], p=[0.6, 0.4]) if side == "right" else rng.choice([5, 4], p=[0.6, 0.4]))
        pool = (scene.lobes == lobe) & (cv.z < scene.horizontal_fissure)
        radius = rng.uniform(15, 30)
        idx = _lung_spot(scene, rng, pool if pool.any() else lung, radius / 2)
        normal = _unit(np.array([1.0, 0, 0]) + rng.uniform(-0.5, 0.5, 3))
        _paint_plate(cv, cv.point(idx), normal, radius, rng.uniform(2.5, 4.0), rng.uniform(-20, 20), keep=lung)
        size = float(round(2 * radius))
    elif kind == "subsegmental":  # two or three small pleural-based plates at the base
        base = lung & (scene.lobes != 1) & (scene.lobes != 4) & (cv.z < pat.pts["carina"][0] - 40)
        rim = _rim(lung) & base
        size, idx = 0.0, None
        for _ in range(int(rng.integers(2, 4))):
            spot = _pick(rng, rim if rim.any() else lung)
            radius = rng.uniform(9, 15)
            inward = _unit(pat.pts[f"hilum_{side}"] - cv.point(spot)) * np.array([0.3, 1, 1])
            center = cv.point(spot) + inward * radius * 0.6
            normal = _unit(np.cross(inward, rng.normal(size=3)))
            _paint_plate(cv, center, normal, radius, rng.uniform(2.0, 3.0), rng.uniform(-20, 20), keep=lung)
            idx = idx or spot
            size = max(size, float(round(2 * radius)))
    else:  # passive: dense dependent lung at the posterior base
        depth = rng.uniform(12, 28)
        dense = _dependent(cv, lung, depth, 50 + 2 * depth)
        cv.vol[dense] = rng.uniform(20, 45)
        idx = _central_voxel(dense)
        size = float(round(depth))
    location = scene.lobe_name(idx) if kind != "passive" else f"{side} lower lobe"
    return Finding("Atelectasis", side=side, location=location, size_mm=size, kind=kind), idx


def _render_arterial_calcification(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Plaques on the aortic wall: 1-3 bright spots each, along the arch and the descending aorta."""
    cv = scene.cv
    path, radii = scene.aorta_path, scene.aorta_radii
    count = int(rng.integers(3, 26))
    segment_names = []
    spots = []
    lo, hi = cv.point((0, 0, 0)), cv.point(np.array(cv.shape) - 1)
    for _ in range(count):
        for _attempt in range(30):  # a point of the aorta inside the field of view
            seg, t = int(rng.integers(len(path) - 1)), rng.uniform(0, 1)
            p0, p1 = path[seg], path[seg + 1]
            center, radius = p0 + t * (p1 - p0), radii[seg] + t * (radii[seg + 1] - radii[seg])
            if np.all(center > lo + radius) and np.all(center < hi - radius):
                break
        tangent = _unit(p1 - p0)
        n1 = _unit(np.cross(tangent, [0.3, 1.0, 0.2]))
        n2 = np.cross(tangent, n1)
        phi = rng.uniform(0, 2 * np.pi)
        hu = rng.uniform(400, 900)
        for k in range(int(rng.integers(1, 4))):
            angle = phi + 0.3 * k
            spot = center + (radius - 1.0) * (np.cos(angle) * n1 + np.sin(angle) * n2)
            r = rng.uniform(2.0, 3.5)
            _paint_ellipsoid(cv, spot, (r, r, r), hu, keep=~scene.bone)
            spots.append((hu, spot))
        cv.stamp(np.array([s for _, s in spots[-(k + 1) :]]), hu, keep=~scene.bone)
        part = "ascending aorta" if seg == 0 else "aortic arch" if seg <= len(path) - 4 else "descending aorta"
        segment_names.append(part)
    names = sorted(set(segment_names))
    location = names[0] if len(names) == 1 else "thoracic aorta"
    severity = _grade(count, 6, 13)
    finding = Finding("Arterial wall calcification", location=location, count=count, severity=severity)
    return finding, cv.index(max(spots, key=lambda s: s[0])[1])


_CORONARIES = {  # name → (surface parameter along the base→apex axis, world directions the path sweeps)
    "left anterior descending": ((-0.5, 0.85), ((0.0, 0.3, -1.0),)),
    "left circumflex": ((-0.55, -0.55), ((0.0, 0.8, -0.6), (0.0, 1.0, 0.2), (-0.3, 0.5, 1.0))),
    "right coronary": ((-0.55, -0.55), ((0.0, -0.6, -1.0), (0.0, -1.0, 0.0), (-1.0, -0.4, 0.3))),
}


def _coronary_path(pat: _Patient, name: str, n: int = 24) -> np.ndarray:
    """Points along a coronary artery on the heart's surface (3 mm out, in the epicardial fat)."""
    (s0, s1), directions = _CORONARIES[name]
    c, semi, (u, v, w) = pat.heart_center, pat.heart_semi, pat.heart_basis
    angles = np.unwrap([math.atan2((np.asarray(d) @ w) / semi[2], (np.asarray(d) @ v) / semi[1]) for d in directions])
    t = np.linspace(0, 1, n)
    s = s0 + (s1 - s0) * t
    phi = np.interp(t, np.linspace(0, 1, len(angles)), angles) if len(angles) > 1 else np.full(n, angles[0])
    ring = np.sqrt(1 - s**2)[:, None]
    around = semi[1] * np.cos(phi)[:, None] * v + semi[2] * np.sin(phi)[:, None] * w
    surface = c + semi[0] * s[:, None] * u + ring * around
    out = surface - c
    return c + out * (1 + 3 / np.linalg.norm(out, axis=1, keepdims=True))


def _render_coronary_calcification(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    cv = scene.cv
    chosen = [name for name, p in zip(_CORONARIES, (0.85, 0.45, 0.5), strict=True) if rng.random() < p]
    chosen = chosen or ["left anterior descending"]
    spots = []
    for name in chosen:
        path = _coronary_path(scene.pat, name)
        for _ in range(int(rng.integers(1, 7))):
            for _attempt in range(10):  # proximal spots are likelier; none where the sternum touches the heart
                point = path[min(int(rng.beta(1.2, 2.5) * len(path)), len(path) - 1)]
                if not scene.bone[cv.index(point)]:
                    break
            r, hu = rng.uniform(2.0, 3.5), rng.uniform(400, 900)
            _paint_ellipsoid(cv, point, (r, r, r), hu, keep=~scene.bone)
            cv.stamp(point[None], hu, keep=~scene.bone)
            spots.append((hu, point))
    location = _join(chosen) + (" artery" if len(chosen) == 1 else " arteries")
    severity = _grade(len(spots), 4, 9)
    finding = Finding("Coronary artery wall calcification", location=location, count=len(spots), severity=severity)
    return finding, cv.index(max(spots, key=lambda s: s[0])[1])


def _render_material(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """A pacemaker with its leads, a central venous port with its catheter, or sternotomy wires."""
    cv, pat, st = scene.cv, scene.pat, scene.pat.stretch
    kind = str(rng.choice(["pacemaker lead", "central venous port", "sternotomy wires"], p=[0.4, 0.3, 0.3]))
    svc = [pat.pts["svc_top"] * np.array([0, 1, 1]) + np.array([pat.pts["carina"][0] + 45, 0, 0]), pat.pts["svc_low"]]
    count, side, location = None, None, None
    if kind in ("pacemaker lead", "central venous port"):
        side = "left" if (rng.random() < 0.8) == (kind == "pacemaker lead") else "right"
        sign = _SIGN[side]
        device = pat.at((95, sign * 58, 0))
        device[2] = pat.front_of_wall(device[1]) - 4  # subcutaneous, on the pectoral muscle
        entry = pat.at((100, sign * 35, 0))
        entry[2] = pat.origin[2] - pat.cav_b + 12
        along = _unit([0.0, 2.0, pat.front_of_wall(device[1] + 1) - pat.front_of_wall(device[1] - 1)])
        flat = np.stack([[1.0, 0.0, 0.0], along, np.cross([1.0, 0.0, 0.0], along)])  # lies along the chest wall
        if kind == "pacemaker lead":
            _paint_ellipsoid(cv, device, (22, 24, 4), METAL, flat)
            tips = [pat.heart_center + pat.heart_basis[0] * pat.heart_semi[0] * 0.7]  # right ventricular apex
            if rng.random() < 0.5:
                tips.append(pat.pts["svc_low"] + np.array([-25.0, 6.0, -12.0]))  # right atrial appendage
            for tip in tips:
                path = [device, entry, svc[0], svc[1], tip]
                _paint_tube(cv, path, 1.3, METAL)
                cv.stamp(_densify(path, 1.0), METAL)
            count, location = len(tips), f"{side} anterior chest wall"
        else:
            _paint_ellipsoid(cv, device, (12, 13, 6), METAL, flat)
            path = [device, entry, svc[0], svc[1] + np.array([-8.0, 0, 0])]
            _paint_tube(cv, path, 1.3, 1500.0)
            cv.stamp(_densify(path, 1.0), 1500.0)
            location = f"{side} anterior chest wall"
        center = cv.index(device)
    else:
        count = int(rng.integers(4, 8))
        sternum_y = pat.origin[2] - pat.cav_b - 9
        top, low = pat.pts["carina"][0] + 55 * st[0], pat.pts["heart"][0] - 35 * st[0]
        angles = np.linspace(0, 2 * np.pi, 17)
        centers = []
        for z in np.linspace(top, low, count):
            loop = np.stack([np.full(17, z), pat.origin[1] + 19 * np.cos(angles), sternum_y + 10 * np.sin(angles)], 1)
            _paint_tube(cv, loop, 1.0, METAL)
            cv.stamp(_densify(loop, 1.0), METAL)
            centers.append(loop[4])
        center, location = cv.index(centers[count // 2]), "sternum"
    return Finding("Medical material", side=side, location=location, count=count, kind=kind), center


def _render_hernia(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """A sac of stomach above the hiatus behind the heart: wall, dependent fluid, gas in front."""
    cv, pat = scene.cv, scene.pat
    size = float(round(rng.uniform(28, 75)))
    semi = np.array([0.36, 0.5, 0.42]) * size
    vertebra = pat.pts["vertebra"]
    x, y = pat.pts["hiatus"][1] - 6, vertebra[2] - 16 - 0.8 * semi[2]
    center = np.array([float(pat.diaphragm(x, y)) + 0.8 * semi[0], x, y])  # sits on the hiatus
    keep = ~(scene.protect & ~scene.heart)  # the sac indents the heart but not the aorta, airways or bone
    _paint_ellipsoid(cv, center, semi, SOFT, keep=keep)
    inner = semi - 3.0
    found = cv.box(center - inner.max(), center + inner.max())
    sl, grids = found
    alpha = cv.alpha(_ellipsoid_distance(grids, center, inner)) * keep[sl]
    gas_level = center[2] - semi[2] * rng.uniform(-0.1, 0.5)
    content = np.where(grids[2] < gas_level, np.float32(AIR), np.float32(rng.uniform(5, 30)))
    cv.blend(sl, alpha, content)
    finding = Finding("Hiatal hernia", size_mm=size, severity=_grade(size, 40, 55))
    return finding, cv.index(center)


def _render_nodes(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Enlarged (>10 mm short axis) nodes at 1-4 mediastinal or hilar stations."""
    cv, pat = scene.cv, scene.pat
    names = list(_NODE_STATIONS)
    count = int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1]))
    weights = np.array([_NODE_STATIONS[n][2] for n in names])
    stations = [names[k] for k in sorted(rng.choice(len(names), size=count, replace=False, p=weights / weights.sum()))]
    nodes = []
    keep = ~scene.protect
    for station in stations:
        offset = _NODE_STATIONS[station][0]
        short = float(round(rng.uniform(12, 28)))
        center = pat.pts["carina"] + np.asarray(offset) * pat.stretch + rng.uniform(-4, 4, 3)
        semi = np.array([short * rng.uniform(0.6, 0.8), short / 2, short / 2 * rng.uniform(1.0, 1.15)])
        _paint_ellipsoid(cv, center, semi, rng.uniform(30, 45), keep=keep)
        nodes.append((short, station, center))
    short, station, center = max(nodes, key=lambda n: n[0])
    finding = Finding(
        "Lymphadenopathy",
        side=_sides(side for _, s, _ in nodes if (side := _NODE_STATIONS[s][1])),
        location=_join([s for _, s, _ in nodes]),
        size_mm=short,
        count=len(nodes),
    )
    return finding, cv.index(center)


def _render_bronchiectasis(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Dilated, thick-walled airways reaching the lower-lobe periphery (normal bronchi are too small to show)."""
    cv, pat = scene.cv, scene.pat
    side = str(rng.choice(["right", "left", "bilateral"], p=[0.35, 0.25, 0.4]))
    kind = str(rng.choice(["cylindrical", "varicose"], p=[0.7, 0.3]))
    sides = ["right", "left"] if side == "bilateral" else [side]
    count, mids = 0, []
    for s in sides:
        start = pat.pts["bi"] if s == "right" else pat.pts["lll"]
        lung = scene.lung[s]
        for _ in range(int(rng.integers(2, 5))):
            direction = _unit(np.array([-0.8, _SIGN[s] * 0.45, 0.5]) + rng.uniform(-0.45, 0.45, 3))
            length = rng.uniform(50, 85)
            t = np.linspace(0, 1, 7)[:, None]
            path = start + direction * length * t + rng.uniform(-3, 3, (7, 3)) * t
            lumen = rng.uniform(3.5, 5.5) * np.ones(7)
            if kind == "varicose":
                lumen = lumen * np.array([1.0, 1.35, 0.8, 1.4, 0.85, 1.35, 1.1])
            _paint_tube(cv, path, lumen + 2.2, -60.0, keep=lung)
            _paint_tube(cv, path, lumen, AIR, keep=lung)
            mids.append(path[3])
            count += 1
    lungs = scene.lung["right"] | scene.lung["left"]
    center = next((cv.index(m) for m in mids if lungs[cv.index(m)]), cv.index(mids[0]))
    location = f"{side} lower lobe" if side != "bilateral" else "lower lobes"
    return Finding("Bronchiectasis", side=side, location=location, count=count, kind=kind), center


def _render_mosaic(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Geographic patches of lower and higher lung attenuation with sharp borders, in both lungs."""
    cv = scene.cv
    lungs = scene.lung["right"] | scene.lung["left"]
    idx = np.nonzero(lungs)
    coords = [cv.axes[a][idx[a]] for a in range(3)]
    field_ = np.zeros(idx[0].size, np.float32)
    for _ in range(7):
        k = _unit(rng.normal(size=3)) * 2 * np.pi / rng.uniform(35, 75)
        field_ += np.cos(k[0] * coords[0] + k[1] * coords[1] + k[2] * coords[2] + rng.uniform(0, 2 * np.pi))
    dark = field_ > rng.uniform(-0.4, 0.4) * field_.std()
    delta = np.where(dark, np.float32(rng.uniform(-75, -50)), np.float32(rng.uniform(90, 140)))
    values = cv.vol[idx]
    parenchyma = np.clip((BLOOD - values) / (BLOOD - LUNG), 0, 1)
    cv.vol[idx] = values + delta * parenchyma
    darkest = np.zeros(cv.shape, bool)
    darkest[tuple(i[dark] for i in idx)] = True
    dark_right = darkest & scene.lung["right"]
    center = _central_voxel(dark_right) if dark_right.any() else _pick(rng, lungs)
    return Finding("Mosaic attenuation pattern", side="bilateral"), center


def _render_fibrosis(scene: _Scene, rng: np.random.Generator, plan: Plan) -> Rendered:
    """Sequelae: irregular fibrotic bands running to the pleura in the upper lobes, with apical pleural thickening."""
    cv, pat = scene.cv, scene.pat
    side = str(rng.choice(["right", "left", "bilateral"], p=[0.4, 0.25, 0.35]))
    sides = ["right", "left"] if side == "bilateral" else [side]
    first = None
    for s in sides:
        lung = scene.lung[s]
        upper = lung & (cv.z > pat.pts["carina"][0] - 10)
        for _ in range(int(rng.integers(3, 7))):
            idx = _pick(rng, upper)
            if idx is None:
                break
            start = cv.point(idx)
            direction = _unit(np.array([rng.uniform(-0.2, 0.5), _SIGN[s], rng.uniform(-1, 1)]))
            t = np.linspace(0, 1, 5)[:, None]
            path = start + direction * rng.uniform(35, 65) * t + rng.uniform(-5, 5, (5, 3)) * np.sin(np.pi * t)
            _paint_tube(cv, path, rng.uniform(2.4, 3.4), rng.uniform(-100, 0), keep=lung)
            first = first or idx
        apex = np.flatnonzero(lung.any(axis=(1, 2)))
        if apex.size:
            cap = lung & (cv.z > cv.axes[0][apex[-1]] - rng.uniform(8, 14))
            cv.vol[cap] = rng.uniform(-40, 20)
    location = f"{side} upper lobe" if side != "bilateral" else "upper lobes"
    return Finding("Pulmonary fibrotic sequela", side=side, location=location), first


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
