"""Drawing on the phantom's voxel grid in mm: the tissue HU values, the canvas and its partial-volume painting.

Everything the anatomy and the findings paint goes through here: `_Canvas` holds the float volume and the mm
coordinates of its voxel centres (z toward Superior, x toward patient Left, y toward Posterior, about the volume
centre), shapes are given as approximate signed distances in mm and blended with a one-voxel partial-volume ramp,
so any shape or spacing shows the same patient. Also the small mask helpers lesions use to find a voxel.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

AIR, FAT, MEDIASTINAL_FAT, SOFT, BLOOD, FLUID, LUNG, METAL = -1000.0, -100.0, -80.0, 40.0, 40.0, 10.0, -850.0, 3000.0


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
