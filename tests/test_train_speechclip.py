"""train/train_speechclip.py end to end on a few scenes with the shipped CTC tower and the shipped scenes CLIP: the
towers stay as shipped, the folder reloads through AutoModel, and its recorded validation recall is the saved
model's."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from modeling_speechct import SpeechClipModel
from modeling_speechct.data.flickr8k import load_flickr8k
from modeling_speechct.processing_speechclip import SpeechClipProcessor
from modeling_speechct.training.embedding_cache import SpeechLayersCache
from modeling_speechct.training.lora import ATTENTION_PROJECTIONS, from_pretrained_with_adapter
from modeling_speechct.training.scenes_clip import SHIPPED_SCENES_CLIP
from modeling_speechct.training.speech_tower import SHIPPED_SPEECH_TOWER
from modeling_speechct.training.speechclip_training import (
    SpeechClipAudioCollator,
    SpeechClipCollator,
    speech_image_scores,
    speechclip_rows,
)
from scripts import load_script


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("speechclip")
    argv = ["--output_dir", str(root / "out"), "--data_dir", str(root / "data"), "--cache_dir", str(root / "cache"),
            "--num_images", "20", "--max_steps", "6", "--per_device_batch_size", "16", "--eval_every", "6",
            "--save_every", "3", "--log_every", "3", "--mode", "hybrid_plus", "--cif_scaling_steps", "3"]  # fmt: skip
    return root, load_script("train/train_speechclip.py").main(argv)


def test_the_folder_reloads_with_its_towers_as_shipped(run):
    root, _ = run
    model = AutoModel.from_pretrained(root / "out" / "final")
    assert type(model) is SpeechClipModel and model.config.mode == "hybrid_plus"
    shipped = load_file(SHIPPED_SCENES_CLIP / "model.safetensors")
    clip = model.clip.state_dict()
    assert all(torch.equal(clip[name], tensor) for name, tensor in shipped.items())  # CLIP stayed frozen
    assert set(model.quantizer.vocabulary.tolist()) <= set(range(model.config.clip_config.text_config.vocab_size - 2))


def test_the_recorded_recall_is_the_saved_models(run):
    root, result = run
    final = root / "out" / "final"
    model, processor = SpeechClipModel.from_pretrained(final).eval(), SpeechClipProcessor.from_pretrained(final)
    rows = speechclip_rows(model, processor, load_flickr8k(root / "data", "valid"))
    scores = speech_image_scores(model, rows, SpeechClipCollator(SpeechLayersCache(root / "cache", model, processor)))
    assert scores == pytest.approx({k[len("eval_") :]: v for k, v in result.items() if k.startswith("eval_")})


@pytest.fixture(scope="module")
def lora_run(run):
    root, _ = run  # the same scenes; the tower runs on the audio each step, so no speech cache
    argv = ["--output_dir", str(root / "lora"), "--data_dir", str(root / "data"), "--cache_dir", str(root / "cache"),
            "--max_steps", "4", "--per_device_batch_size", "16", "--eval_every", "4", "--save_every", "4",
            "--mode", "parallel", "--lora_r", "4", "--learning_rate", "1e-2"]  # fmt: skip
    return root, load_script("train/train_speechclip.py").main(argv)


def test_lora_trains_the_tower_through_its_adapters_and_they_reload(lora_run):
    root, result = lora_run
    final = root / "lora" / "final"
    shipped = load_file(SHIPPED_SPEECH_TOWER / "model.safetensors")
    base = SpeechClipModel.from_pretrained(final)  # the saved base weights: the tower as shipped, adapters beside
    tower = base.speech_model.state_dict()
    assert all(torch.equal(tower[n], t) for n, t in shipped.items() if n in tower) and (final / "adapter").is_dir()
    adapted = from_pretrained_with_adapter(SpeechClipModel, final).eval()  # merged in
    changed = [n for n, t in adapted.speech_model.state_dict().items() if not torch.equal(t, tower[n])]
    assert changed and all(any(p in n for p in ATTENTION_PROJECTIONS) for n in changed)  # attention only moved
    processor = SpeechClipProcessor.from_pretrained(final)
    rows = speechclip_rows(adapted, processor, load_flickr8k(root / "data", "valid"))
    scores = speech_image_scores(adapted, rows, SpeechClipAudioCollator(processor))
    recorded = {k[len("eval_") :]: v for k, v in result.items() if k.startswith("eval_")}
    assert scores == pytest.approx(recorded, abs=1e-6)  # the merged model is the one validated during training
    batch = SpeechClipAudioCollator(processor)(rows[:4])
    audio = {k: batch[k] for k in ("speech_values", "speech_attention_mask")}
    with torch.no_grad():  # without its adapters the tower embeds differently
        assert not torch.allclose(base.eval().get_speech_features(**audio).parallel_embeds,
                                  adapted.get_speech_features(**audio).parallel_embeds, atol=1e-4)  # fmt: skip
