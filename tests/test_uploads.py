"""Untrusted uploads: hostile zips are refused before anything is written; views do not depend on stored order."""

import stat
import zipfile

import numpy as np
import pytest
from volumes import SPACING, write_dicom_series, write_nifti

from modeling_speechct.hub.uploads import extract_zip, orthogonal_views, read_upload


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("name", ["../escape.dcm", "/etc/escape.dcm", "a/../../escape.dcm", "C:/escape.dcm"])
def test_zip_entries_escaping_the_folder_are_refused_before_writing(tmp_path, name):
    archive = _zip(tmp_path / "up.zip", [("ok.dcm", b"1"), (name, b"2")])
    with pytest.raises(ValueError, match="outside the archive"):
        extract_zip(archive, tmp_path / "out" / "x")
    assert not (tmp_path / "out" / "x" / "ok.dcm").exists()
    assert not (tmp_path / "out" / "escape.dcm").exists() and not (tmp_path / "escape.dcm").exists()


def test_symlinks_and_bombs_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        extract_zip(archive, tmp_path / "a")
    bomb = _zip(tmp_path / "bomb.zip", [("zeros.dcm", b"\0" * 200_000)])
    with pytest.raises(ValueError, match="inflates to"):
        extract_zip(bomb, tmp_path / "b", max_bytes=100_000)
    with pytest.raises(ValueError, match="entries, more than"):
        extract_zip(_zip(tmp_path / "many.zip", [(f"{i}.dcm", b"x") for i in range(5)]), tmp_path / "c", max_members=4)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.zip: not a readable zip"):
        extract_zip(tmp_path / "bad.zip", tmp_path / "d")


def _marked_volume():
    """(S, L, P) volume: air, a soft-tissue body and two bright markers in the patient's right half, one anterior on
    the central axial slice, one superior on the central coronal slice (low L index = right, low P = anterior)."""
    volume = np.full((12, 40, 36), -1000, dtype=np.int16)
    volume[1:-1, 4:-4, 4:-4] = 40
    volume[5:8, 6:12, 6:12] = 1000  # right, anterior, through the axial centre (S index 6)
    volume[9:11, 6:12, 16:20] = 1000  # right, superior, through the coronal centre (P index 18)
    return volume


def test_views_are_the_same_whatever_the_stored_orientation_and_show_the_marker_where_radiologists_expect(tmp_path):
    volume = _marked_volume()
    views = [orthogonal_views(write_nifti(volume, tmp_path / f"{c}.nii.gz", c)) for c in ("SLP", "LPS", "RAS", "PIR")]
    for other in views[1:]:
        np.testing.assert_array_equal(views[0], other)
    image = views[0][..., 0].astype(float)
    size = image.shape[0]
    axial, coronal = image[:, :size], image[:, size : 2 * size]
    # Radiological convention: patient's right on the image's left, anterior and superior at the top.
    rows, cols = np.nonzero(axial == 255)
    assert rows.mean() < size / 2 and cols.mean() < size / 2
    rows, cols = np.nonzero(coronal == 255)
    assert rows.mean() < size / 2 and cols.mean() < size / 2


def test_a_zipped_dicom_series_reads_like_the_same_volume_as_nifti(tmp_path):
    volume = _marked_volume()
    series = write_dicom_series(volume, tmp_path / "series")
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(series.rglob("*")):
            zf.write(path, path.relative_to(tmp_path))
    from_zip = orthogonal_views(read_upload(archive, tmp_path / "work"))
    from_nifti = orthogonal_views(write_nifti(volume, tmp_path / "v.nii.gz", "LPS", SPACING))
    np.testing.assert_array_equal(from_zip, from_nifti)
    with pytest.raises(ValueError, match=r"notes.txt: upload a NIfTI volume"):
        read_upload(tmp_path / "notes.txt", tmp_path / "work")
