"""Phantom abnormalities outside the lungs: the heart, the aorta and coronaries, the mediastinum and devices.

Cardiomegaly, pericardial effusion, arterial and coronary wall calcification, hiatal hernia, lymphadenopathy and
medical material (pacemaker, port, sternotomy wires), each a plan and/or a renderer under the contract of
`phantom_findings`.
"""

from __future__ import annotations

import math

import numpy as np

from ..labels import Finding
from .phantom_anatomy import _EPICARDIAL_FAT, _NODE_STATIONS, _SIGN, _Patient, _Scene
from .phantom_canvas import AIR, FLUID, METAL, SOFT, _densify, _ellipsoid_distance, _paint_ellipsoid, _paint_tube, _unit
from .phantom_findings import Plan, Rendered, _grade, _join, _sides


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
