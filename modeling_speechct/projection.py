"""Projection heads into the shared embedding space, for every system of the family.

SpeechCT-CLIP and CT-CLIP project each tower with one bias-free linear layer (CLIP's); AcuLa's heads onto a language
model's space are two-layer MLPs. One builder serves both, and one initialiser: weights N(0, 1/fan_in), so a fresh
head keeps the scale of its input (CLIP's `*_projection` initialisation), biases zero.
"""

from __future__ import annotations

from torch import nn
from transformers import initialization as init


def projection_head(
    in_features: int,
    out_features: int,
    hidden_features: int | None = None,
    bias: bool = False,
    activation: str = "gelu",
    dropout: float = 0.0,
) -> nn.Module:
    """`nn.Linear(in, out)` (its state-dict keys stay `weight` [, `bias`], as saved folders expect), or with
    `hidden_features` a `Linear → GELU (or ReLU) [→ Dropout] → Linear` MLP (AcuLa's heads: ReLU, dropout 0.2)."""
    if hidden_features is None:
        return nn.Linear(in_features, out_features, bias=bias)
    act = {"gelu": nn.GELU, "relu": nn.ReLU}[activation]()
    layers = [nn.Linear(in_features, hidden_features, bias=bias), act]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(hidden_features, out_features, bias=bias))


def init_projection_head(head: nn.Module) -> None:
    """Every linear layer of `head`: weights N(0, 1/in_features), biases 0."""
    for layer in head.modules():
        if isinstance(layer, nn.Linear):
            init.normal_(layer.weight, std=layer.in_features**-0.5)
            if layer.bias is not None:
                init.zeros_(layer.bias)
