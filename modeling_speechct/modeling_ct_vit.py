"""The CT tower: CT-CLIP v2's CT-ViT rebuilt on transformers (SDPA attention, gradient checkpointing, CPU-safe).

Structure (so converted CT-CLIP weights give CT-CLIP's embeddings):
tubelet patches → LayerNorm → Linear → LayerNorm (or, with `stem="conv"`, a small 3D convolutional stem onto the same
token grid); spatial transformer over each slab's h × w tokens with a
continuous position bias; temporal transformer over each (h, w) column's t tokens; every layer is
PEG (depthwise 3D conv) → cosine-sim attention with learnt per-channel q/k scales → GEGLU feed-forward, all
pre-norm and residual; optional cosine codebook; CLIP pooling = mean over depth, flatten.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_ct_vit import CTViTConfig
from .validation import require_finite, require_ndim


@dataclass
class CTViTModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: `(batch, depth_tokens, height_tokens, width_tokens, hidden_size)` encoded (and, with
            `use_codebook`, quantised) tokens.
        pooler_output: `(batch, config.pooled_size)` the CLIP pooling of `last_hidden_state`.
        codebook_indices: `(batch, t, h, w)` chosen codes when the codebook is on.
        hidden_states: the token grid after the patch embedding and after every layer, each as
            `(batch, t, h, w, hidden_size)`, when `output_hidden_states=True`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    codebook_indices: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class CTViTLayerNorm(nn.Module):
    """Bias-free LayerNorm (CT-CLIP's: a learnt gain, a bias fixed at zero)."""

    def __init__(self, hidden_size: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(hidden_states, hidden_states.shape[-1:], self.weight, None, self.eps)


class CTViTPatchEmbeddings(GradientCheckpointingLayer):
    """Cut the volume into tubelets of `tubelet_size × patch_size × patch_size` voxels and embed each one.

    Checkpointed like the layers: at 240 × 480 × 480 its tubelet copy and first LayerNorm hold 450 MB for backward.
    """

    def __init__(self, config: CTViTConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.tubelet_size = config.tubelet_size
        patch_dim = config.num_channels * config.tubelet_size * config.patch_size**2
        self.input_norm = nn.LayerNorm(patch_dim, eps=config.layer_norm_eps)
        self.projection = nn.Linear(patch_dim, config.hidden_size)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, ct_values: torch.Tensor) -> torch.Tensor:
        b, c, depth, height, width = ct_values.shape
        pt, p = self.tubelet_size, self.patch_size
        t, h, w = depth // pt, height // p, width // p
        # b c (t pt) (h p1) (w p2) -> b t h w (c pt p1 p2)
        patches = ct_values.reshape(b, c, t, pt, h, p, w, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
        patches = patches.reshape(b, t, h, w, c * pt * p * p)
        return self.output_norm(self.projection(self.input_norm(patches)))


class CTViTConvStem(GradientCheckpointingLayer):
    """Voxels → tokens through 3D convolutions (`stem="conv"`): a full-resolution 3 × 3 × 3 convolution, then
    stride-2 stages down to the tubelet grid, each convolution → GroupNorm → GELU; the last stage outputs
    `hidden_size` and ends in a LayerNorm, as the tubelet embedding does.

    Why: a linear tubelet embedding sees each 8 × 8 × 4 block on its own, so a finding a few voxels across that
    straddles a block edge is split between tokens; on the built benchmark a convolutional front end learns the
    small findings where the tubelet one does not (docs/teacher.md)."""

    def __init__(self, config: CTViTConfig):
        super().__init__()
        widths = [*config.stem_channels, config.hidden_size]
        strides = [(1, 1, 1), *config.conv_stem_strides]
        blocks: list[nn.Module] = []
        in_channels = config.num_channels
        for i, (out_channels, stride) in enumerate(zip(widths, strides, strict=True)):
            blocks.append(nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False))
            if i < len(widths) - 1:
                blocks += [nn.GroupNorm(math.gcd(8, out_channels), out_channels), nn.GELU()]
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, ct_values: torch.Tensor) -> torch.Tensor:
        return self.output_norm(self.blocks(ct_values).permute(0, 2, 3, 4, 1))  # b t h w d


class CTViTContinuousPositionBias(nn.Module):
    """Attention bias from an MLP over log-scaled relative (row, column) offsets (Swin v2's continuous bias).

    The MLP runs once per distinct offset ((2h−1)(2w−1) of them) and the result is gathered into the (n × n) pair
    grid: the same numbers as running it on every pair, as CT-CLIP does, at 1/150 of the memory at 24 × 24 tokens
    (CT-CLIP's per-pair MLP holds three 680 MB activations for backward)."""

    def __init__(self, config: CTViTConfig):
        super().__init__()
        widths = [2] + [config.hidden_size] * config.position_bias_layers
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in itertools.pairwise(widths))
        self.output = nn.Linear(config.hidden_size, config.num_attention_heads)

    def forward(self, height: int, width: int) -> torch.Tensor:
        device = self.output.weight.device
        rows = torch.arange(-(height - 1), height, device=device)
        cols = torch.arange(-(width - 1), width, device=device)
        offsets = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2).float()
        hidden = torch.sign(offsets) * torch.log1p(offsets.abs())
        for layer in self.layers:
            hidden = F.leaky_relu(layer(hidden.to(layer.weight.dtype)), 0.1)
        table = self.output(hidden)  # (distinct offsets, heads)

        r, c = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
        r, c = r.flatten(), c.flatten()
        index = (r[:, None] - r[None, :] + height - 1) * (2 * width - 1) + (c[:, None] - c[None, :] + width - 1)
        return table[index].permute(2, 0, 1).unsqueeze(0)  # (1, heads, n, n)


class CTViTPositionEncodingGenerator(nn.Module):
    """PEG: a depthwise 3×3×3 convolution over the token grid, causal along depth (pads two slabs in front)."""

    def __init__(self, config: CTViTConfig, token_layout: str):
        super().__init__()
        self.conv = nn.Conv3d(config.hidden_size, config.hidden_size, 3, groups=config.hidden_size)
        # "spatial": tokens arrive as (b·t, h·w); "temporal": as (b·h·w, t).
        self.true_temporal_layout = token_layout == "temporal" and config.peg_layout == "volumetric"

    def forward(self, hidden_states: torch.Tensor, grid: tuple[int, int, int, int]) -> torch.Tensor:
        b, t, h, w = grid
        dim = hidden_states.shape[-1]
        if self.true_temporal_layout:
            volume = hidden_states.reshape(b, h, w, t, dim).permute(0, 4, 3, 1, 2)
        else:
            # CT-CLIP reshapes every layer's tokens as (b, t, h, w); for its temporal layers that is a
            # reinterpretation of (b, h, w, t) memory, kept on purpose for weight compatibility.
            volume = hidden_states.reshape(b, t, h, w, dim).permute(0, 4, 1, 2, 3)
        volume = self.conv(F.pad(volume, (1, 1, 1, 1, 2, 0)))
        if self.true_temporal_layout:
            return volume.permute(0, 3, 4, 2, 1).reshape(hidden_states.shape)
        return volume.permute(0, 2, 3, 4, 1).reshape(hidden_states.shape)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain einsum-softmax attention (CT-CLIP's own formulation); the reference the SDPA path is checked against."""
    scores = torch.einsum("bhid,bhjd->bhij", query, key) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    output = torch.einsum("bhij,bhjd->bhid", weights, value)
    return output.transpose(1, 2).contiguous(), weights


class CTViTAttention(nn.Module):
    """Pre-norm multi-head attention on L2-normalised queries and keys with learnt per-channel scales."""

    def __init__(self, config: CTViTConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scaling = config.attention_scale
        self.is_causal = False
        inner = self.num_heads * self.head_dim
        self.norm = CTViTLayerNorm(config.hidden_size, config.layer_norm_eps)
        self.q_proj = nn.Linear(config.hidden_size, inner, bias=False)
        self.kv_proj = nn.Linear(config.hidden_size, 2 * inner, bias=False)
        self.q_scale = nn.Parameter(torch.ones(self.head_dim))
        self.k_scale = nn.Parameter(torch.ones(self.head_dim))
        self.out_proj = nn.Linear(inner, config.hidden_size, bias=False)

    def forward(self, hidden_states: torch.Tensor, position_bias: torch.Tensor | None) -> torch.Tensor:
        batch, length, _ = hidden_states.shape
        normed = self.norm(hidden_states)
        # CT-CLIP normalises the queries' input only: keys and values read the un-normalised stream.
        key, value = self.kv_proj(hidden_states).chunk(2, dim=-1)
        shape = (batch, length, self.num_heads, self.head_dim)
        query = F.normalize(self.q_proj(normed).view(shape).transpose(1, 2), dim=-1) * self.q_scale
        key = F.normalize(key.view(shape).transpose(1, 2), dim=-1) * self.k_scale
        value = value.view(shape).transpose(1, 2)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        if position_bias is not None:
            position_bias = position_bias.to(query.dtype)
        output, _ = attention_interface(
            self,
            query,
            key,
            value,
            position_bias,
            scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
            is_causal=False,
        )
        return self.out_proj(output.reshape(batch, length, -1))


class CTViTFeedForward(nn.Module):
    """Pre-norm GEGLU feed-forward without biases."""

    def __init__(self, config: CTViTConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.fc_in = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        value, gate = self.fc_in(self.norm(hidden_states)).chunk(2, dim=-1)
        return self.fc_out(self.dropout(F.gelu(gate) * value))


class CTViTLayer(GradientCheckpointingLayer):
    def __init__(self, config: CTViTConfig, token_layout: str):
        super().__init__()
        self.peg = CTViTPositionEncodingGenerator(config, token_layout)
        self.attention = CTViTAttention(config)
        self.feed_forward = CTViTFeedForward(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_bias: torch.Tensor | None,
        grid: tuple[int, int, int, int],
    ) -> torch.Tensor:
        hidden_states = hidden_states + self.peg(hidden_states, grid)
        hidden_states = hidden_states + self.attention(hidden_states, position_bias)
        return hidden_states + self.feed_forward(hidden_states)


class CTViTEncoder(nn.Module):
    def __init__(self, config: CTViTConfig, num_layers: int, token_layout: str):
        super().__init__()
        self.layers = nn.ModuleList(CTViTLayer(config, token_layout) for _ in range(num_layers))
        self.norm = CTViTLayerNorm(config.hidden_size, config.layer_norm_eps)


class CTViTCodebook(nn.Module):
    """Cosine-similarity vector quantisation onto a frozen codebook, straight-through in training."""

    # Tokens scored against the codebook at once: bounds the (tokens × codes) score matrix to ~128 MB.
    chunk_tokens = 4096

    def __init__(self, config: CTViTConfig):
        super().__init__()
        self.register_buffer("codebook", torch.zeros(config.codebook_size, config.hidden_size))

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = F.normalize(hidden_states.reshape(-1, hidden_states.shape[-1]).float(), dim=-1)
        codes = F.normalize(self.codebook.float(), dim=-1)
        indices = torch.cat([(chunk @ codes.T).argmax(dim=-1) for chunk in flat.split(self.chunk_tokens)])
        quantized = self.codebook[indices].view(hidden_states.shape).to(hidden_states.dtype)
        if torch.is_grad_enabled() and hidden_states.requires_grad:
            quantized = hidden_states + (quantized - hidden_states).detach()
        return quantized, indices.view(hidden_states.shape[:-1])


class CTViTPreTrainedModel(PreTrainedModel):
    config: CTViTConfig
    config_class = CTViTConfig
    base_model_prefix = "ct_vit"
    main_input_name = "ct_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _no_split_modules: ClassVar[list[str]] = ["CTViTLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, CTViTAttention):
            init.ones_(module.q_scale)
            init.ones_(module.k_scale)
        elif isinstance(module, CTViTLayerNorm):
            init.ones_(module.weight)
        elif isinstance(module, CTViTCodebook):
            init.normal_(module.codebook)
            module.codebook.copy_(F.normalize(module.codebook, dim=-1))


class CTViTModel(CTViTPreTrainedModel):
    """The CT tower. Input `ct_values` `(batch, channels, depth, height, width)`, any size that is a multiple of the
    tubelet along depth and of the patch in-plane; output the token grid and its CLIP pooling."""

    def __init__(self, config: CTViTConfig):
        super().__init__(config)
        self.embeddings = CTViTConvStem(config) if config.stem == "conv" else CTViTPatchEmbeddings(config)
        self.spatial_position_bias = CTViTContinuousPositionBias(config)
        self.spatial_encoder = CTViTEncoder(config, config.num_spatial_layers, "spatial")
        self.temporal_encoder = CTViTEncoder(config, config.num_temporal_layers, "temporal")
        self.quantizer = CTViTCodebook(config) if config.use_codebook else None
        self.post_init()

    def check_input(self, ct_values: torch.Tensor, name: str = "ct_values") -> None:
        cfg = self.config
        require_ndim(name, ct_values, 5, "(batch, channels, depth, height, width)")
        _, channels, depth, height, width = ct_values.shape
        problems = []
        if channels != cfg.num_channels:
            problems.append(f"{channels} channel(s), the tower takes {cfg.num_channels}")
        if depth == 0 or depth % cfg.tubelet_size:
            problems.append(f"depth {depth} is not a positive multiple of tubelet_size {cfg.tubelet_size}")
        for axis, size in (("height", height), ("width", width)):
            if size == 0 or size % cfg.patch_size:
                problems.append(f"{axis} {size} is not a positive multiple of patch_size {cfg.patch_size}")
        if cfg.pooling == "depth_mean_flatten" and (height, width) != (cfg.image_size, cfg.image_size):
            problems.append(
                f"in-plane size {height}×{width} differs from image_size {cfg.image_size}, which the "
                "depth_mean_flatten pooling needs (use pooling='mean' for other sizes)"
            )
        if problems:
            raise ValueError(f"`{name}` of shape {tuple(ct_values.shape)}: " + "; ".join(problems) + ".")
        require_finite(name, ct_values)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP pooling of a `(b, t, h, w, d)` grid: CT-CLIP's mean over depth then flatten, a global mean, or a
        global channel-wise max."""
        if self.config.pooling == "depth_mean_flatten":
            return tokens.mean(dim=1).reshape(tokens.shape[0], -1)
        if self.config.pooling == "max":
            return tokens.amax(dim=(1, 2, 3))
        return tokens.mean(dim=(1, 2, 3))

    def forward(
        self,
        ct_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CTViTModelOutput | tuple:
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self.check_input(ct_values)

        tokens = self.embeddings(ct_values.to(self.dtype))
        b, t, h, w, d = tokens.shape
        grid = (b, t, h, w)
        states: list[torch.Tensor] = [tokens] if output_hidden_states else []

        hidden = tokens.reshape(b * t, h * w, d)
        bias = self.spatial_position_bias(h, w)
        for layer in self.spatial_encoder.layers:
            hidden = layer(hidden, bias, grid)
            if output_hidden_states:
                states.append(hidden.view(b, t, h, w, d))
        hidden = self.spatial_encoder.norm(hidden)

        hidden = hidden.view(b, t, h, w, d).permute(0, 2, 3, 1, 4).reshape(b * h * w, t, d)
        for layer in self.temporal_encoder.layers:
            hidden = layer(hidden, None, grid)
            if output_hidden_states:
                states.append(hidden.view(b, h, w, t, d).permute(0, 3, 1, 2, 4))
        hidden = self.temporal_encoder.norm(hidden)
        tokens = hidden.view(b, h, w, t, d).permute(0, 3, 1, 2, 4)

        indices = None
        if self.quantizer is not None:
            tokens, indices = self.quantizer(tokens)
        pooled = self.pool(tokens)

        output = CTViTModelOutput(
            last_hidden_state=tokens,
            pooler_output=pooled,
            codebook_indices=indices,
            hidden_states=tuple(states) if output_hidden_states else None,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["CTViTConvStem", "CTViTModel", "CTViTModelOutput", "CTViTPreTrainedModel"]
