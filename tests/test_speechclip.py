"""SpeechCLIP / SpeechCLIP+: the keyword path through CLIP's text encoder, straight-through quantisation, CIF
against a hand computation, the quantity loss, same-image masking, the hybrid loss, frozen towers, Auto classes and
loading with `trust_remote_code` where the package is not importable."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from no_package import WITHOUT_PACKAGE
from numpy_reference import info_nce
from transformers import AutoConfig, AutoModel, CLIPConfig, CLIPModel

from modeling_speechct import SpeechClipConfig, SpeechClipModel
from modeling_speechct.cif import integrate_and_fire, scale_to_target
from modeling_speechct.losses import quantity_loss
from modeling_speechct.modeling_speechclip import clip_special_ids
from modeling_speechct.quantization import KeywordQuantizer, allowed_vocabulary
from modeling_speechct.training.tiny import tiny_clip_config, tiny_speechclip_config

MODES = ("parallel", "cascaded", "cascaded_plus", "hybrid", "hybrid_plus")


def _model(mode="parallel", seed=0, **overrides):
    torch.manual_seed(seed)
    return SpeechClipModel(tiny_speechclip_config(mode, **overrides))


def _batch(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1600, generator=g), torch.randn(n, 3, 32, 32, generator=g)


# ------------------------------------------------------------------------------------------ the keyword text path


@pytest.mark.parametrize("legacy", [False, True])
def test_keyword_path_equals_clip_text_features_for_the_embeddings_of_real_token_ids(legacy):
    overrides = {}
    if legacy:  # configs saved before transformers' PR #24773: eos_token_id 2, [SOT]/[EOT] the last two ids
        overrides = {
            "clip_config": CLIPConfig(
                **{
                    **tiny_clip_config().to_dict(),
                    "text_config": {
                        **tiny_clip_config().text_config.to_dict(),
                        "bos_token_id": 0,
                        "eos_token_id": 2,
                        "pad_token_id": 1,
                    },
                }
            )
        }
    model = _model("cascaded", **overrides).eval()
    sot, eot, pad = clip_special_ids(model.config.clip_config.text_config)
    words = [[5, 9, 13, 21], [7, 30], [11, 12, 40]]  # three captions of 4, 2 and 3 subwords
    width = 2 + max(map(len, words))
    ids = torch.full((3, width), pad)
    mask = torch.zeros(3, width, dtype=torch.long)
    keywords = torch.zeros(3, 4, model.token_embeddings.shape[1])
    keyword_mask = torch.zeros(3, 4, dtype=torch.bool)
    for row, sub in enumerate(words):
        ids[row, : len(sub) + 2] = torch.tensor([sot, *sub, eot])
        mask[row, : len(sub) + 2] = 1
        keywords[row, : len(sub)] = model.token_embeddings[sub]
        keyword_mask[row, : len(sub)] = True
    with torch.no_grad():
        expected = model.get_text_features(ids, mask).pooler_output
        got = model.keyword_text_features(keywords, keyword_mask)
    assert (got - expected).abs().max() < 1e-5
    assert (got[0] - got[1]).abs().max() > 1e-3  # the captions differ, so does the embedding


# ------------------------------------------------------------------------------------------ quantisation


def test_straight_through_quantisation_picks_the_nearest_allowed_subword_and_passes_gradients():
    torch.manual_seed(0)
    codebook = torch.randn(12, 6, dtype=torch.float64)
    vocabulary = allowed_vocabulary(12, special_ids=[10, 11], limit_to=[1, 3, 4, 7, 10])
    assert vocabulary.tolist() == [1, 3, 4, 7]  # the special token 10 is never a keyword
    quantizer = KeywordQuantizer(vocabulary, temperature=0.1).train()
    queries = torch.randn(2, 3, 6, dtype=torch.float64)
    queries[0, 0] = codebook[10] * 3  # nearest to a special token, which is not allowed
    queries = queries.requires_grad_(True)
    out = quantizer(queries, codebook)
    allowed = codebook[[1, 3, 4, 7]].numpy()
    q = queries.detach().numpy()
    cos = (q / np.linalg.norm(q, axis=-1, keepdims=True)) @ (
        allowed / np.linalg.norm(allowed, axis=-1, keepdims=True)
    ).T
    np.testing.assert_array_equal(out.ids.numpy(), np.array([1, 3, 4, 7])[cos.argmax(-1)])
    np.testing.assert_allclose(out.scores.detach().numpy(), cos.max(-1), rtol=1e-12)
    torch.testing.assert_close(out.embeds.detach(), codebook[out.ids])  # the forward value is the subword itself
    weights = torch.randn_like(out.embeds)
    (out.embeds * weights).sum().backward()
    soft_queries = queries.detach().clone().requires_grad_(True)  # the gradient is the softmax path's
    cos_t = torch.nn.functional.normalize(soft_queries, dim=-1) @ torch.nn.functional.normalize(
        codebook[[1, 3, 4, 7]], dim=-1).T  # fmt: skip
    ((cos_t / 0.1).softmax(-1) @ codebook[[1, 3, 4, 7]] * weights).sum().backward()
    torch.testing.assert_close(queries.grad, soft_queries.grad)
    assert queries.grad.abs().sum() > 0
    quantizer.eval()
    assert not quantizer(queries, codebook).embeds.requires_grad  # evaluation: the hard choice, no softmax path
    torch.testing.assert_close(quantizer(queries, codebook).embeds, codebook[out.ids])


def test_a_vocabulary_outside_clip_or_only_special_tokens_is_refused():
    with pytest.raises(ValueError, match=r"ids \[60, 99\] are outside CLIP's vocabulary of 60"):
        _model("cascaded", keyword_vocabulary=[3, 60, 99])
    with pytest.raises(ValueError, match="the allowed vocabulary is empty"):
        _model("cascaded", keyword_vocabulary=[58, 59])
    assert _model("cascaded", keyword_vocabulary=[3, 4, 58]).quantizer.vocabulary.tolist() == [3, 4]


# ------------------------------------------------------------------------------------------ CIF


def _frames(n):
    return torch.arange(1.0, n + 1, dtype=torch.float64)[None, :, None]  # frame t carries the value t + 1


def test_cif_fires_as_a_hand_computation_including_the_tail():
    alpha = torch.tensor([[0.4, 0.8, 0.5, 0.3, 0.6]], dtype=torch.float64)
    x = _frames(5)
    # by hand: 0.4·1 + 0.6·2 fires; 0.2·2 + 0.5·3 + 0.3·4 fires at exactly 1.0; 0.6·5 is left
    token_1, token_2, tail = 0.4 * 1 + 0.6 * 2, 0.2 * 2 + 0.5 * 3 + 0.3 * 4, 0.6 * 5
    out = integrate_and_fire(x, alpha, threshold=1.0)
    assert out.num_tokens.tolist() == [2]
    np.testing.assert_allclose(out.tokens[0, :, 0].numpy(), [token_1, token_2], rtol=1e-12)
    with_tail = integrate_and_fire(x, alpha, threshold=1.0, tail_threshold=0.5)
    np.testing.assert_allclose(with_tail.tokens[0, :, 0].numpy(), [token_1, token_2, tail], rtol=1e-12)
    no_tail = integrate_and_fire(x, alpha, threshold=1.0, tail_threshold=0.7)  # 0.6 < 0.7: dropped
    assert no_tail.num_tokens.tolist() == [2]


def test_cif_fires_twice_from_one_heavy_frame_caps_and_pads_rows():
    alpha = torch.tensor([[2.5, 0.5, 0.0], [0.3, 0.3, 0.0]], dtype=torch.float64)  # row 2: nothing fires
    out = integrate_and_fire(_frames(3).expand(2, -1, -1), alpha, threshold=1.0)
    assert out.num_tokens.tolist() == [3, 0]
    np.testing.assert_allclose(out.tokens[0, :, 0].numpy(), [1.0, 1.0, 0.5 * 1 + 0.5 * 2], rtol=1e-12)
    assert out.token_mask.tolist() == [[True, True, True], [False, False, False]]
    assert integrate_and_fire(_frames(3).expand(2, -1, -1), alpha, max_tokens=2).num_tokens.tolist() == [2, 0]


def test_cif_is_differentiable_in_frames_and_weights():
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor([[0.5, 0.7, 0.2, 0.9, 0.4, 0.6], [0.9, 0.9, 0.1, 0.3, 0.8, 0.2]], dtype=torch.float64)
    alpha.requires_grad_(True)
    torch.autograd.gradcheck(lambda a, b: integrate_and_fire(a, b, tail_threshold=0.5).tokens, (x, alpha))


def test_scaling_to_the_target_fires_exactly_that_many_tokens_and_the_quantity_loss_is_l1():
    alpha = torch.rand(3, 40, dtype=torch.float64) * 0.3
    target = torch.tensor([3.0, 7.0, 12.0], dtype=torch.float64)
    scaled = scale_to_target(alpha, target)
    assert integrate_and_fire(torch.randn(3, 40, 2, dtype=torch.float64), scaled).num_tokens.tolist() == [3, 7, 12]
    sums = alpha.sum(dim=1)
    assert quantity_loss(sums, target).item() == pytest.approx(float(np.mean(np.abs(sums.numpy() - target.numpy()))))


def test_cif_model_scales_to_the_target_during_its_first_steps_only():
    model = _model("cascaded_plus", cif_scaling_steps=1, cif_target="subwords").train()
    waves, images = _batch(2)
    targets = torch.tensor([3, 5])
    first = model(speech_values=waves, pixel_values=images, cif_target_lengths=targets, return_loss=True)
    assert first.speech_outputs.keyword_mask.sum(dim=1).tolist() == [3, 5]  # scaled: the target count
    assert int(model.cif_steps) == 1
    model.config.cif_target = "frames"
    second = model(speech_values=waves, pixel_values=images, return_loss=True).speech_outputs
    frames = model.speech_model._get_feat_extract_output_lengths(torch.tensor(1600)).float()  # 160 frames
    torch.testing.assert_close(second.cif_target, frames.expand(2) / model.config.cif_frames_per_token)
    assert second.keyword_mask.sum(dim=1).tolist() != [3, 5]  # no longer scaled
    assert second.cif_alpha_sum.shape == (2,)
    model.config.cif_target = "subwords"
    with pytest.raises(ValueError, match="cif_target='subwords' needs `cif_target_lengths`"):
        model(speech_values=waves, pixel_values=images, return_loss=True)
    assert model.get_keywords(waves)[2].shape[0] == 2  # keywords need no target


def test_a_frame_stride_averages_the_mixed_frames_before_the_branch_layer():
    strided = _model("hybrid_plus", frame_stride=3).eval()
    plain = _model("hybrid_plus").eval()
    plain.load_state_dict(strided.state_dict())
    g = torch.Generator().manual_seed(5)
    layers = torch.randn(2, plain.config.speech_config.num_hidden_layers + 1, 10, 32, generator=g)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False  # 7 real frames: strided frames of 3, 3 and 1, the last one padding
    # The reference in float64: the softmax-weighted layers (zero init: the plain mean), averaged per run of 3
    # real frames; a model without a stride fed those averages must give the same embeddings.
    mixed = layers.double().mean(dim=1)
    runs = []
    for row in range(2):
        real = mixed[row, : int(mask[row].sum())]
        runs.append(torch.stack([real[i : i + 3].mean(dim=0) for i in range(0, len(real), 3)]))
    pooled = torch.zeros(2, 4, 32, dtype=torch.float64)
    pooled_mask = torch.zeros(2, 4, dtype=torch.bool)
    for row, r in enumerate(runs):
        pooled[row, : len(r)], pooled_mask[row, : len(r)] = r, True
    with torch.no_grad():
        got = strided.get_speech_features(speech_layers=layers, speech_frame_mask=mask)
        want = plain.get_speech_features(speech_layers=pooled.float()[:, None].expand(-1, layers.shape[1], -1, -1),
                                         speech_frame_mask=pooled_mask)  # fmt: skip
    torch.testing.assert_close(got.parallel_embeds, want.parallel_embeds, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.cascaded_embeds, want.cascaded_embeds, atol=1e-5, rtol=1e-5)
    # CIF's frame target still counts tower frames: strided frames × stride (10 → 4 × 3 = 12, 7 → 3 × 3 = 9).
    torch.testing.assert_close(got.cif_target, torch.tensor([12.0, 9.0]) / strided.config.cif_frames_per_token)
    with pytest.raises(ValueError, match="frame_stride=0 must be ≥ 1"):
        tiny_speechclip_config(frame_stride=0)


# ------------------------------------------------------------------------------------------ losses and training


def test_captions_of_the_same_image_are_not_each_others_negatives():
    model = _model("parallel").eval()
    waves, images = _batch(4)
    images[1] = images[0]  # rows 0 and 1: two captions of one image
    item_ids = torch.tensor([0, 0, 1, 2])
    with torch.no_grad():
        out = model(speech_values=waves, pixel_values=images, item_ids=item_ids, return_loss=True)
    scale = model.logit_scale.exp().item()
    speech, image = out.parallel_embeds.double().numpy(), out.image_embeds.double().numpy()
    assert out.loss.item() == pytest.approx(info_nce(speech, image, scale, item_ids.numpy()), rel=1e-5)
    assert out.loss.item() < info_nce(speech, image, scale) - 1e-4  # unmasked, the twin is a (hard) negative


@pytest.mark.parametrize("mode", ["hybrid", "hybrid_plus"])
def test_the_hybrid_loss_is_the_weighted_sum_of_its_terms(mode):
    model = _model(mode, cascaded_loss_weight=0.7, parallel_loss_weight=1.9, quantity_loss_weight=0.25).train()
    waves, images = _batch(3)
    out = model(speech_values=waves, pixel_values=images, item_ids=torch.tensor([0, 1, 1]), return_loss=True)
    expected = 0.7 * out.cascaded_loss + 1.9 * out.parallel_loss
    if mode == "hybrid_plus":
        expected = expected + 0.25 * out.quantity_loss
        assert out.quantity_loss.item() > 0
    else:
        assert out.quantity_loss is None
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_trains_its_branches_and_leaves_speech_tower_and_clip_frozen(mode):
    model = _model(mode).train()
    assert not model.speech_model.training and not model.clip.training  # frozen parts stay in eval mode
    waves, images = _batch(3)
    model(speech_values=waves, pixel_values=images, return_loss=True).loss.backward()
    grads = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    expected = {"branch", "logit_scale", "speech_layer_weights"}
    expected |= {"parallel_projection"} if mode in ("parallel", "hybrid", "hybrid_plus") else set()
    expected |= {"keyword_projection", "keyword_norm"} if mode != "parallel" else set()
    expected |= {"cif"} if mode.endswith("plus") else set()
    assert grads == expected
    assert all(p.grad is None for p in [*model.speech_model.parameters(), *model.clip.parameters()])


def test_spoken_keywords_are_the_cascaded_paths_subwords():
    model = _model("cascaded").eval()
    waves, _ = _batch(2)
    ids, scores, mask = model.get_keywords(waves, top_k=3)
    assert ids.shape == (2, 4, 3) and mask.all()
    with torch.no_grad():
        speech = model.get_speech_features(waves)
    torch.testing.assert_close(ids[..., 0], speech.keyword_ids)  # the nearest subword is the one read
    assert (scores[..., :-1] >= scores[..., 1:]).all()  # nearest first
    special = set(clip_special_ids(model.config.clip_config.text_config))
    assert not special & set(ids.flatten().tolist())
    with pytest.raises(ValueError, match="mode='parallel' has no keywords"):
        _model("parallel").get_keywords(waves)


def test_bad_speech_is_refused_by_name():
    model = _model("parallel")
    waves, _ = _batch(2)
    with pytest.raises(ValueError, match=r"`speech_attention_mask` rows \[1\] are all zero"):
        model(speech_values=waves, speech_attention_mask=torch.tensor([[1] * 1600, [0] * 1600]))
    with pytest.raises(ValueError, match="`speech_values` is empty"):
        model(speech_values=torch.zeros(2, 0))
    bad = waves.clone()
    bad[0, 5] = float("nan")
    with pytest.raises(ValueError, match="speech_values"):
        model(speech_values=bad)
    with pytest.raises(ValueError, match="return_loss=True needs `pixel_values` or `image_embeds`"):
        model(speech_values=waves, return_loss=True)


def test_config_refuses_unknown_settings_by_name():
    with pytest.raises(ValueError, match=r"mode='serial' is not one of"):
        SpeechClipConfig(mode="serial")
    with pytest.raises(ValueError, match=r"num_keywords=20 \+ \[SOT\] and \[EOT\] exceeds CLIP's 16 text positions"):
        tiny_speechclip_config("cascaded", num_keywords=20)


# ------------------------------------------------------------------------------------------ saving and loading


def test_auto_classes_and_trust_remote_code_without_the_package(tmp_path):
    model = _model("hybrid_plus").eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "cif.py").is_file()
    assert type(AutoConfig.from_pretrained(tmp_path)) is SpeechClipConfig
    waves, images = _batch(2)
    with torch.no_grad():
        expected = model(speech_values=waves, pixel_values=images)
        reloaded = AutoModel.from_pretrained(tmp_path).eval()(speech_values=waves, pixel_values=images)
    torch.testing.assert_close(reloaded.parallel_embeds, expected.parallel_embeds)
    torch.testing.assert_close(reloaded.cascaded_embeds, expected.cascaded_embeds)
    torch.save({"waves": waves, "images": images, "parallel": expected.parallel_embeds,
                "cascaded": expected.cascaded_embeds}, tmp_path / "expected.pt")  # fmt: skip
    script = WITHOUT_PACKAGE + textwrap.dedent(f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        data = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        with torch.no_grad():
            out = model(speech_values=data["waves"], pixel_values=data["images"])
        print(float((out.parallel_embeds - data["parallel"]).abs().max()),
              float((out.cascaded_embeds - data["cascaded"]).abs().max()))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(float(v) < 1e-5 for v in result.stdout.split())


def test_from_tower_pretrained_loads_both_towers_and_fits_the_keyword_norm_to_clips_subwords(tmp_path):
    from transformers import HubertModel

    from modeling_speechct.training.tiny import tiny_speech_config

    torch.manual_seed(3)
    hubert, clip = HubertModel(tiny_speech_config("hubert")), CLIPModel(tiny_clip_config())
    hubert.save_pretrained(tmp_path / "speech")
    clip.save_pretrained(tmp_path / "clip")
    model = SpeechClipModel.from_tower_pretrained(
        speech=str(tmp_path / "speech"), clip=str(tmp_path / "clip"),
        config_kwargs={"mode": "cascaded", "num_heads": 4, "num_keywords": 4},
    )  # fmt: skip
    for name, tensor in hubert.state_dict().items():
        torch.testing.assert_close(model.speech_model.state_dict()[name], tensor)
    for name, tensor in clip.state_dict().items():
        torch.testing.assert_close(model.clip.state_dict()[name], tensor)
    allowed = clip.text_model.embeddings.token_embedding.weight[model.quantizer.vocabulary]
    torch.testing.assert_close(model.keyword_norm.weight.data, allowed.std(dim=0))
    torch.testing.assert_close(model.keyword_norm.bias.data, allowed.mean(dim=0))


def test_position_limits_apply_to_the_path_that_uses_them():
    assert tiny_speechclip_config("parallel", num_keywords=20, cif_max_tokens=75).mode == "parallel"
    assert tiny_speechclip_config("cascaded", cif_max_tokens=75).num_keywords == 4
    with pytest.raises(ValueError, match=r"cif_max_tokens=75 \+ 2 exceeds CLIP's 16 text positions"):
        tiny_speechclip_config("hybrid_plus", cif_max_tokens=75)
