"""The phantom's normal chest: one patient's anatomy in mm, and the scene it is painted into.

`_draw_patient` places a template patient's landmarks (airways, heart, great vessels, lungs, diaphragm, node
stations) with per-case size, shift and jitter; lesion plans may edit it before `_build_anatomy` paints body wall,
lungs and lobes, mediastinum, heart, vessels, airways and bones on a `_Canvas`. The resulting `_Scene` keeps the
masks lesions need to find their place (lungs per side, lobes, structures they must not paint over).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .phantom_canvas import AIR, BLOOD, FAT, MEDIASTINAL_FAT, SOFT, _Canvas, _paint_ellipsoid, _paint_tube, _unit

_LOBES = {
    1: "right upper lobe",
    2: "right middle lobe",
    3: "right lower lobe",
    4: "left upper lobe",
    5: "left lower lobe",
}
_SIGN = {"right": -1.0, "left": 1.0}


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
