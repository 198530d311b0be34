"""CT-CLIP → SpeechCTClip: every key accounted for, CT-CLIP's outputs reproduced, unsafe files refused."""

import json

import ctclip_reference as reference
import pytest
import torch

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.hub.convert_ct_clip import convert_ct_clip_state_dict, load_ct_clip_checkpoint, main
from modeling_speechct.training.tiny import tiny_speech_config, tiny_text_config


def _ct_clip() -> reference.CTCLIP:
    encoder = reference.CTViT(
        dim=32, codebook_size=16, image_size=32, patch_size=8, temporal_patch_size=4,
        spatial_depth=2, temporal_depth=2, dim_head=8, heads=4,
    )  # fmt: skip
    clip = reference.CTCLIP(encoder, tiny_text_config(), dim_image=4 * 4 * 32, dim_latent=16)
    with torch.no_grad():
        for name, p in clip.named_parameters():
            p.add_(0.1 * torch.randn_like(p)) if "null_kv" not in name else None
    return clip.eval()


def _convert(state, **kwargs):
    return convert_ct_clip_state_dict(
        state,
        patch_size=8,
        tubelet_size=4,
        text_config=tiny_text_config(),
        speech_config=tiny_speech_config(),
        **kwargs,
    )


def test_every_key_is_mapped_or_knowingly_ignored_and_outputs_match():
    clip = _ct_clip()
    state = clip.state_dict()
    model, report = _convert(state)
    assert report.unexpected == [] and report.missing == []
    assert set(report.mapped) | set(report.ignored) == set(state)
    assert set(report.mapped).isdisjoint(report.ignored)
    assert {k for k in report.ignored if "to_pixels" in k or "_extra." in k or "pooler" in k}
    model.eval()
    x = torch.randn(2, 1, 8, 32, 32)
    ids = torch.randint(1, 100, (2, 7))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        text_ref, image_ref = clip.latents(ids, mask, x)
        paired_ref = clip(ids, mask, x)
        out = model(ct_values=x, input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(out.ct_embeds, image_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.text_embeds, text_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.logits_text_ct.diagonal(), paired_ref, atol=1e-5, rtol=1e-4)
    assert model.config.ct_config.use_codebook and model.config.ct_config.num_temporal_layers == 2


def test_command_line_writes_a_loadable_safetensors_checkpoint(tmp_path, capsys):
    clip = _ct_clip()
    torch.save(clip.state_dict(), tmp_path / "CT-CLIP_v2.pt")
    tiny_text_config().save_pretrained(tmp_path / "text")
    tiny_speech_config().save_pretrained(tmp_path / "speech")
    out_dir = tmp_path / "converted"
    main([str(tmp_path / "CT-CLIP_v2.pt"), str(out_dir), "--patch-size", "8", "--tubelet-size", "4",
          "--text-config", str(tmp_path / "text"), "--speech-config", str(tmp_path / "speech")])  # fmt: skip
    assert "0 unexpected" in capsys.readouterr().out
    assert (out_dir / "model.safetensors").is_file()
    report = json.loads((out_dir / "conversion_report.json").read_text())
    assert len(report["mapped"]) + len(report["ignored"]) == len(clip.state_dict())
    model = SpeechCTClipModel.from_pretrained(out_dir).eval()
    x = torch.randn(1, 1, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            model(ct_values=x).ct_embeds,
            clip.latents(torch.ones(1, 3, dtype=torch.long), None, x)[1],
            atol=1e-5,
            rtol=1e-4,
        )


class _Payload:
    """Unpickling this would call a function: exactly what `weights_only=True` must refuse."""

    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_checkpoints_holding_code_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"visual_transformer.x": torch.zeros(1), "payload": _Payload()}, path)
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint of tensors"):
        load_ct_clip_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"corrupt\.pt is not a readable"):
        load_ct_clip_checkpoint(tmp_path / "corrupt.pt")
    with pytest.raises(FileNotFoundError, match=r"missing\.pt does not exist"):
        load_ct_clip_checkpoint(tmp_path / "missing.pt")
    torch.save({"encoder.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not hold a CT-CLIP state dict"):
        load_ct_clip_checkpoint(tmp_path / "other.pt")


def test_unexpected_and_inconsistent_keys_are_reported():
    state = _ct_clip().state_dict()
    state["visual_transformer.mystery.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"unexpected source keys \['visual_transformer.mystery.weight'\]"):
        _convert(state)
    _, report = _convert(state, strict=False)
    assert report.unexpected == ["visual_transformer.mystery.weight"]
    state.pop("visual_transformer.mystery.weight")
    state["visual_transformer.enc_spatial_transformer.norm_out.beta"] = torch.ones(32)
    with pytest.raises(ValueError, match=r"norm_out\.beta: CT-CLIP's LayerNorm bias buffer should be zero"):
        _convert(state)
