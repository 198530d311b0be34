"""Phantom abnormalities of the lungs, airways and pleura: where each lesion goes, its shape and HU, its `Finding`.

Nodules, ground-glass opacity, consolidation, atelectasis, emphysema, mosaic attenuation, fibrotic sequelae,
bronchiectasis and pleural effusion, each a plan and/or a renderer under the contract of `phantom_findings`.
"""

from __future__ import annotations

import numpy as np

from ..labels import Finding
from .phantom_anatomy import _SIGN, _Patient, _Scene
from .phantom_canvas import (
    AIR,
    BLOOD,
    FLUID,
    LUNG,
    _Canvas,
    _central_voxel,
    _ellipsoid_distance,
    _paint_ellipsoid,
    _paint_tube,
    _pick,
    _rim,
    _unit,
)
from .phantom_findings import Plan, Rendered, _grade, _sides


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
