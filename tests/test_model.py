"""SpeechCTClipModel: loss against a float64 re-computation, freezing, windows, pooling, inputs, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy_reference import cosine_distance, info_nce, similarity_kl
from transformers import GPT2Config

from modeling_speechct import SpeechCTClipConfig, SpeechCTClipModel
from modeling_speechct.pooling import AttentionPooling, CLSTransformerPooling, masked_mean
from modeling_speechct.training.tiny import tiny_speechct_config


def _inputs(batch=3, samples=800, tokens=9, speech="hubert"):
    ids = torch.randint(1, 100, (batch, tokens))
    speech_values = torch.randn(batch, 16, 100) if speech == "whisper" else torch.randn(batch, samples)
    return dict(
        ct_values=torch.randn(batch, 1, 8, 32, 32),
        speech_values=speech_values,
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
    )


@pytest.mark.parametrize("speech", ["hubert", "whisper"])
@pytest.mark.parametrize("distill_weight", [0.0, 0.7])
def test_loss_equals_float64_recomputation(speech, distill_weight):
    model = SpeechCTClipModel(
        tiny_speechct_config(speech, distill_weight=distill_weight, speech_logit_scale_init_value=2.0)
    ).eval()
    out = model(**_inputs(speech=speech), return_loss=True)
    s, c, t = (x.detach().double().numpy() for x in (out.speech_embeds, out.ct_embeds, out.text_embeds))
    for x in (s, c, t):
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    contrastive = info_nce(s, c, np.exp(2.0))
    distill = cosine_distance(s, t)
    np.testing.assert_allclose(out.contrastive_loss.item(), contrastive, rtol=1e-5)
    np.testing.assert_allclose(out.distill_loss.item(), distill, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.loss.item(), contrastive + distill_weight * distill, rtol=1e-5)
    np.testing.assert_allclose(out.logits_speech_ct.detach().numpy(), np.exp(2.0) * s @ c.T, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.logits_ct_speech, out.logits_speech_ct.T)


def test_similarity_distillation_loss_equals_float64_recomputation():
    config = tiny_speechct_config(
        distill_weight=0.7, distill_loss="similarity", speech_logit_scale_init_value=2.0, logit_scale_init_value=3.0
    )
    model = SpeechCTClipModel(config).eval()
    out = model(**_inputs(), return_loss=True)
    s, c, t = (x.detach().double().numpy() for x in (out.speech_embeds, out.ct_embeds, out.text_embeds))
    distill = similarity_kl(s, t, c, np.exp(2.0), np.exp(3.0))
    np.testing.assert_allclose(out.distill_loss.item(), distill, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.loss.item(), info_nce(s, c, np.exp(2.0)) + 0.7 * distill, rtol=1e-5)
    with pytest.raises(ValueError, match="distill_loss='kl' is not one of"):
        tiny_speechct_config(distill_loss="kl")


def test_teacher_loss_without_speech():
    model = SpeechCTClipModel(tiny_speechct_config(freeze_ct=False, freeze_text=False)).eval()
    inputs = _inputs()
    inputs.pop("speech_values")
    out = model(**inputs, return_loss=True)
    t, c = out.text_embeds.detach().double().numpy(), out.ct_embeds.detach().double().numpy()
    np.testing.assert_allclose(out.loss.item(), info_nce(t, c, np.e), rtol=1e-5)
    assert out.speech_embeds is None and out.logits_speech_ct is None and out.distill_loss is None


def test_precomputed_teacher_embeddings_give_the_same_loss():
    model = SpeechCTClipModel(tiny_speechct_config()).eval()
    inputs = _inputs()
    full = model(**inputs, return_loss=True)
    with torch.no_grad():
        ct = model.get_ct_features(inputs["ct_values"]).pooler_output
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
    cached = model(speech_values=inputs["speech_values"], ct_embeds=ct, text_embeds=text, return_loss=True)
    torch.testing.assert_close(cached.loss, full.loss)


def test_frozen_towers_get_no_gradient_and_stay_in_eval():
    model = SpeechCTClipModel(tiny_speechct_config(speech_pooling="attention")).train()
    model(**_inputs(), return_loss=True).loss.backward()
    for name, p in model.named_parameters():
        frozen = name.startswith(("ct_", "text_", "logit_scale"))
        assert p.requires_grad is not frozen, name
        if frozen:
            assert p.grad is None, name
    trained = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert any(n.startswith("speech_model.") for n in trained)
    assert {"speech_projection.weight", "speech_logit_scale", "speech_pooler.query"} <= set(trained)
    assert not model.ct_model.training and not model.text_model.training and model.speech_model.training


def test_only_top_speech_layers_train():
    model = SpeechCTClipModel(tiny_speechct_config(speech_trainable_layers=1)).train()
    model(**_inputs(), return_loss=True).loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("speech_model.encoder.layers.1.") for n in trainable)
    assert not any(
        n.startswith(("speech_model.encoder.layers.0.", "speech_model.feature_extractor.")) for n in trainable
    )
    for name, p in model.named_parameters():
        if name.startswith("speech_model.") and not p.requires_grad:
            assert p.grad is None, name


def test_teacher_training_trains_ct_and_text():
    model = SpeechCTClipModel(tiny_speechct_config(freeze_ct=False, freeze_text=False, freeze_speech=True)).train()
    inputs = _inputs()
    inputs.pop("speech_values")
    model(**inputs, return_loss=True).loss.backward()
    assert model.logit_scale.grad is not None
    assert model.ct_model.embeddings.projection.weight.grad.abs().sum() > 0
    assert model.text_model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.speech_model.parameters())


@pytest.mark.parametrize("speech", ["hubert", "whisper"])
def test_audio_three_windows_long_is_the_mean_of_its_windows(speech):
    model = SpeechCTClipModel(tiny_speechct_config(speech)).eval()
    window, overlap, _ = model.speech_window()
    step = window - overlap
    length = window + 2 * step
    audio = torch.randn(2, 16, length) if speech == "whisper" else torch.randn(2, length)
    with torch.no_grad():
        long = model.get_speech_features(audio)
        parts = [model.get_speech_features(audio[..., k * step : k * step + window]).pooler_output for k in range(3)]
    assert long.window_embeds.shape[:2] == (2, 3) and bool(long.window_mask.all())
    torch.testing.assert_close(long.pooler_output, torch.stack(parts).mean(dim=0), atol=1e-5, rtol=1e-4)


def test_padding_only_windows_are_left_out_of_the_mean():
    model = SpeechCTClipModel(tiny_speechct_config()).eval()
    window, overlap, _ = model.speech_window()
    length = window + 2 * (window - overlap)
    long, short = torch.randn(length), torch.randn(window)
    batch = torch.stack([long, F.pad(short, (0, length - window))])
    mask = torch.zeros(2, length, dtype=torch.long)
    mask[0] = 1
    mask[1, :window] = 1
    with torch.no_grad():
        out = model.get_speech_features(batch, mask)
        alone = model.get_speech_features(short[None]).pooler_output
    assert out.window_mask.tolist() == [[True, True, True], [True, False, False]]
    torch.testing.assert_close(out.pooler_output[1], alone[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("pooler", [AttentionPooling(8, 2), CLSTransformerPooling(8, 2, 16, dropout=0.0), None])
def test_pooling_ignores_padded_frames(pooler):
    frames = torch.randn(1, 5, 8)
    padded = torch.cat((frames, 100 * torch.randn(1, 3, 8)), dim=1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    pool = masked_mean if pooler is None else pooler.eval()
    torch.testing.assert_close(
        pool(padded, mask), pool(frames, torch.ones(1, 5, dtype=torch.bool)), atol=1e-5, rtol=1e-5
    )


def test_attention_pooling_equals_multihead_attention_values_and_gradients():
    """The factorised pooling is `nn.MultiheadAttention(query, frames, frames)` with the same parameters, checked in
    float64 against torch's own module (random non-zero query and biases, padding, batch of uneven lengths)."""
    torch.manual_seed(0)
    pooler = AttentionPooling(12, 3).double()
    with torch.no_grad():
        pooler.query.normal_()
        pooler.attention.in_proj_bias.normal_()
        pooler.attention.out_proj.bias.normal_()
    frames = torch.randn(4, 9, 12, dtype=torch.float64)
    mask = torch.ones(4, 9, dtype=torch.bool)
    mask[1, 6:] = False
    mask[3, 2:] = False
    mask[2] = False  # padding only: torch's module returns zeros

    def reference(x, m):
        query = pooler.query.expand(x.shape[0], -1, -1)
        out, _ = pooler.attention(query, x, x, key_padding_mask=~m, need_weights=False)
        return out[:, 0]

    ours = pooler(frames, mask)
    theirs = reference(frames, mask)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    ours_grads = torch.autograd.grad(ours.square().sum(), [*pooler.parameters()])
    theirs_grads = torch.autograd.grad(theirs.square().sum(), [*pooler.parameters()])
    for a, b in zip(ours_grads, theirs_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(pooler(frames, None), reference(frames, torch.ones_like(mask)), rtol=1e-10, atol=1e-10)


def test_weighted_layer_sum_starts_as_the_mean_of_layers():
    model = SpeechCTClipModel(tiny_speechct_config(speech_layers="weighted_sum")).eval()
    audio = torch.randn(2, 300)
    with torch.no_grad():
        states = model.speech_model(audio, output_hidden_states=True).hidden_states
        pooled, _ = model._encode_speech_frames(audio, torch.ones(2, 300, dtype=torch.bool))
    frames = torch.stack(states).mean(dim=0)
    torch.testing.assert_close(pooled, frames.mean(dim=1), atol=1e-5, rtol=1e-4)


def test_any_subset_of_modalities():
    model = SpeechCTClipModel(tiny_speechct_config()).eval()
    inputs = _inputs()
    out = model(speech_values=inputs["speech_values"], input_ids=inputs["input_ids"])
    assert out.ct_embeds is None and out.logits_speech_text.shape == (3, 3)
    out = model(ct_values=inputs["ct_values"])
    assert out.ct_embeds.shape == (3, 16) and out.loss is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i.update(speech_values=torch.randn(2, 800)), "different batch sizes.*ct_values=3.*speech_values=2"),
        (lambda i: i["speech_values"].__setitem__((1, 5), float("nan")), "`speech_values` contains 1 NaN"),
        (lambda i: i.update(speech_values=torch.randn(3, 2, 800)), "`speech_values` must be 2-D waveforms"),
        (lambda i: i.update(speech_attention_mask=torch.zeros(3, 800)), r"rows \[0, 1, 2\] are all zero"),
        (lambda i: i.update(input_ids=torch.full((3, 9), 500)), "ids outside"),
        (lambda i: i.update(ct_embeds=torch.randn(3, 16)), "either the ct inputs or `ct_embeds`"),
    ],
)
def test_bad_inputs_are_named(change, message):
    model = SpeechCTClipModel(tiny_speechct_config()).eval()
    inputs = _inputs()
    change(inputs)
    with pytest.raises(ValueError, match=message):
        model(**inputs, return_loss=True)


def test_loss_needs_a_pair_and_distillation_needs_text():
    model = SpeechCTClipModel(tiny_speechct_config(distill_weight=1.0)).eval()
    inputs = _inputs()
    with pytest.raises(ValueError, match="needs the teacher text"):
        model(ct_values=inputs["ct_values"], speech_values=inputs["speech_values"], return_loss=True)
    with pytest.raises(ValueError, match="needs a CT input"):
        model(speech_values=inputs["speech_values"], input_ids=inputs["input_ids"], return_loss=True)


def test_towers_that_cannot_serve_are_refused():
    from modeling_speechct.training.tiny import tiny_text_config

    with pytest.raises(ValueError, match="text_config: model_type 'gpt2' is not a bidirectional text encoder"):
        SpeechCTClipModel(tiny_speechct_config(text_config=GPT2Config(n_layer=1, n_embd=32, n_head=4)))
    with pytest.raises(ValueError, match="speech_config: model_type 'bert' is not an audio encoder"):
        SpeechCTClipModel(tiny_speechct_config(speech_config=tiny_text_config()))
    with pytest.raises(ValueError, match="speech_pooling='max'"):
        tiny_speechct_config(speech_pooling="max")
    with pytest.raises(ValueError, match="model_type"):
        SpeechCTClipConfig(speech_config={"hidden_size": 3})


def test_whisper_top_layers_train_with_the_final_norm_and_too_many_layers_is_refused():
    model = SpeechCTClipModel(tiny_speechct_config("whisper", speech_trainable_layers=1))
    trainable = {n for n, p in model.speech_model.named_parameters() if p.requires_grad}
    assert trainable == {
        n for n, _ in model.speech_model.named_parameters() if n.startswith(("layers.1.", "layer_norm."))
    }
    with pytest.raises(ValueError, match="speech_trainable_layers=5, but the speech tower has 2 layers"):
        SpeechCTClipModel(tiny_speechct_config(speech_trainable_layers=5))


def test_strided_frames_are_masked_means_of_each_run():
    from modeling_speechct.pooling import stride_frames

    generator = torch.Generator().manual_seed(3)
    hidden = torch.randn(2, 11, 5, generator=generator, dtype=torch.float64)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 6:] = False
    strided, strided_mask = stride_frames(hidden, mask, 4)
    assert strided.shape == (2, 3, 5) and strided_mask.tolist() == [[True] * 3, [True, True, False]]
    for b in range(2):
        for j in range(3):
            frames = [t for t in range(4 * j, min(4 * j + 4, 11)) if mask[b, t]]
            expected = hidden[b, frames].mean(0) if frames else torch.zeros(5, dtype=torch.float64)
            torch.testing.assert_close(strided[b, j], expected)


def test_pooling_stride_changes_the_embedding_and_is_validated():
    torch.manual_seed(0)
    base = SpeechCTClipModel(tiny_speechct_config(speech_pooling="cls_transformer")).eval()
    strided = SpeechCTClipModel(tiny_speechct_config(speech_pooling="cls_transformer", speech_pooling_stride=2)).eval()
    strided.load_state_dict(base.state_dict())
    audio = torch.randn(2, 800, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hidden = torch.randn(2, 9, base.config.speech_config.hidden_size, generator=torch.Generator().manual_seed(2))
        mask = torch.ones(2, 9, dtype=torch.bool)
        from modeling_speechct.pooling import stride_frames

        torch.testing.assert_close(
            strided._pool_frames(hidden, mask), base._pool_frames(*stride_frames(hidden, mask, 2))
        )
        assert not torch.allclose(strided.get_speech_features(audio).pooler_output,
                                  base.get_speech_features(audio).pooler_output)  # fmt: skip
    with pytest.raises(ValueError, match="speech_pooling_stride=0"):
        tiny_speechct_config(speech_pooling_stride=0)
