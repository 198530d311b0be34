"""Checkpoints: safetensors round trip, Auto classes, trust_remote_code without the package, per-tower building."""

import subprocess
import sys
import textwrap

import torch
from no_package import WITHOUT_PACKAGE
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, BertModel, HubertModel, WhisperModel

from modeling_speechct import CTViTModel, SpeechCTClipConfig, SpeechCTClipModel
from modeling_speechct.training.tiny import tiny_ct_config, tiny_speech_config, tiny_speechct_config, tiny_text_config


def _inputs():
    ids = torch.randint(1, 100, (2, 7))
    return {
        "ct_values": torch.randn(2, 1, 8, 32, 32),
        "speech_values": torch.randn(2, 700),
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
    }


def _embeds(model, inputs):
    with torch.no_grad():
        out = model(**inputs)
    return {"ct": out.ct_embeds, "speech": out.speech_embeds, "text": out.text_embeds}


def test_save_and_reload_gives_identical_embeddings(tmp_path):
    config = tiny_speechct_config(speech_pooling="cls_transformer", speech_layers="weighted_sum", distill_weight=0.3)
    model = SpeechCTClipModel(config).eval()
    inputs = _inputs()
    expected = _embeds(model, inputs)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    assert AutoConfig.from_pretrained(tmp_path).distill_weight == 0.3
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is SpeechCTClipModel
    for name, value in _embeds(loaded, inputs).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0, msg=name)
    # Freeze flags survive loading (loading builds fresh parameters).
    assert not any(p.requires_grad for p in loaded.ct_model.parameters())
    assert all(p.requires_grad for p in loaded.speech_model.parameters())


def test_ct_tower_alone_round_trips_through_automodel(tmp_path):
    tower = CTViTModel(tiny_ct_config(use_codebook=True, codebook_size=8)).eval()
    x = torch.randn(1, 1, 8, 32, 32)
    tower.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is CTViTModel
    torch.testing.assert_close(loaded(x).pooler_output, tower(x).pooler_output, rtol=0, atol=0)


def test_trust_remote_code_loads_where_the_package_cannot_be_imported(tmp_path):
    model = SpeechCTClipModel(tiny_speechct_config(speech_pooling="attention")).eval()
    inputs = _inputs()
    model.save_pretrained(tmp_path / "ckpt")
    for code in ("modeling_speechct_clip.py", "configuration_speechct_clip.py", "modeling_ct_vit.py", "pooling.py"):
        assert (tmp_path / "ckpt" / code).is_file(), code
    save_file(
        {**inputs, **{f"expected_{k}": v for k, v in _embeds(model, inputs).items()}}, tmp_path / "io.safetensors"
    )
    script = WITHOUT_PACKAGE + textwrap.dedent(
        f"""
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel
        torch.set_num_threads(1)  # same reduction order as the parent test
        io = load_file({str(tmp_path / "io.safetensors")!r})
        model = AutoModel.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            out = model(**{{k: v for k, v in io.items() if not k.startswith("expected_")}})
        for name in ("ct", "speech", "text"):
            torch.testing.assert_close(getattr(out, name + "_embeds"), io["expected_" + name], rtol=0, atol=0)
        print("REMOTE-CODE-OK", type(model).__name__)
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE-CODE-OK SpeechCTClipModel" in result.stdout


def test_from_tower_pretrained_loads_each_tower(tmp_path):
    hubert = HubertModel(tiny_speech_config("hubert"))
    bert = BertModel(tiny_text_config())
    ct = CTViTModel(tiny_ct_config())
    for name, tower in (("hubert", hubert), ("bert", bert), ("ct", ct)):
        tower.save_pretrained(tmp_path / name)
    model = SpeechCTClipModel.from_tower_pretrained(
        speech=str(tmp_path / "hubert"),
        text=str(tmp_path / "bert"),
        ct=str(tmp_path / "ct"),
        config_kwargs={"projection_dim": 16, "speech_window_seconds": 0.02, "speech_window_overlap_seconds": 0.005},
    )
    for source, target in ((hubert, model.speech_model), (bert, model.text_model), (ct, model.ct_model)):
        target_state = target.state_dict()
        for key, value in source.state_dict().items():
            if key in target_state:
                torch.testing.assert_close(target_state[key], value, rtol=0, atol=0, msg=key)
    assert model.config.speech_config.model_type == "hubert" and model.config.projection_dim == 16


def test_whisper_contributes_its_encoder_and_a_teacher_its_towers(tmp_path):
    whisper = WhisperModel(tiny_speech_config("whisper"))
    whisper.save_pretrained(tmp_path / "whisper")
    teacher = SpeechCTClipModel(tiny_speechct_config(logit_scale_init_value=1.7))
    teacher.save_pretrained(tmp_path / "teacher")
    model = SpeechCTClipModel.from_tower_pretrained(speech=str(tmp_path / "whisper"), teacher=str(tmp_path / "teacher"))
    assert type(model.speech_model).__name__ == "WhisperEncoder"
    assert not any(n.startswith("decoder") for n, _ in model.speech_model.named_parameters())
    for key, value in whisper.encoder.state_dict().items():
        torch.testing.assert_close(model.speech_model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    saved = load_file(tmp_path / "teacher" / "model.safetensors")
    for key, value in model.state_dict().items():
        if key.startswith(("ct_model.", "text_model.", "ct_projection", "text_projection")):
            torch.testing.assert_close(value, saved[key], rtol=0, atol=0, msg=key)
    assert abs(model.logit_scale.item() - 1.7) < 1e-6


def test_config_round_trips_through_json(tmp_path):
    config = tiny_speechct_config("whisper", speech_pooling="attention", freeze_text=False, speech_trainable_layers=1)
    config.save_pretrained(tmp_path)
    again = SpeechCTClipConfig.from_pretrained(tmp_path)
    assert again.to_dict() == config.to_dict()
    assert again.speech_config.model_type == "whisper" and again.ct_config.image_size == 32
