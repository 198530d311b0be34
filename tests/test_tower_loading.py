"""Towers load quietly when the only unused weights are a task head, and loudly when weights are missing."""

from __future__ import annotations

import logging

import torch
from safetensors.torch import load_file, save_file
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC, Wav2Vec2Model

from modeling_speechct.towers import load_tower

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
            conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
            vocab_size=12)  # fmt: skip
OURS = "modeling_speechct.towers"


def _ctc_checkpoint(path):
    torch.manual_seed(0)
    Wav2Vec2ForCTC(Wav2Vec2Config(**TINY)).save_pretrained(path)
    return path


def test_a_dropped_ctc_head_prints_no_load_report(tmp_path, capfd, caplog):
    path = _ctc_checkpoint(tmp_path / "ctc")
    with caplog.at_level(logging.INFO, logger=OURS):
        tower = load_tower(path)
    assert isinstance(tower, Wav2Vec2Model)
    assert "LOAD REPORT" not in capfd.readouterr().err
    ours = [r for r in caplog.records if r.name == OURS]
    assert not [r for r in ours if r.levelno >= logging.WARNING]
    assert any("task head of Wav2Vec2ForCTC" in r.getMessage() for r in ours)
    reference = Wav2Vec2ForCTC.from_pretrained(path).wav2vec2.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in tower.state_dict().items())  # the weights did load


def test_missing_weights_are_a_warning_that_names_them(tmp_path, caplog):
    path = _ctc_checkpoint(tmp_path / "ctc")
    weights = load_file(path / "model.safetensors")
    dropped = [k for k in weights if "encoder.layers.1." in k]
    save_file({k: v for k, v in weights.items() if k not in dropped}, path / "model.safetensors", {"format": "pt"})
    with caplog.at_level(logging.INFO, logger=OURS):
        load_tower(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == OURS]
    assert len(warnings) == 1 and f"{len(dropped)} weights missing" in warnings[0]
    assert "encoder.layers.1." in warnings[0]
