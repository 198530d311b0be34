"""The CT tower's convolutional stem and max pooling: same token grid as the tubelets, a receptive field that crosses
tubelet edges, validated configuration, saved and reloaded, and old configurations still meaning the tubelet stem."""

import math

import pytest
import torch

from modeling_speechct import CTViTConfig, CTViTModel
from modeling_speechct.modeling_ct_vit import CTViTConvStem, CTViTPatchEmbeddings
from modeling_speechct.training.teacher import benchmark_ct_config
from modeling_speechct.training.tiny import tiny_ct_config


def conv_config(**overrides) -> CTViTConfig:
    return tiny_ct_config(stem="conv", stem_channels=(4, 8, 16), pooling="max", **overrides)


@pytest.mark.parametrize("shape", [(1, 1, 8, 32, 32), (2, 1, 12, 16, 24), (1, 1, 4, 8, 8)])
def test_conv_stem_gives_the_tubelet_grid_and_max_pools_it(shape):
    torch.manual_seed(0)
    conv = CTViTModel(conv_config()).eval()
    tubelet = CTViTModel(tiny_ct_config(pooling="mean")).eval()
    assert isinstance(conv.embeddings, CTViTConvStem) and isinstance(tubelet.embeddings, CTViTPatchEmbeddings)
    x = torch.randn(shape)
    out = conv(x)
    assert out.last_hidden_state.shape == tubelet(x).last_hidden_state.shape
    expected = out.last_hidden_state.flatten(1, 3).max(dim=1).values
    torch.testing.assert_close(out.pooler_output, expected)
    assert out.pooler_output.shape == (shape[0], conv.config.pooled_size) == (shape[0], 32)


def test_stride_plan_multiplies_to_the_tubelet_and_keeps_depth_early():
    for patch, tubelet in [(8, 4), (16, 8), (4, 4), (8, 1), (2, 1)]:
        config = tiny_ct_config(
            stem="conv",
            patch_size=patch,
            tubelet_size=tubelet,
            image_size=2 * patch,
            num_slices=2 * tubelet,
            stem_channels=[4] * int(math.log2(patch)),
        )
        strides = config.conv_stem_strides
        assert len(strides) == int(math.log2(patch))
        assert tuple(math.prod(s[axis] for s in strides) for axis in range(3)) == (tubelet, patch, patch)
        depth = [s[0] for s in strides]
        assert depth == sorted(depth)  # stride 1 first: depth keeps its resolution in the early stages


def test_conv_stem_sees_across_tubelet_edges():
    """One voxel on a tubelet's edge moves only its own token through the linear tubelets, and its neighbours
    too through the 3 × 3 × 3 convolutions."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, 8, 32, 32)
    bumped = x.clone()
    bumped[0, 0, 3, 7, 7] += 5.0  # the last voxel of tubelet (0, 0, 0) along every axis
    for config, moved in ((tiny_ct_config(), 1), (conv_config(), None)):
        stem = CTViTModel(config).eval().embeddings
        with torch.no_grad():
            change = (stem(bumped) - stem(x)).abs().amax(dim=-1)[0]  # (t, h, w)
        changed = int((change > 1e-6).sum())
        if moved is not None:
            assert changed == moved and change[0, 0, 0] > 0
        else:
            assert changed > 1 and change[1, 1, 1] > 0  # the diagonal neighbour of the bumped tubelet


def test_conv_stem_trains_from_its_first_convolution():
    model = CTViTModel(conv_config()).train()
    model(torch.randn(2, 1, 8, 32, 32)).pooler_output.square().sum().backward()
    first = model.embeddings.blocks[0]
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stem": "patchify"}, "stem 'patchify' is not one of"),
        ({"patch_size": 6, "image_size": 36}, "power-of-two patch_size, got 6"),
        ({"tubelet_size": 16, "num_slices": 16}, "tubelet_size 16 <= patch_size 8"),
        ({"stem_channels": (4, 8)}, "needs log2(patch_size) = 3 entries"),
        ({"stem_channels": (4, 0, 8)}, "must be positive"),
        ({"pooling": "median"}, "pooling 'median' is not one of"),
    ],
)
def test_bad_conv_stem_configs_are_named(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_ct_config(**{"stem": "conv", "stem_channels": (4, 8, 16), **overrides})


def test_conv_tower_round_trips_and_old_configs_mean_tubelets(tmp_path):
    torch.manual_seed(0)
    model = CTViTModel(conv_config()).eval()
    model.save_pretrained(tmp_path / "conv")
    again = CTViTModel.from_pretrained(tmp_path / "conv").eval()
    assert again.config.stem == "conv" and again.config.stem_channels == [4, 8, 16]
    x = torch.randn(1, 1, 8, 32, 32)
    torch.testing.assert_close(again(x).pooler_output, model(x).pooler_output)

    old = tiny_ct_config().to_dict()  # a config.json written before the stem existed
    del old["stem"], old["stem_channels"]
    assert CTViTConfig.from_dict(old).stem == "tubelet"


def test_benchmark_conv_preset_keeps_the_benchmark_grid():
    tubelet, conv = benchmark_ct_config(), benchmark_ct_config("conv")
    assert (conv.stem, conv.pooling, tubelet.stem) == ("conv", "max", "tubelet")
    x = torch.zeros(1, 1, 24, 48, 48)
    with torch.no_grad():
        assert CTViTModel(conv).embeddings(x).shape == CTViTModel(tubelet).embeddings(x).shape == (1, 6, 6, 6, 128)
