"""Projection heads: the linear head keeps CLIP's bias-free layer (and its state-dict keys), the MLP head maps
through GELU, and the initialiser draws N(0, 1/fan_in) with zero biases."""

import math

import torch
from torch import nn

from modeling_speechct.projection import init_projection_head, projection_head


def test_the_linear_head_is_a_bias_free_linear_layer_with_the_saved_keys():
    head = projection_head(12, 4)
    assert isinstance(head, nn.Linear) and head.bias is None
    assert list(head.state_dict()) == ["weight"]


def test_the_mlp_head_computes_linear_gelu_linear():
    torch.manual_seed(0)
    head = projection_head(6, 3, hidden_features=5, bias=True)
    x = torch.randn(4, 6, dtype=torch.float64)
    head = head.double()
    first, last = head[0], head[2]
    expected = last.weight @ torch.nn.functional.gelu(x @ first.weight.T + first.bias).T
    torch.testing.assert_close(head(x), expected.T + last.bias)


def test_the_initialiser_draws_unit_fan_in_variance_and_zero_biases():
    torch.manual_seed(0)
    head = projection_head(400, 300, hidden_features=200, bias=True)
    for layer in head.modules():
        if isinstance(layer, nn.Linear):
            nn.init.constant_(layer.weight, 3.0)
            nn.init.constant_(layer.bias, 1.0)
    init_projection_head(head)
    for layer in (head[0], head[2]):
        std = layer.weight.std().item()
        assert abs(std - 1 / math.sqrt(layer.in_features)) < 0.03 / math.sqrt(layer.in_features)
        assert abs(layer.weight.mean().item()) < 0.01 / math.sqrt(layer.in_features)
        assert torch.count_nonzero(layer.bias) == 0
