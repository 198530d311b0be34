"""Untrusted uploads (the demo Space, any web front end): CT files and zipped DICOM series, read safely.

A zip from a browser can hold absolute paths, `..` components, symlinks or a bomb that inflates to terabytes;
`extract_zip` refuses all of them before writing a byte. `orthogonal_views` renders what was uploaded so the user
can see that the volume was read the right way up.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..ct_io import NIFTI_SUFFIXES, RawVolume, canonical_affine, read_volume

MAX_UPLOAD_BYTES = 1 << 30  # 1 GiB uncompressed: a 512 × 512 × 1000 int16 series is 0.5 GiB
MAX_ZIP_MEMBERS = 5000
DISPLAY_WINDOW_HU = (-1000.0, 400.0)  # lungs to mediastinum in one grey ramp


def extract_zip(archive: str | os.PathLike, destination: str | os.PathLike, *, max_bytes: int = MAX_UPLOAD_BYTES,
                max_members: int = MAX_ZIP_MEMBERS) -> Path:  # fmt: skip
    """Extract `archive` into `destination` (created, must be empty) after checking every member: no absolute or
    escaping path, no symlink, at most `max_members` files and `max_bytes` uncompressed in total."""
    archive, destination = Path(archive), Path(destination)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{archive.name}: not a readable zip archive ({err}).") from err
    with zf:
        members = zf.infolist()
        if len(members) > max_members:
            raise ValueError(f"{archive.name}: {len(members)} entries, more than the limit of {max_members}.")
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            limit = max_bytes / 2**20
            raise ValueError(f"{archive.name}: inflates to {total / 2**20:.0f} MiB, over the {limit:.0f} MiB limit.")
        for member in members:
            name = PurePosixPath(member.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or (name.parts and name.parts[0].endswith(":")):
                raise ValueError(f"{archive.name}: entry {member.filename!r} points outside the archive's folder.")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise ValueError(f"{archive.name}: entry {member.filename!r} is a symbolic link.")
        destination.mkdir(parents=True, exist_ok=True)
        if any(destination.iterdir()):
            raise ValueError(f"{destination} is not empty; extract each upload into its own folder.")
        root = destination.resolve()
        written = 0
        for member in members:
            target = (root / member.filename.replace("\\", "/")).resolve()
            if not target.is_relative_to(root):  # belt and braces after the name checks above
                raise ValueError(f"{archive.name}: entry {member.filename!r} points outside the archive's folder.")
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as source, open(target, "wb") as sink:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:  # the declared sizes can lie
                        raise ValueError(f"{archive.name}: inflates past the {max_bytes / 2**20:.0f} MiB limit.")
                    sink.write(chunk)
    return destination


def read_upload(path: str | os.PathLike, workdir: str | os.PathLike) -> RawVolume:
    """A CT upload: `.nii` / `.nii.gz`, or a `.zip` holding one DICOM series (extracted under `workdir`)."""
    path = Path(path)
    if path.name.lower().endswith(".zip"):
        return read_volume(extract_zip(path, Path(workdir) / (path.stem + "_dicom")))
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return read_volume(path)
    raise ValueError(f"{path.name}: upload a NIfTI volume (.nii, .nii.gz) or a zipped DICOM series (.zip).")


def canonical_hu(raw: RawVolume) -> tuple[np.ndarray, tuple[float, float, float]]:
    """HU array in RAS+ axis order (indices grow towards the patient's right, anterior, superior), spacing in mm."""
    import nibabel as nib

    hu = raw.array.astype(np.float32)
    if not raw.already_hu and (raw.slope, raw.intercept) != (1.0, 0.0):
        hu = hu * np.float32(raw.slope) + np.float32(raw.intercept)
    # Arrays given with a spacing only are in the canonical (S, L, P) order; their affine says so.
    affine = raw.affine if raw.affine is not None else canonical_affine(raw.spacing)
    ornt = nib.orientations.io_orientation(affine)
    hu = nib.orientations.apply_orientation(hu, ornt)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))[ornt[:, 0].astype(int).argsort()]
    return np.ascontiguousarray(hu), tuple(float(s) for s in spacing)


def orthogonal_views(volume: Any, window: tuple[float, float] = DISPLAY_WINDOW_HU, size: int = 256) -> np.ndarray:
    """Axial, coronal and sagittal slices through the centre, side by side, as an RGB uint8 image (radiological
    convention: patient's right on the image's left, anterior up, superior up), each scaled to physical aspect."""
    raw = volume if isinstance(volume, RawVolume) else read_volume(volume)
    hu, (sx, sy, sz) = canonical_hu(raw)
    x, y, z = (n // 2 for n in hu.shape)
    views = [
        (hu[:, :, z].T[::-1, ::-1], sy, sx),  # axial: rows anterior → posterior, columns patient right → left
        (hu[:, y, :].T[::-1, ::-1], sz, sx),  # coronal: rows superior → inferior, columns right → left
        (hu[x, :, :].T[::-1, ::-1], sz, sy),  # sagittal: rows superior → inferior, columns anterior → posterior
    ]
    low, high = window
    tiles = [_fit(np.clip((v - low) / (high - low), 0, 1), row_mm, col_mm, size) for v, row_mm, col_mm in views]
    grey = (np.concatenate(tiles, axis=1) * 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _fit(image: np.ndarray, row_mm: float, col_mm: float, size: int) -> np.ndarray:
    """Nearest-neighbour resize to physical aspect inside a `size` × `size` tile (black margins)."""
    height_mm, width_mm = image.shape[0] * row_mm, image.shape[1] * col_mm
    scale = size / max(height_mm, width_mm)
    h, w = max(1, round(height_mm * scale)), max(1, round(width_mm * scale))
    rows = np.minimum((np.arange(h) + 0.5) / h * image.shape[0], image.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(w) + 0.5) / w * image.shape[1], image.shape[1] - 1).astype(int)
    tile = np.zeros((size, size), dtype=np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    tile[top : top + h, left : left + w] = image[np.ix_(rows, cols)]
    return tile


__all__ = ["MAX_UPLOAD_BYTES", "canonical_hu", "extract_zip", "orthogonal_views", "read_upload"]
