"""Cached frozen lower speech layers: training from the prefix must give exactly what the full tower gives."""

from __future__ import annotations

import pytest
import torch

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.training.tiny import tiny_speech_config, tiny_speechct_config


def _model(kind: str, **overrides) -> SpeechCTClipModel:
    torch.manual_seed(0)
    speech = tiny_speech_config(kind, **({"do_stable_layer_norm": True} if kind == "wav2vec2" else {}))
    return SpeechCTClipModel(tiny_speechct_config(speech_config=speech, speech_pooling="attention", **overrides)).eval()


def _audio(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    if kind == "whisper":
        values = torch.randn(3, 16, 100, generator=generator)  # 100 frames → several 40-frame windows
        mask = torch.ones(3, 100, dtype=torch.long)
        mask[1, 70:] = 0
        mask[2, 30:] = 0
    else:
        values = torch.randn(3, 1500, generator=generator)  # several 20 ms windows at 16 kHz
        mask = torch.ones(3, 1500, dtype=torch.long)
        mask[1, 1000:] = 0
        mask[2, 200:] = 0
    return values * mask.unsqueeze(1) if values.ndim == 3 else values * mask, mask


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2", "whisper", "hubert-groupnorm"])
@pytest.mark.parametrize("trainable", [0, 1, 2])
def test_prefix_path_equals_full_tower(kind, trainable):
    """Layer-norm waveform towers take the trimmed path (each window cut to its real length), GroupNorm and Whisper
    towers the padded one; both must give what the full tower gives on the padded batch."""
    if kind == "hubert-groupnorm":
        torch.manual_seed(0)
        speech = tiny_speech_config("hubert", feat_extract_norm="group")
        model = SpeechCTClipModel(
            tiny_speechct_config(speech_config=speech, speech_pooling="attention", speech_trainable_layers=trainable)
        ).eval()
        assert not model._padding_is_inert()
        kind = "hubert"
    else:
        model = _model(kind, speech_trainable_layers=trainable)
        assert model._padding_is_inert() == (kind != "whisper")
    values, mask = _audio(kind)
    with torch.no_grad():
        full = model.get_speech_features(values, mask).pooler_output
        prefix = model.get_speech_prefix(values, mask)
        cached = model.get_speech_features_from_prefix(prefix)
    assert set(prefix.owner.tolist()) == {0, 1, 2}
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


def test_prefix_windows_follow_each_recordings_length():
    model = _model("hubert", speech_trainable_layers=1)
    values, mask = _audio("hubert")
    prefix = model.get_speech_prefix(values, mask)
    counts = torch.bincount(prefix.owner).tolist()
    assert counts[0] > counts[1] > counts[2] >= 1  # longer recordings own more windows


def test_forward_with_prefix_trains_only_the_top_layer():
    model = _model("wav2vec2", speech_trainable_layers=1, distill_weight=0.5)
    values, mask = _audio("wav2vec2")
    prefix = model.get_speech_prefix(values, mask)
    model.train()
    out = model(
        speech_prefix=prefix,
        ct_embeds=torch.randn(3, model.config.projection_dim),
        text_embeds=torch.randn(3, model.config.projection_dim),
        return_loss=True,
    )
    out.loss.backward()
    stack = model._speech_layer_stack()
    assert all(p.grad is not None for p in stack[-1].parameters())
    assert all(p.grad is None for p in stack[0].parameters())
    assert model.speech_projection.weight.grad.abs().sum() > 0


def test_prefix_refused_when_the_whole_tower_trains():
    model = _model("hubert")
    values, mask = _audio("hubert")
    with pytest.raises(ValueError, match="speech_trainable_layers"):
        model.get_speech_prefix(values, mask)
