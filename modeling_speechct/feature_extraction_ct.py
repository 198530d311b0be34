"""CT feature extractor: any CT file or array → the exact `ct_values` tensor the CT tower expects.

CT-CLIP's recipe, documented and orientation-proof: read (NIfTI, DICOM series, nibabel image, array) → reorient
from the affine to the canonical array order (CT-CLIP's weights expect S, L, P along depth, height, width) →
HU → clip to the window and scale to [−1, 1] → trilinear resampling to the target spacing (CT-CLIP's output size
rule: floor(size · spacing / target)) → centre crop / pad with air to the target shape. Everything runs in float32
on torch, in place where possible, with one interpolation pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BatchFeature, FeatureExtractionMixin

from .ct_io import RawVolume, read_volume

_TORCH_DTYPES = {np.dtype(t) for t in ("int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64")}


class CTFeatureExtractor(FeatureExtractionMixin):
    r"""
    Args:
        target_spacing: voxel spacing (depth, height, width) in mm after resampling (CT-CLIP: 1.5, 0.75, 0.75).
        target_shape: output (depth, height, width) after centre crop / pad (CT-CLIP: 240, 480, 480).
        hu_window: HU range kept; it is mapped linearly onto [−1, 1] (CT-CLIP: −1000 … 1000, i.e. HU / 1000).
        orientation: anatomical direction each output axis increases toward, as nibabel axis codes (CT-CLIP: "SLP").
    """

    model_input_names: ClassVar[list[str]] = ["ct_values"]

    def __init__(
        self,
        target_spacing: Sequence[float] = (1.5, 0.75, 0.75),
        target_shape: Sequence[int] = (240, 480, 480),
        hu_window: Sequence[float] = (-1000.0, 1000.0),
        orientation: str = "SLP",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.target_spacing = tuple(float(v) for v in target_spacing)
        self.target_shape = tuple(int(v) for v in target_shape)
        self.hu_window = tuple(float(v) for v in hu_window)
        self.orientation = str(orientation).upper()
        problems = []
        if len(self.target_spacing) != 3 or min(self.target_spacing) <= 0:
            problems.append(f"target_spacing {self.target_spacing} must be three positive mm values")
        if len(self.target_shape) != 3 or min(self.target_shape) <= 0:
            problems.append(f"target_shape {self.target_shape} must be three positive sizes")
        if len(self.hu_window) != 2 or self.hu_window[0] >= self.hu_window[1]:
            problems.append(f"hu_window {self.hu_window} must be (low, high) with low < high")
        pairs = [{"L", "R"}, {"A", "P"}, {"S", "I"}]
        if len(self.orientation) != 3 or any(len(pair & set(self.orientation)) != 1 for pair in pairs):
            problems.append(f"orientation {self.orientation!r} must be three axis codes such as 'SLP' or 'RAS'")
        if problems:
            raise ValueError("CTFeatureExtractor: " + "; ".join(problems))

    @property
    def pad_value(self) -> float:
        """Air: the low end of the HU window, which the scaling maps to −1."""
        return -1.0

    # ------------------------------------------------------------------------------------------------ steps

    def reorient(self, raw: RawVolume) -> tuple[torch.Tensor, tuple[float, float, float], str]:
        """Stored array → canonical axis order and direction (no resampling: a permutation and flips)."""
        with warnings.catch_warnings():  # read-only memory-mapped arrays are fine: every later step copies
            warnings.simplefilter("ignore", UserWarning)
            array = raw.array if raw.array.dtype in _TORCH_DTYPES else raw.array.astype(np.float32)
            tensor = torch.from_numpy(array)
        if raw.affine is None:
            return tensor, raw.spacing, self.orientation
        from nibabel import affines, orientations

        source_codes = "".join(orientations.aff2axcodes(raw.affine))
        transform = orientations.ornt_transform(
            orientations.io_orientation(raw.affine), orientations.axcodes2ornt(tuple(self.orientation))
        )
        # transform[i] = (output axis of input axis i, ±1)
        permutation = [int(np.nonzero(transform[:, 0] == out_axis)[0][0]) for out_axis in range(3)]
        spacing = affines.voxel_sizes(raw.affine)
        tensor = tensor.permute(permutation)
        flips = [out_axis for out_axis, src in enumerate(permutation) if transform[src, 1] < 0]
        if flips:
            tensor = tensor.flip(flips)
        return tensor, tuple(float(spacing[src]) for src in permutation), source_codes

    def to_unit_window(self, tensor: torch.Tensor, slope: float, intercept: float, source: str) -> torch.Tensor:
        """Stored values → HU → clipped to the window and scaled to [−1, 1], as one affine map and a clamp on a
        fresh contiguous float32 copy (clamping scaled values to [−1, 1] is clamping HU to the window)."""
        x = tensor.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
        if tensor.is_floating_point() and not bool(torch.isfinite(x).all()):  # integers are always finite
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"{source}: {bad} NaN/Inf voxel(s); the volume must be finite everywhere.")
        low, high = self.hu_window
        half, centre = (high - low) / 2, (high + low) / 2
        return x.mul_(slope / half).add_((intercept - centre) / half).clamp_(-1.0, 1.0)

    def resample(self, x: torch.Tensor, spacing: Sequence[float], source: str) -> torch.Tensor:
        # CT-CLIP's own rule, floor(n · spacing / target), kept bit for bit: its weights saw exactly these sizes.
        size = [int(n * s / t) for n, s, t in zip(x.shape, spacing, self.target_spacing, strict=True)]
        if min(size) < 1:
            raise ValueError(
                f"{source}: shape {tuple(x.shape)} at spacing {tuple(spacing)} mm resamples to {size} voxels "
                f"at {self.target_spacing} mm; the volume is too small."
            )
        if list(x.shape) == size:
            return x
        return F.interpolate(x[None, None], size=size, mode="trilinear", align_corners=False)[0, 0]

    def crop_or_pad(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int], list[int]]:
        """Centre crop and/or pad each axis to `target_shape` (CT-CLIP's rounding); returns crop starts, pads."""
        out = torch.full(self.target_shape, self.pad_value, dtype=x.dtype)
        starts, pads, lengths = [], [], []
        for size, target in zip(x.shape, self.target_shape, strict=True):
            start, length = max((size - target) // 2, 0), min(size, target)
            starts.append(start)
            lengths.append(length)
            pads.append((target - length) // 2)
        out[tuple(slice(p, p + n) for p, n in zip(pads, lengths, strict=True))] = x[
            tuple(slice(s, s + n) for s, n in zip(starts, lengths, strict=True))
        ]
        return out, starts, pads

    def process(
        self,
        volume: Any,
        spacing: Sequence[float] | None = None,
        affine: Any = None,
        rescale_slope: float | None = None,
        rescale_intercept: float | None = None,
        is_hu: bool | None = None,
        series_uid: str | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """One volume → `(depth, height, width)` float32 tensor and the metadata to map back to the source."""
        raw = read_volume(volume, spacing=spacing, affine=affine, series_uid=series_uid)
        if 0 in raw.array.shape:
            raise ValueError(f"{raw.source}: empty volume of shape {raw.array.shape}.")
        slope, intercept = raw.slope, raw.intercept
        if rescale_slope is not None or rescale_intercept is not None:
            if is_hu:
                raise ValueError(f"{raw.source}: is_hu=True contradicts the rescale_slope/intercept given.")
            if raw.already_hu:
                raise ValueError(f"{raw.source}: DICOM values are already rescaled to HU by their own tags.")
            slope = slope * (1.0 if rescale_slope is None else float(rescale_slope))
            intercept = intercept * (1.0 if rescale_slope is None else float(rescale_slope)) + float(
                rescale_intercept or 0.0
            )
        tensor, canonical_spacing, source_codes = self.reorient(raw)
        source, already_hu = raw.source, raw.already_hu
        x = self.to_unit_window(tensor, slope, intercept, source)
        del raw, tensor  # the stored array is no longer needed: free it before resampling allocates
        if is_hu is None and already_hu is not True and float(x.min()) > -0.5:
            low, high = self.hu_window
            warnings.warn(
                f"{source}: no voxel below {(low + high) / 2 - (high - low) / 4:.0f} HU, so no air: are these "
                "values HU? Pass rescale_slope / rescale_intercept, or is_hu=True to silence this.",
                stacklevel=3,
            )
        original_shape = tuple(x.shape)
        x = self.resample(x, canonical_spacing, source)
        resampled_shape = tuple(x.shape)
        out, starts, pads = self.crop_or_pad(x)
        metadata = {
            "source": source,
            "source_orientation": source_codes,
            "orientation": self.orientation,
            "original_shape": original_shape,
            "original_spacing": canonical_spacing,
            "resampled_shape": resampled_shape,
            "crop_start": tuple(starts),
            "pad_before": tuple(pads),
            "target_spacing": self.target_spacing,
            "rescale": (slope, intercept),
        }
        return out, metadata

    # ------------------------------------------------------------------------------------------------ batch

    def __call__(
        self,
        ct: Any,
        spacing: Any = None,
        affine: Any = None,
        rescale_slope: float | Sequence[float] | None = None,
        rescale_intercept: float | Sequence[float] | None = None,
        is_hu: bool | None = None,
        series_uid: str | Sequence[str] | None = None,
        return_metadata: bool = False,
        return_tensors: str | None = "pt",
        num_workers: int = 0,
        **kwargs: Any,
    ) -> BatchFeature:
        """One volume or a list of them → `ct_values` `(batch, 1, D, H, W)`. Per-volume arguments (spacing,
        affine, rescale, series) take one value for all or a list with one per volume. `num_workers > 0` processes
        the volumes in a thread pool (decompression and torch kernels release the GIL; nothing is pickled)."""
        volumes = list(ct) if isinstance(ct, (list, tuple)) else [ct]
        if not volumes:
            raise ValueError("`ct` is an empty list.")

        def per_volume(value, name, is_single):
            if is_single(value):
                return [value] * len(volumes)
            if len(value) != len(volumes):
                raise ValueError(f"`{name}` has {len(value)} entries for {len(volumes)} volumes.")
            return list(value)

        scalar = lambda v: v is None or np.ndim(v) == 0 or isinstance(v, str)  # noqa: E731
        args = zip(
            volumes,
            per_volume(spacing, "spacing", lambda v: v is None or (np.ndim(v) == 1 and np.ndim(v[0]) == 0)),
            per_volume(affine, "affine", lambda v: v is None or np.ndim(v) == 2),
            per_volume(rescale_slope, "rescale_slope", scalar),
            per_volume(rescale_intercept, "rescale_intercept", scalar),
            per_volume(series_uid, "series_uid", scalar),
            strict=True,
        )
        jobs = [
            dict(volume=v, spacing=s, affine=a, rescale_slope=rs, rescale_intercept=ri, is_hu=is_hu, series_uid=u)
            for v, s, a, rs, ri, u in args
        ]
        if num_workers > 0 and len(jobs) > 1:
            with ThreadPoolExecutor(max_workers=num_workers) as pool:
                results = list(pool.map(lambda job: self.process(**job), jobs))
        else:
            results = [self.process(**job) for job in jobs]
        values = torch.stack([r[0] for r in results])[:, None]
        batch = BatchFeature({"ct_values": values if return_tensors == "pt" else values.numpy()})
        if return_tensors not in ("pt", "np", None):
            batch = batch.convert_to_tensors(return_tensors)
        if return_metadata:
            batch["ct_metadata"] = [r[1] for r in results]
        return batch


class CTVolumeDataset(torch.utils.data.Dataset):
    """A DataLoader-friendly list of volumes: `DataLoader(CTVolumeDataset(paths, fe), num_workers=4)` preprocesses
    in worker processes (only paths and the extractor's settings are sent to them)."""

    def __init__(self, volumes: Sequence[Any], feature_extractor: CTFeatureExtractor, **process_kwargs: Any):
        self.volumes = list(volumes)
        self.feature_extractor = feature_extractor
        self.process_kwargs = process_kwargs

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int) -> torch.Tensor:
        values, _ = self.feature_extractor.process(self.volumes[index], **self.process_kwargs)
        return values[None]  # (1, D, H, W); the default collate gives (batch, 1, D, H, W)


__all__ = ["CTFeatureExtractor", "CTVolumeDataset"]
