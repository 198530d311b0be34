"""Read CT volumes from NIfTI files, DICOM series folders, nibabel images or arrays, with their RAS affine.

nibabel and pydicom are imported inside the readers so that importing the model never needs them.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass
class RawVolume:
    """A volume as stored: voxel array (any dtype), its voxel → RAS-mm affine (None: the array is already in the
    canonical orientation with `spacing` per axis), and the linear map from stored values to HU."""

    array: np.ndarray
    affine: np.ndarray | None
    spacing: tuple[float, float, float] | None = None
    slope: float = 1.0
    intercept: float = 0.0
    source: str = "array"
    already_hu: bool | None = None  # True: the reader applied the modality rescale (DICOM); None: unknown


def read_volume(volume: Any, *, spacing=None, affine=None, series_uid: str | None = None) -> RawVolume:
    """Dispatch on the input's kind: path to NIfTI / DICOM folder, nibabel image, numpy array or torch tensor."""
    if isinstance(volume, (str, os.PathLike)):
        path = Path(volume)
        if path.is_dir():
            return read_dicom_series(path, series_uid=series_uid)
        if not path.exists():
            raise FileNotFoundError(f"CT volume {path} does not exist.")
        if path.name.endswith(NIFTI_SUFFIXES):
            return read_nifti(path)
        raise ValueError(
            f"{path}: not a NIfTI file (.nii, .nii.gz) nor a folder holding a DICOM series; "
            "pass a DICOM series as the folder that contains its files."
        )
    if hasattr(volume, "affine") and hasattr(volume, "dataobj"):
        return _from_nibabel(volume, source=getattr(volume, "get_filename", lambda: None)() or "nibabel image")
    return _from_array(volume, spacing=spacing, affine=affine)


def _from_array(volume: Any, *, spacing, affine) -> RawVolume:
    array = volume.detach().cpu().numpy() if hasattr(volume, "detach") else np.asarray(volume)
    if array.ndim != 3:
        raise ValueError(f"CT array must be 3-D (one volume; batch by passing a list); got shape {tuple(array.shape)}.")
    if affine is not None:
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"`affine` must be a 4 × 4 voxel → RAS matrix; got shape {affine.shape}.")
    elif spacing is None:
        raise ValueError(
            "A bare CT array needs its voxel `spacing` in mm (one value per array axis), or an `affine`; "
            "without either the resampling to the model's spacing is undefined."
        )
    else:
        spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
        if spacing.shape != (3,) or not np.all(spacing > 0):
            raise ValueError(f"`spacing` must be three positive numbers in mm; got {spacing.tolist()}.")
        return RawVolume(array=array, affine=None, spacing=tuple(float(v) for v in spacing))
    return RawVolume(array=array, affine=affine)


def read_nifti(path: Path) -> RawVolume:
    """`.nii` is memory-mapped by nibabel; `.nii.gz` is streamed through ISA-L's gzip (about 2.5× zlib's speed)."""
    import nibabel as nib

    if not path.name.endswith(".gz"):
        try:
            image = nib.load(str(path))
        except Exception as err:
            raise ValueError(f"{path}: cannot read as NIfTI ({type(err).__name__}: {err}).") from err
        return _from_nibabel(image, source=str(path))
    from isal import igzip

    with igzip.open(path, "rb") as stream:
        try:
            image = nib.Nifti1Image.from_stream(stream)
        except Exception as err:
            raise ValueError(f"{path}: cannot read as NIfTI ({type(err).__name__}: {err}).") from err
        return _from_nibabel(image, source=str(path))  # reads the voxels while the stream is open


def _from_nibabel(image, source: str) -> RawVolume:
    if len(image.shape) != 3:
        raise ValueError(f"{source}: CT volume must be 3-D; this image has shape {tuple(image.shape)}.")
    proxy = image.dataobj
    try:
        if hasattr(proxy, "get_unscaled"):
            array = np.asarray(proxy.get_unscaled())  # stored dtype (e.g. int16): no float64 copy of the volume
            slope = float(proxy.slope) if np.isfinite(proxy.slope) else 1.0
            intercept = float(proxy.inter) if np.isfinite(proxy.inter) else 0.0
        else:
            array, slope, intercept = np.asarray(proxy), 1.0, 0.0
    except Exception as err:  # truncated or corrupt compressed data surfaces here, on the first read
        raise ValueError(f"{source}: the image data cannot be read (truncated or corrupt file?): {err}") from err
    return RawVolume(array=array, affine=np.asarray(image.affine, dtype=np.float64), slope=slope,
                     intercept=intercept, source=source)  # fmt: skip


def read_dicom_series(folder: Path, series_uid: str | None = None) -> RawVolume:
    """One CT series from a folder (searched recursively); slices sorted along the slice normal, HU applied."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers: dict[str, list[tuple[Path, Any]]] = defaultdict(list)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError):
            continue
        if "ImagePositionPatient" in header and "PixelSpacing" in header:
            headers[str(header.get("SeriesInstanceUID", "unknown"))].append((path, header))
    if not headers:
        raise ValueError(f"{folder}: holds no DICOM image slices (files with ImagePositionPatient and PixelSpacing).")
    if series_uid is None and len(headers) > 1:
        listing = "; ".join(
            f"{uid} ({len(items)} slices, SeriesNumber {items[0][1].get('SeriesNumber', '?')}, "
            f"'{items[0][1].get('SeriesDescription', '')}')"
            for uid, items in sorted(headers.items())
        )
        raise ValueError(f"{folder} holds {len(headers)} DICOM series: {listing}. Choose one with series_uid=...")
    uid = series_uid if series_uid is not None else next(iter(headers))
    if uid not in headers:
        raise ValueError(f"{folder}: no series with SeriesInstanceUID {uid}; found {sorted(headers)}.")
    items = headers[uid]

    first = items[0][1]
    orientation = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
    row_cos, col_cos = orientation[:3], orientation[3:]
    normal = np.cross(row_cos, col_cos)
    positions = np.array([np.asarray(h.ImagePositionPatient, dtype=np.float64) for _, h in items])
    order = np.argsort(positions @ normal)
    positions = positions[order]
    gaps = np.diff(positions @ normal)
    if len(items) > 1 and (np.any(gaps <= 0) or np.ptp(gaps) > 0.01 * np.median(gaps) + 1e-3):
        raise ValueError(
            f"{folder}: series {uid} has duplicate or unevenly spaced slices (gaps {np.unique(gaps.round(3))} mm)."
        )
    slice_spacing = float(np.median(gaps)) if len(items) > 1 else float(first.get("SliceThickness", 1.0))
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)

    slices = []
    for index in order:
        dataset = pydicom.dcmread(items[index][0])
        pixels = dataset.pixel_array.astype(np.float32)
        slope = float(dataset.get("RescaleSlope", 1.0))
        intercept = float(dataset.get("RescaleIntercept", 0.0))
        slices.append(pixels * slope + intercept if (slope, intercept) != (1.0, 0.0) else pixels)
    array = np.stack(slices)  # (slice, row, column)

    lps = np.eye(4)
    lps[:3, 0] = normal * slice_spacing
    lps[:3, 1] = col_cos * row_spacing  # moving down a row follows the column direction cosine
    lps[:3, 2] = row_cos * col_spacing
    lps[:3, 3] = positions[0]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return RawVolume(array=array, affine=ras, source=f"{folder} (series {uid})", already_hu=True)


def canonical_affine(spacing, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Voxel → RAS mm affine of a canonical array: depth runs Superior (+z), height Left (−x), width Posterior (−y)."""
    affine = np.zeros((4, 4))
    affine[2, 0], affine[0, 1], affine[1, 2] = spacing[0], -spacing[1], -spacing[2]
    affine[:3, 3], affine[3, 3] = origin, 1.0
    return affine


def write_nifti(volume: np.ndarray, spacing, path: str | os.PathLike, axcodes: str = "SLP", origin=(0.0, 0.0, 0.0)):
    """Write a canonical (S, L, P)-ordered `volume` with `spacing` (mm per axis) as NIfTI whose voxel axes follow
    `axcodes` (e.g. "LPS" as CT-RATE stores, "RAS", "IPR"); the affine is adjusted so every choice describes the same
    anatomy and `CTFeatureExtractor` reads back the same tensor."""
    import nibabel as nib
    from nibabel import orientations

    transform = orientations.ornt_transform(
        orientations.axcodes2ornt(tuple("SLP")), orientations.axcodes2ornt(tuple(axcodes.upper()))
    )
    stored = np.ascontiguousarray(orientations.apply_orientation(volume, transform))
    affine = canonical_affine(spacing, origin) @ orientations.inv_ornt_aff(transform, volume.shape)
    nib.save(nib.Nifti1Image(stored, affine), os.fspath(path))
    return path
