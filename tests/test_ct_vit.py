"""The CT tower: shapes, SDPA ≡ eager, checkpointing ≡ plain, codebook, PEG layouts, input errors."""

import pytest
import torch
import torch.nn.functional as F

from modeling_speechct import CTViTConfig, CTViTModel
from modeling_speechct.training.tiny import tiny_ct_config


def _randomise(model: torch.nn.Module) -> None:
    """Move every parameter off its initial value so scales, norms and biases all matter."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize("shape", [(1, 1, 8, 32, 32), (2, 1, 12, 16, 24), (1, 1, 4, 8, 8)])
def test_any_multiple_of_the_patch_works_with_mean_pooling(shape):
    model = CTViTModel(tiny_ct_config(pooling="mean")).eval()
    out = model(torch.randn(shape))
    b, _, d, h, w = shape
    assert out.last_hidden_state.shape == (b, d // 4, h // 8, w // 8, 32)
    assert out.pooler_output.shape == (b, 32)
    torch.testing.assert_close(out.pooler_output, out.last_hidden_state.mean(dim=(1, 2, 3)))


def test_ctclip_pooling_is_depth_mean_then_flatten():
    model = CTViTModel(tiny_ct_config()).eval()
    out = model(torch.randn(2, 1, 8, 32, 32))
    grid = out.last_hidden_state
    assert out.pooler_output.shape == (2, 4 * 4 * 32) == (2, model.config.pooled_size)
    expected = torch.stack([grid[i].mean(dim=0).flatten() for i in range(2)])
    torch.testing.assert_close(out.pooler_output, expected)


def test_sdpa_matches_einsum_attention():
    sdpa = CTViTModel(tiny_ct_config()).eval()
    _randomise(sdpa)
    eager = CTViTModel(tiny_ct_config()).eval()
    eager.load_state_dict(sdpa.state_dict())
    eager.set_attn_implementation("eager")
    assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
    x = torch.randn(2, 1, 8, 32, 32)
    torch.testing.assert_close(sdpa(x).last_hidden_state, eager(x).last_hidden_state, atol=2e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_ct_config(num_spatial_layers=2, num_temporal_layers=2)
    plain = CTViTModel(config).train()
    _randomise(plain)
    checkpointed = CTViTModel(config).train()
    checkpointed.load_state_dict(plain.state_dict())
    enable = (
        getattr(checkpointed, "activation_checkpointing_enable", None) or checkpointed.gradient_checkpointing_enable
    )
    enable()
    assert all(layer.gradient_checkpointing for layer in checkpointed.spatial_encoder.layers)
    x = torch.randn(1, 1, 8, 32, 32)
    for model in (plain, checkpointed):
        model(x).pooler_output.square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name, atol=1e-5, rtol=1e-4)


def test_codebook_outputs_codes_in_eval_and_passes_gradients_in_training():
    model = CTViTModel(tiny_ct_config(use_codebook=True, codebook_size=16))
    x = torch.randn(1, 1, 8, 32, 32)
    model.eval()
    with torch.no_grad():
        out = model(x)
    codes = model.quantizer.codebook
    tokens = out.last_hidden_state.reshape(-1, 32)
    torch.testing.assert_close(tokens, codes[out.codebook_indices.flatten()])
    # The chosen code is the cosine-nearest one to the pre-quantisation token.
    model.quantizer, quantizer = None, model.quantizer
    with torch.no_grad():
        raw = model(x).last_hidden_state.reshape(-1, 32)
    model.quantizer = quantizer
    nearest = (F.normalize(raw, dim=-1) @ F.normalize(codes, dim=-1).T).argmax(dim=-1)
    assert torch.equal(nearest, out.codebook_indices.flatten())
    model.train()
    model(x).pooler_output.sum().backward()
    assert model.embeddings.projection.weight.grad.abs().sum() > 0


def test_volumetric_peg_convolves_the_true_token_grid():
    config = tiny_ct_config(peg_layout="volumetric")
    model = CTViTModel(config)
    peg = model.temporal_encoder.layers[0].peg
    b, t, h, w, d = 1, 3, 2, 4, 32
    grid = torch.randn(b, t, h, w, d)
    tokens = grid.permute(0, 2, 3, 1, 4).reshape(b * h * w, t, d)  # temporal layout (b·h·w, t)
    expected = F.conv3d(
        F.pad(grid.permute(0, 4, 1, 2, 3), (1, 1, 1, 1, 2, 0)), peg.conv.weight, peg.conv.bias, groups=d
    ).permute(0, 2, 3, 4, 1)
    got = peg(tokens, (b, t, h, w)).reshape(b, h, w, t, d).permute(0, 3, 1, 2, 4)
    torch.testing.assert_close(got, expected)
    ctclip = CTViTModel(tiny_ct_config(peg_layout="ctclip")).temporal_encoder.layers[0].peg
    ctclip.load_state_dict(peg.state_dict())
    assert not torch.allclose(ctclip(tokens, (b, t, h, w)), peg(tokens, (b, t, h, w)))


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (torch.randn(1, 8, 32, 32), "must be 5-D"),
        (torch.randn(1, 1, 7, 32, 32), "depth 7 is not a positive multiple of tubelet_size 4"),
        (torch.randn(1, 1, 8, 30, 32), "height 30 is not a positive multiple of patch_size 8"),
        (torch.randn(1, 2, 8, 32, 32), "2 channel"),
        (torch.randn(1, 1, 8, 16, 16), "differs from image_size 32"),
    ],
)
def test_bad_ct_shapes_are_named(tensor, message):
    with pytest.raises(ValueError, match=message):
        CTViTModel(tiny_ct_config())(tensor)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_voxels_are_refused(bad):
    x = torch.randn(1, 1, 8, 32, 32)
    x[0, 0, 3, 5, 7] = bad
    with pytest.raises(
        ValueError, match=r"`ct_values` contains 1 NaN/Inf value\(s\) \(first at index \(0, 0, 3, 5, 7\)\)"
    ):
        CTViTModel(tiny_ct_config())(x)


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="image_size 30 is not a multiple of patch_size 8"):
        CTViTConfig(image_size=30, patch_size=8)
    with pytest.raises(ValueError, match="pooling 'median'"):
        CTViTConfig(pooling="median")
