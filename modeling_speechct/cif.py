"""Continuous integrate-and-fire (CIF; Dong & Xu, 2020): variable-length segmentation of speech frames into tokens.

Each frame gets a weight α ∈ (0, 1) (`CIFWeights`); the weights are accumulated along time and a token *fires*
whenever the sum reaches the threshold (1.0): the token is the α-weighted sum of the frames since the last firing,
the boundary frame's weight split between the two tokens. SpeechCLIP+ uses it in place of a fixed number of CLS
tokens, so an utterance gives about as many keywords as it has words; a quantity loss `|Σα − target|`
(`losses.quantity_loss`) teaches the weights how many tokens to fire.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

_TOLERANCE = 1e-5  # weights scaled to sum to n tokens must fire n, not n - 1 for a rounding error


class CIFWeights(nn.Module):
    """Per-frame firing weights: Conv1d(k) → ReLU → dropout → Linear → sigmoid (SpeechCLIP+); padding gets 0."""

    def __init__(self, hidden_size: int, kernel_size: int = 3, dropout: float = 0.1):
        super().__init__()
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.to(hidden_states.dtype)
        x = self.conv((hidden_states * keep[..., None]).transpose(1, 2)).transpose(1, 2).relu()
        return torch.sigmoid(self.linear(self.dropout(x))).squeeze(-1) * keep


@dataclass
class CIFOutput:
    """`tokens` `(batch, max_tokens_fired, hidden)`, `token_mask` `(batch, max_tokens_fired)` (False: padding),
    `num_tokens` `(batch,)`."""

    tokens: torch.Tensor
    token_mask: torch.Tensor
    num_tokens: torch.Tensor


def integrate_and_fire(
    hidden_states: torch.Tensor,
    alpha: torch.Tensor,
    threshold: float = 1.0,
    max_tokens: int = 75,
    tail_threshold: float | None = None,
) -> CIFOutput:
    """Fire tokens from frames `(batch, frames, hidden)` with weights `alpha` `(batch, frames)` (0 on padding).

    A frame whose weight completes the threshold splits it: the part that reaches the threshold closes the current
    token, the rest starts the next one (a weight above the threshold — possible once weights are scaled to a
    target length — fires several tokens from one frame). With `tail_threshold` (inference), a residual weight of
    at least that much at the end fires one last token of what was integrated; otherwise the residual is dropped.
    At most `max_tokens` tokens per row are kept. Differentiable in both inputs."""
    if hidden_states.shape[:2] != alpha.shape:
        raise ValueError(f"CIF: alpha {tuple(alpha.shape)} does not match frames {tuple(hidden_states.shape[:2])}.")
    batch, frames, _ = hidden_states.shape
    accumulated = alpha.new_zeros(batch)
    state = hidden_states.new_zeros(batch, hidden_states.shape[-1])
    fired: list[tuple[torch.Tensor, torch.Tensor]] = []  # (token vectors (batch, hidden), which rows fired)
    for t in range(frames):
        frame, remaining = hidden_states[:, t], alpha[:, t]
        while True:
            fire = accumulated + remaining >= threshold - _TOLERANCE
            if not bool(fire.any()):
                break
            part = torch.where(fire, torch.minimum(threshold - accumulated, remaining), torch.zeros_like(remaining))
            fired.append((state + part[:, None] * frame, fire))
            state = torch.where(fire[:, None], torch.zeros_like(state), state)
            accumulated = torch.where(fire, torch.zeros_like(accumulated), accumulated)
            remaining = remaining - part
        state = state + remaining[:, None] * frame
        accumulated = accumulated + remaining
    if tail_threshold is not None:
        fired.append((state, accumulated >= tail_threshold))
    if not fired:
        empty = hidden_states.new_zeros(batch, 0, hidden_states.shape[-1])
        return CIFOutput(empty, alpha.new_zeros(batch, 0, dtype=torch.bool), alpha.new_zeros(batch, dtype=torch.long))
    vectors = torch.stack([v for v, _ in fired], dim=1)  # (batch, steps, hidden)
    fires = torch.stack([f for _, f in fired], dim=1)  # (batch, steps)
    position = fires.long().cumsum(dim=1) - 1
    keep = fires & (position < max_tokens)
    num_tokens = keep.sum(dim=1)
    width = int(num_tokens.max())
    rows, steps = keep.nonzero(as_tuple=True)
    tokens = hidden_states.new_zeros(batch, width, hidden_states.shape[-1])
    tokens = tokens.index_put((rows, position[rows, steps]), vectors[rows, steps])
    token_mask = torch.arange(width, device=alpha.device)[None, :] < num_tokens[:, None]
    return CIFOutput(tokens, token_mask, num_tokens)


def scale_to_target(alpha: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rescale each row's weights to sum to its target length, so it fires exactly that many tokens (SpeechCLIP+
    does this for its first training steps, before the weights have learnt a sensible count)."""
    total = alpha.sum(dim=1, keepdim=True).clamp(min=1e-6)
    return alpha * (target.to(alpha.dtype)[:, None] / total)
