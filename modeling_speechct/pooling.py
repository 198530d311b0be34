"""Pooling blocks shared by the family: frames (or layers) in, one vector out, padding respected."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over dim 1 of `(batch, length, dim)` counting only positions where `mask` is true."""
    if mask is None:
        return hidden_states.mean(dim=1)
    weights = mask.to(hidden_states.dtype).unsqueeze(-1)
    return (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class LayerWeightedSum(nn.Module):
    """Softmax-weighted sum of all hidden layers, weights initialised equal (SpeechCLIP's HuBERT feature mix)."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def forward(self, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if len(hidden_states) != self.weights.numel():
            raise ValueError(f"LayerWeightedSum expects {self.weights.numel()} layers, got {len(hidden_states)}.")
        stacked = torch.stack(hidden_states, dim=0)
        return torch.einsum("l,l...->...", self.weights.softmax(dim=0).to(stacked.dtype), stacked)


class AttentionPooling(nn.Module):
    """One learnt query attends over the frames (multi-head); padded frames get no weight."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.attention = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        query = self.query.expand(hidden_states.shape[0], -1, -1).to(hidden_states.dtype)
        padding = None if mask is None else ~mask.bool()
        pooled, _ = self.attention(query, hidden_states, hidden_states, key_padding_mask=padding, need_weights=False)
        return pooled[:, 0]


class CLSTransformerPooling(nn.Module):
    """Prepend a learnable CLS token, run one post-LN transformer layer, read the CLS (SpeechCLIP parallel)."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float = 0.1):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.layer = nn.TransformerEncoderLayer(
            hidden_size,
            num_heads,
            dim_feedforward=intermediate_size,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=False,
        )

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch = hidden_states.shape[0]
        cls = self.cls_token.expand(batch, -1, -1).to(hidden_states.dtype)
        hidden_states = torch.cat((cls, hidden_states), dim=1)
        padding = None
        if mask is not None:
            keep = torch.cat((mask.new_ones(batch, 1), mask), dim=1).bool()
            padding = ~keep
        return self.layer(hidden_states, src_key_padding_mask=padding)[:, 0]


def stride_frames(hidden: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked average of each run of `stride` frames: `(batch, frames, dim)` → `(batch, ⌈frames / stride⌉, dim)`;
    a strided frame is real when any of its frames is."""
    batch, frames, dim = hidden.shape
    pad = -frames % stride
    mask = F.pad(mask.to(hidden.dtype), (0, pad))
    hidden = F.pad(hidden, (0, 0, 0, pad)) * mask[..., None]
    sums = hidden.view(batch, -1, stride, dim).sum(dim=2)
    counts = mask.view(batch, -1, stride).sum(dim=2)
    return sums / counts.clamp(min=1)[..., None], counts > 0


def build_frame_pooler(mode: str, hidden_size: int, num_heads: int, intermediate_size: int) -> nn.Module | None:
    """The pooling module for `mode`, or None for the parameter-free masked mean."""
    if mode == "mean":
        return None
    if hidden_size % num_heads:
        raise ValueError(f"speech pooling: hidden size {hidden_size} is not divisible by {num_heads} heads.")
    if mode == "attention":
        return AttentionPooling(hidden_size, num_heads)
    if mode == "cls_transformer":
        return CLSTransformerPooling(hidden_size, num_heads, intermediate_size)
    raise ValueError(f"unknown speech pooling {mode!r}")
