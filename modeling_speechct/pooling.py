"""Pooling blocks shared by the family: frames (or layers) in, one vector out, padding respected."""

from __future__ import annotations

import math

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
    """Softmax-weighted sum of all hidden layers, weights initialised equal (SpeechCLIP's HuBERT feature mix).

    `layer_norm=True` normalises each layer over its features first (no affine parameters, so the state dict is
    the same): SpeechCLIP's large variant, whose upper HuBERT layers have much larger norms than the lower ones."""

    def __init__(self, num_layers: int, layer_norm: bool = False):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.layer_norm = layer_norm

    def forward(self, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if len(hidden_states) != self.weights.numel():
            raise ValueError(f"LayerWeightedSum expects {self.weights.numel()} layers, got {len(hidden_states)}.")
        stacked = torch.stack(hidden_states, dim=0)
        if self.layer_norm:
            stacked = F.layer_norm(stacked, stacked.shape[-1:])
        return torch.einsum("l,l...->...", self.weights.softmax(dim=0).to(stacked.dtype), stacked)


class AttentionPooling(nn.Module):
    """One learnt query attends over the frames (multi-head); padded frames get no weight.

    The parameters are an `nn.MultiheadAttention`'s, but the forward never projects the frames: with one query,
    head h's scores are `frames · (W_kʰᵀ q_h)` (the key bias adds a constant per head, which the softmax cancels)
    and its output is `W_vʰ (Σ_t α_t x_t) + b_vʰ` (the weights sum to one). That is the same function in
    O(frames · hidden · heads) instead of O(frames · hidden²): over Whisper's 1,500 frames a window it is the
    difference between the pooling dominating a training step and costing next to nothing (bench/bench_pooling.py).
    """

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.attention = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attention = self.attention
        heads, dim = attention.num_heads, hidden_states.shape[-1]
        w_q, w_k, w_v = attention.in_proj_weight.to(hidden_states.dtype).chunk(3)
        b_q, _, b_v = attention.in_proj_bias.to(hidden_states.dtype).chunk(3)
        query = (self.query[0, 0].to(hidden_states.dtype) @ w_q.T + b_q).view(heads, dim // heads)
        key_query = torch.einsum("hed,he->hd", w_k.view(heads, dim // heads, dim), query) / math.sqrt(dim // heads)
        scores = hidden_states @ key_query.T  # (batch, frames, heads)
        empty = None
        if mask is not None:
            mask = mask.bool()
            empty = ~mask.any(dim=1)  # a window of padding only: no weights to normalise
            scores = scores.masked_fill(~(mask | empty[:, None])[..., None], float("-inf"))
        weights = scores.softmax(dim=1)
        pooled = torch.einsum("bth,btd->bhd", weights, hidden_states)
        values = torch.einsum("bhd,hed->bhe", pooled, w_v.view(heads, dim // heads, dim)) + b_v.view(heads, -1)
        values = values.reshape(values.shape[0], dim)
        if empty is not None:  # as torch's MultiheadAttention: every key masked → a zero context (not NaN), projected
            values = values.masked_fill(empty[:, None], 0.0)
        return attention.out_proj(values)


class PrefixTransformer(nn.Module):
    """Prepend `num_prefix` learnable tokens to the frames and run one post-LN GELU transformer layer over both;
    returns every position, `(batch, num_prefix + frames, hidden)`. SpeechCLIP's branches read their tokens from
    it: one CLS (parallel), K CLS (cascaded), or 1 + K sharing the layer (hybrid); with 0 it is a plain layer."""

    def __init__(self, num_prefix: int, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float = 0.1):
        super().__init__()
        self.num_prefix = num_prefix
        if num_prefix:
            self.cls_token = nn.Parameter(torch.zeros(1, num_prefix, hidden_size))
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
        if self.num_prefix:
            cls = self.cls_token.expand(batch, -1, -1).to(hidden_states.dtype)
            hidden_states = torch.cat((cls, hidden_states), dim=1)
        padding = None
        if mask is not None:
            keep = torch.cat((mask.new_ones(batch, self.num_prefix), mask), dim=1).bool()
            padding = ~keep
        return self.layer(hidden_states, src_key_padding_mask=padding)


class CLSTransformerPooling(PrefixTransformer):
    """Prepend a learnable CLS token, run one post-LN transformer layer, read the CLS (SpeechCLIP parallel)."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float = 0.1):
        super().__init__(1, hidden_size, num_heads, intermediate_size, dropout)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return super().forward(hidden_states, mask)[:, 0]


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
