"""Input checks shared by the towers: fail early, name the input, say what is wrong."""

from __future__ import annotations

import torch


def require_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise if `tensor` holds NaN or ±Inf; a NaN voxel or sample otherwise poisons a whole batch silently."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).nonzero()
        first = tuple(bad[0].tolist())
        raise ValueError(
            f"`{name}` contains {bad.shape[0]} NaN/Inf value(s) (first at index {first}); clean or mask the input."
        )


def require_ndim(name: str, tensor: torch.Tensor, ndim: int, layout: str) -> None:
    if tensor.ndim != ndim:
        raise ValueError(f"`{name}` must be {ndim}-D {layout}; got shape {tuple(tensor.shape)}.")


def require_same_batch(**tensors: torch.Tensor | None) -> int | None:
    """Return the common batch size of the given inputs, or raise naming each input's batch size."""
    sizes = {name: t.shape[0] for name, t in tensors.items() if t is not None}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{name}={size}" for name, size in sizes.items())
        raise ValueError(f"Inputs have different batch sizes ({listing}); every modality needs one row per sample.")
    return next(iter(sizes.values()), None)
