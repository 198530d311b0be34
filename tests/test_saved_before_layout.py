"""A folder saved by the package before its layout changed (tests/fixtures/saved_before_layout) still loads through
the installed package's Auto classes and computes the embeddings the old code computed. (Its remote-code files are
not kept: they were the old package's copies; loading a fresh save without the package is tests/test_hub_loading.py.)"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_folder import wave
from transformers import AutoModel, AutoProcessor

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor

FIXTURE = Path(__file__).parent / "fixtures" / "saved_before_layout"
FOLDER = FIXTURE / "folder"
TEXTS = ["Cardiomegaly is present.", "No pleural effusion."]


@pytest.fixture(scope="module")
def expected():
    return load_file(FIXTURE / "expected.safetensors")


def test_the_installed_package_loads_the_old_folder_and_computes_the_old_embeddings(expected):
    model = AutoModel.from_pretrained(FOLDER).eval()
    processor = AutoProcessor.from_pretrained(FOLDER)
    assert type(model) is SpeechCTClipModel and type(processor) is SpeechCTClipProcessor  # ours, not remote code
    batch = processor(text=TEXTS, audio=[wave(0), wave(1)], sampling_rate=16000)
    for key in ("input_ids", "attention_mask", "speech_values", "speech_attention_mask"):
        assert torch.equal(batch[key], expected[key]), key
    with torch.no_grad():
        ct = model.get_ct_features(expected["ct_values"]).pooler_output
        text = model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output
        speech = model.get_speech_features(batch["speech_values"], batch["speech_attention_mask"]).pooler_output
    for name, value in (("ct_embeds", ct), ("text_embeds", text), ("speech_embeds", speech)):
        assert value.shape == expected[name].shape, name
        assert (value - expected[name]).abs().max() < 1e-5, name
