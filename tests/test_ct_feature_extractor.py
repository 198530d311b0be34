"""CTFeatureExtractor: orientation-proof, equal to CT-CLIP's float64 recipe, clear errors, saves and batches."""

import gzip

import nibabel as nib
import numpy as np
import pytest
import torch
from volumes import SPACING, canonical_affine, canonical_volume, write_dicom_series, write_nifti

from modeling_speechct import CTFeatureExtractor, CTVolumeDataset
from modeling_speechct.training.ctclip_recipe import ctclip_preprocess


@pytest.fixture
def extractor():
    return CTFeatureExtractor(target_shape=(20, 40, 40))


def test_every_orientation_and_dicom_give_the_same_tensor(tmp_path, extractor):
    volume = canonical_volume()
    inputs = [write_nifti(volume, tmp_path / f"{codes}.nii.gz", codes) for codes in ("RAS", "LPS", "SLP", "IPR")]
    inputs.append(write_dicom_series(volume, tmp_path / "dicom"))
    out = extractor(inputs, return_metadata=True)
    values = out["ct_values"]
    assert values.shape == (5, 1, 20, 40, 40) and values.dtype == torch.float32
    for i in range(1, 5):
        assert (values[i] - values[0]).abs().max().item() <= 1e-5, out["ct_metadata"][i]["source"]
    assert [m["source_orientation"] for m in out["ct_metadata"][:4]] == ["RAS", "LPS", "SLP", "IPR"]
    for meta in out["ct_metadata"]:
        np.testing.assert_allclose(meta["original_spacing"], SPACING, rtol=1e-6)
        assert meta["original_shape"] == volume.shape
    # The bright block sits where the canonical array put it: orientation really is S, L, P.
    direct = extractor(volume, spacing=SPACING)["ct_values"]
    torch.testing.assert_close(direct, values[:1], atol=1e-5, rtol=0)


def test_matches_ct_clip_float64_recipe(tmp_path):
    """CT-RATE stores L, P, S voxel axes; CT-CLIP's transpose(2, 0, 1) then gives S, L, P without reorienting."""
    volume = canonical_volume(shape=(24, 90, 80), seed=3)
    # CT-CLIP takes one in-plane spacing: write the volume with equal x/y spacing.
    path_iso = write_nifti(volume, tmp_path / "iso.nii.gz", "LPS", spacing=(2.0, 0.7, 0.7))
    ours = CTFeatureExtractor(target_shape=(30, 64, 64))(path_iso)["ct_values"][0, 0]
    reference = ctclip_preprocess(str(path_iso), xy_spacing=0.7, z_spacing=2.0, target_shape=(64, 64, 30))
    assert ours.shape == reference.shape == (30, 64, 64)
    assert (ours - reference).abs().max().item() <= 1e-3
    assert reference.min() == -1 and (reference == -1).any()  # padded / air voxels are present in both


def test_rescale_is_applied_and_raw_values_are_flagged(tmp_path, extractor):
    volume = canonical_volume()
    stored = volume + np.int16(1024)  # raw scanner values (HU + 1024), as CT-RATE v1 ships them
    path = tmp_path / "raw.nii.gz"
    nib.save(nib.Nifti1Image(stored, canonical_affine()), str(path))
    hu = extractor(write_nifti(volume, tmp_path / "hu.nii.gz", "SLP"))["ct_values"]
    with pytest.warns(UserWarning, match="no air: are these values HU"):
        extractor(path)
    rescaled = extractor(path, rescale_slope=1.0, rescale_intercept=-1024.0)["ct_values"]
    torch.testing.assert_close(rescaled, hu, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="is_hu=True contradicts"):
        extractor(path, rescale_intercept=-1024.0, is_hu=True)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "notes.txt", "not a NIfTI file"),
        (lambda p: p / "missing.nii.gz", "does not exist"),
        (lambda p: np.zeros((4, 4)), "must be 3-D"),
        (lambda p: np.zeros((2, 4, 4, 4)), "must be 3-D"),
    ],
)
def test_bad_inputs_are_named(tmp_path, extractor, make, message):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        extractor(make(tmp_path), spacing=(1, 1, 1))


def test_bare_arrays_need_spacing_and_finite_voxels(extractor):
    with pytest.raises(ValueError, match="needs its voxel `spacing`"):
        extractor(np.zeros((8, 8, 8), dtype=np.float32))
    volume = canonical_volume().astype(np.float32)
    volume[3, 4, 5] = np.nan
    with pytest.raises(ValueError, match="1 NaN/Inf voxel"):
        extractor(volume, spacing=SPACING)


def test_truncated_and_four_d_files_are_refused(tmp_path, extractor):
    path = write_nifti(canonical_volume(), tmp_path / "ok.nii.gz", "RAS")
    data = path.read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.nii\.gz: .*(truncated|cannot read)"):
        extractor(tmp_path / "cut.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(gzip.compress(b"not nifti at all" * 30))
    with pytest.raises(ValueError, match=r"junk\.nii\.gz: cannot read as NIfTI"):
        extractor(tmp_path / "junk.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.int16), np.eye(4)), str(tmp_path / "4d.nii.gz"))
    with pytest.raises(ValueError, match=r"must be 3-D; this image has shape \(4, 4, 4, 2\)"):
        extractor(tmp_path / "4d.nii.gz")


def test_a_folder_with_two_series_says_which_and_how_to_choose(tmp_path, extractor):
    volume = canonical_volume()
    write_dicom_series(volume, tmp_path / "study", series_uid="1.2.826.0.1.1")
    write_dicom_series(volume[:, ::-1], tmp_path / "study" / "second", series_uid="1.2.826.0.1.2")
    with pytest.raises(ValueError, match=r"holds 2 DICOM series: 1\.2\.826\.0\.1\.1 \(12 slices.*series_uid="):
        extractor(tmp_path / "study")
    chosen = extractor(tmp_path / "study", series_uid="1.2.826.0.1.1")["ct_values"]
    torch.testing.assert_close(chosen, extractor(volume, spacing=SPACING)["ct_values"], atol=1e-5, rtol=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no DICOM image slices"):
        extractor(tmp_path / "empty")


def test_crop_and_pad_follow_ct_clip_and_metadata_maps_back(extractor):
    volume = canonical_volume(shape=(12, 40, 36))
    out = extractor(volume, spacing=(1.5, 0.75, 0.75), is_hu=True, return_metadata=True)
    meta = out["ct_metadata"][0]
    assert meta["resampled_shape"] == (12, 40, 36)  # already at the target spacing
    assert meta["pad_before"] == (4, 0, 2) and meta["crop_start"] == (0, 0, 0)
    values = out["ct_values"][0, 0]
    assert torch.all(values[:4] == -1) and torch.all(values[:, :, :2] == -1)
    expected = np.clip(volume.astype(np.float64), -1000, 1000) / 1000
    np.testing.assert_allclose(values[4:16, :, 2:38].numpy(), expected, atol=1e-6)


def test_save_load_threads_and_dataloader(tmp_path, extractor):
    extractor.save_pretrained(tmp_path)
    loaded = CTFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == extractor.to_dict()
    volumes = [canonical_volume(seed=s) for s in range(3)]
    serial = extractor(volumes, spacing=SPACING)["ct_values"]
    threaded = loaded(volumes, spacing=[SPACING] * 3, num_workers=2)["ct_values"]
    torch.testing.assert_close(threaded, serial, rtol=0, atol=0)
    paths = [write_nifti(v, tmp_path / f"v{i}.nii.gz", "RAS") for i, v in enumerate(volumes)]
    loader = torch.utils.data.DataLoader(CTVolumeDataset(paths, extractor), batch_size=3, num_workers=2)
    torch.testing.assert_close(next(iter(loader)), serial, atol=1e-5, rtol=0)
