"""Test volumes: one canonical (S, L, P) CT written as NIfTI in any orientation and as a DICOM series."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from modeling_speechct import ct_io

SPACING = (2.0, 0.7, 0.8)  # (S, L, P) mm


def canonical_volume(shape=(12, 40, 36), seed=0) -> np.ndarray:
    """Int16 HU: air around a soft-tissue body with a bright off-centre block, plus noise (so flips show)."""
    rng = np.random.default_rng(seed)
    d, h, w = shape
    _, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    body = ((y - h / 2) / (0.4 * h)) ** 2 + ((x - w / 2) / (0.35 * w)) ** 2 < 1
    volume = np.where(body, 40, -1000) + rng.normal(0, 30, shape)
    volume[d // 4 : d // 2, h // 5 : h // 3, w // 2 : w // 2 + 6] = 900
    return volume.astype(np.int16)


ORIGIN = (12.0, -30.0, 100.0)


def canonical_affine(spacing=SPACING) -> np.ndarray:
    return ct_io.canonical_affine(spacing, ORIGIN)


def write_nifti(volume: np.ndarray, path: Path, axcodes: str, spacing=SPACING) -> Path:
    path = ct_io.write_nifti(volume, spacing, path, axcodes, origin=ORIGIN)
    assert "".join(nib.aff2axcodes(nib.load(str(path)).affine)) == axcodes
    return path


def write_dicom_series(volume: np.ndarray, folder: Path, spacing=SPACING, series_uid=None, shuffle_seed=1) -> Path:
    """One axial CT slice per file (stored as HU + 1024 with RescaleIntercept −1024), files in shuffled order."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    affine = canonical_affine(spacing)
    order = np.random.default_rng(shuffle_seed).permutation(volume.shape[0])
    for s in order:
        ras = affine @ np.array([s, 0, 0, 1.0])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "CT", series_uid, "1.2.3"
        ds.SeriesNumber, ds.SeriesDescription = 1, "test series"
        ds.ImagePositionPatient = [float(-ras[0]), float(-ras[1]), float(ras[2])]  # LPS
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # rows run toward L, columns toward P
        ds.PixelSpacing = [spacing[2], spacing[1]]  # (between rows: P, between columns: L)
        ds.SliceThickness = spacing[0]
        ds.Rows, ds.Columns = volume.shape[2], volume.shape[1]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1.0, -1024.0
        ds.PixelData = (volume[s].T.astype(np.int16) + 1024).astype(np.int16).tobytes()  # pixel[row=P, col=L]
        ds.save_as(folder / f"slice_{s:03d}.dcm", enforce_file_format=True)
    return folder
