"""Configuration of the CT tower: a 3D ViT with CT-CLIP v2's CT-ViT structure."""

from __future__ import annotations

from transformers import PreTrainedConfig

CT_POOLING_MODES = ("depth_mean_flatten", "mean", "max")
PEG_LAYOUTS = ("ctclip", "volumetric")
CT_STEMS = ("tubelet", "conv")


class CTViTConfig(PreTrainedConfig):
    r"""
    Configuration of [`CTViTModel`]. The defaults reproduce CT-CLIP v2's CT-ViT: 480 × 480 in-plane, 240 slices,
    20 × 20 × 10 tubelets → a 24 × 24 × 24 token grid, width 512, 8 heads of 32, 4 spatial + 4 temporal layers.

    Names follow transformers' video models: the depth axis of the volume plays the role of time.

    Args:
        image_size: in-plane size (height = width) the CLIP pooling was built for. The tower itself runs on any
            in-plane size that is a multiple of `patch_size`; `depth_mean_flatten` pooling needs this exact size
            because it flattens the token grid.
        num_slices: depth the model is usually run at (documentation and dummy inputs only; any multiple of
            `tubelet_size` works).
        patch_size: in-plane patch edge in voxels.
        tubelet_size: patch extent along depth (slices).
        num_channels: input channels (1 for CT).
        hidden_size: token width.
        num_attention_heads / head_dim: attention heads and their width (CT-CLIP: 8 × 32, so inner width 256).
        intermediate_size: GEGLU hidden width (CT-CLIP: int(4 · 2/3 · 512) = 1365).
        num_spatial_layers / num_temporal_layers: depth of the in-plane and the through-plane transformer.
        attention_scale: CT-CLIP's attention multiplies cosine-normalised q·k by a fixed scale (8), learnt per
            channel through `q_scale` / `k_scale`.
        position_bias_layers: depth of the continuous position-bias MLP of the spatial attention.
        peg_layout: how the position-encoding generator of the temporal layers sees its tokens. `"ctclip"`
            reproduces CT-CLIP exactly (its temporal PEG reshapes (b·h·w, t) tokens as if they were (b, t, h, w),
            which mixes positions); `"volumetric"` applies the 3D convolution on the true (t, h, w) layout.
            Converted CT-CLIP weights need `"ctclip"`; a tower trained from scratch may prefer `"volumetric"`.
        use_codebook: quantise the encoded tokens onto a cosine codebook before pooling, as CT-CLIP does (its
            VQ-VAE heritage). The codebook is a frozen buffer here (CT-CLIP's EMA updates are a VQ-VAE training
            artefact); in training mode the straight-through estimator passes gradients to the encoder. Off by
            default (a random frozen codebook only hurts a tower trained from scratch); the CT-CLIP converter
            turns it on because CT-CLIP's embeddings are computed from the quantised tokens.
        codebook_size: number of codes (CT-CLIP: 8192).
        pooling: `"depth_mean_flatten"` (CT-CLIP: mean over depth, flatten h·w·d), `"mean"` (mean over all
            tokens; any input size, width `hidden_size`) or `"max"` (channel-wise max over all tokens: a finding a few
            tokens wide is not averaged away by the normal rest of the volume; any input size).
        stem: how voxels become tokens. `"tubelet"` (CT-CLIP): each `tubelet_size × patch_size × patch_size` block is
            flattened and embedded by one linear map. `"conv"`: a small 3D convolutional stem (one full-resolution
            3 × 3 × 3 convolution, then stride-2 convolutions until the grid is the tubelet grid), which sees
            features smaller than a tubelet and straddling its edges; it yields the same token grid, so the rest of
            the tower is unchanged. Needs `patch_size` and `tubelet_size` to be powers of two.
        stem_channels: widths of the conv stem's stages before the last one, which outputs `hidden_size`; one entry
            per stride-2 stage, i.e. `log2(patch_size)` entries.
    """

    model_type = "ct_vit"
    base_config_key = "ct_config"

    image_size: int = 480
    num_slices: int = 240
    patch_size: int = 20
    tubelet_size: int = 10
    num_channels: int = 1
    hidden_size: int = 512
    num_attention_heads: int = 8
    head_dim: int = 32
    intermediate_size: int = 1365
    num_spatial_layers: int = 4
    num_temporal_layers: int = 4
    attention_scale: float = 8.0
    position_bias_layers: int = 2
    peg_layout: str = "ctclip"
    attention_dropout: float = 0.0
    hidden_dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    use_codebook: bool = False
    codebook_size: int = 8192
    pooling: str = "depth_mean_flatten"
    stem: str = "tubelet"
    stem_channels: list[int] | tuple[int, ...] = (16, 32, 64)
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        problems = []
        if self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.num_slices % self.tubelet_size:
            problems.append(f"num_slices {self.num_slices} is not a multiple of tubelet_size {self.tubelet_size}")
        if self.pooling not in CT_POOLING_MODES:
            problems.append(f"pooling {self.pooling!r} is not one of {CT_POOLING_MODES}")
        if self.peg_layout not in PEG_LAYOUTS:
            problems.append(f"peg_layout {self.peg_layout!r} is not one of {PEG_LAYOUTS}")
        self.stem_channels = [int(c) for c in self.stem_channels]
        if self.stem not in CT_STEMS:
            problems.append(f"stem {self.stem!r} is not one of {CT_STEMS}")
        elif self.stem == "conv":
            problems += self._conv_stem_problems()
        if problems:
            raise ValueError("CTViTConfig: " + "; ".join(problems))

    def _conv_stem_problems(self) -> list[str]:
        problems = []
        for name in ("patch_size", "tubelet_size"):
            size = getattr(self, name)
            if size < 1 or size & (size - 1):
                problems.append(f"the conv stem needs a power-of-two {name}, got {size}")
        if not problems and self.tubelet_size > self.patch_size:
            problems.append(f"the conv stem needs tubelet_size {self.tubelet_size} <= patch_size {self.patch_size}")
        if not problems and len(self.stem_channels) != self.patch_size.bit_length() - 1:
            problems.append(
                f"stem_channels {self.stem_channels} needs log2(patch_size) = {self.patch_size.bit_length() - 1} "
                "entries (one per stride-2 stage)"
            )
        if any(c < 1 for c in self.stem_channels):
            problems.append(f"stem_channels {self.stem_channels} must be positive")
        return problems

    @property
    def conv_stem_strides(self) -> list[tuple[int, int, int]]:
        """(depth, height, width) stride of each stride-2 stage of the conv stem. Depth, the coarser axis, halves in
        the last stages only, so the early stages keep its full resolution."""
        stages = self.patch_size.bit_length() - 1
        depth_halvings = self.tubelet_size.bit_length() - 1
        return [(2 if i >= stages - depth_halvings else 1, 2, 2) for i in range(stages)]

    @property
    def grid_size(self) -> int:
        """Tokens along each in-plane axis at `image_size`."""
        return self.image_size // self.patch_size

    @property
    def pooled_size(self) -> int:
        """Width of the pooled CT feature that the projection reads."""
        if self.pooling == "depth_mean_flatten":
            return self.grid_size * self.grid_size * self.hidden_size
        return self.hidden_size


__all__ = ["CTViTConfig"]
