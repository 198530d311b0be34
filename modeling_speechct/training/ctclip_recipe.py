"""CT-CLIP's own preprocessing, re-stated plainly (its `data_inference_nii.py`): the reference our
`CTFeatureExtractor` is tested and benchmarked against. Slow on purpose — float64 throughout, as CT-CLIP runs it.

It reads the NIfTI voxel array as stored (no reorientation): CT-RATE files are stored so that CT-CLIP's
transpose (2, 0, 1) yields S, L, P axes, which is the orientation our extractor produces from any file.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def ctclip_preprocess(
    path: str,
    xy_spacing: float,
    z_spacing: float,
    slope: float = 1.0,
    intercept: float = 0.0,
    target_spacing: tuple[float, float, float] = (1.5, 0.75, 0.75),
    target_shape: tuple[int, int, int] = (480, 480, 240),
) -> torch.Tensor:
    """CT-CLIP's recipe on one NIfTI file → `(depth, height, width)` float32 tensor in [−1, 1]."""
    import nibabel as nib

    data = nib.load(path).get_fdata()  # float64
    data = np.clip(slope * data + intercept, -1000, 1000).transpose(2, 0, 1)
    tensor = torch.tensor(data)[None, None]
    current = (z_spacing, xy_spacing, xy_spacing)
    size = [int(tensor.shape[2 + i] * current[i] / target_spacing[i]) for i in range(3)]
    data = F.interpolate(tensor, size=size, mode="trilinear", align_corners=False)[0, 0].numpy()
    data = (np.transpose(data, (1, 2, 0)) / 1000).astype(np.float32)
    volume = torch.tensor(data)
    dh, dw, dd = target_shape
    h, w, d = volume.shape
    hs, ws, ds = max((h - dh) // 2, 0), max((w - dw) // 2, 0), max((d - dd) // 2, 0)
    volume = volume[hs : min(hs + dh, h), ws : min(ws + dw, w), ds : min(ds + dd, d)]
    ph, pw, pd = (dh - volume.shape[0]) // 2, (dw - volume.shape[1]) // 2, (dd - volume.shape[2]) // 2
    pad = (pd, dd - volume.shape[2] - pd, pw, dw - volume.shape[1] - pw, ph, dh - volume.shape[0] - ph)
    return F.pad(volume, pad, value=-1).permute(2, 0, 1)
