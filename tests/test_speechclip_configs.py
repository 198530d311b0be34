"""The paper settings in `train/configs/speechclip*.yaml`: each parses into `SpeechClipArguments` with the papers'
recipe, and builds and trains a step with tiny random towers of the same architectures (HuBERT base: group-norm
feature encoder; large: layer-norm and stable layer norm; CLIP ViT), so an online user's run starts where it should."""

import dataclasses

import pytest
import torch
import yaml
from transformers import CLIPModel, CLIPProcessor, HubertModel, Wav2Vec2FeatureExtractor

from modeling_speechct.training.arguments import parse_arguments
from modeling_speechct.training.scenes_clip import clip_image_processor
from modeling_speechct.training.speechclip_training import SpeechClipArguments, build_speechclip
from modeling_speechct.training.tiny import tiny_clip_config, tiny_clip_tokenizer, tiny_speech_config
from scripts import ROOT

CONFIGS = sorted((ROOT / "train" / "configs").glob("speechclip*.yaml"))
CAPTIONS = ["a red cross on a blue ring", "the ring is red", "a blue cross"]


def _tiny_towers(folder, large: bool):
    """Tiny random towers of the architectures the config names, saved with their processors."""
    norm = {"feat_extract_norm": "layer", "do_stable_layer_norm": True} if large else {"feat_extract_norm": "group"}
    speech = folder / "hubert"
    HubertModel(tiny_speech_config("hubert", **norm)).save_pretrained(speech)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(speech)
    clip = folder / "clip"
    CLIPModel(tiny_clip_config()).save_pretrained(clip)
    CLIPProcessor(clip_image_processor(32), tiny_clip_tokenizer()).save_pretrained(clip)
    return str(speech), str(clip)


def test_there_are_base_and_large_settings_of_every_family():
    names = {p.stem for p in CONFIGS}
    assert {"speechclip_parallel_base", "speechclip_parallel_large", "speechclip_cascaded_base",
            "speechclip_cascaded_large", "speechclipplus_hybrid_plus_base"} <= names  # fmt: skip


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_a_paper_setting_parses_builds_and_trains_with_tiny_towers_of_its_architecture(path, tmp_path):
    raw = yaml.safe_load(path.read_text())
    args = parse_arguments(SpeechClipArguments, [str(path)])
    assert (args.per_device_batch_size, args.learning_rate, args.weight_decay) == (256, 1e-4, 1e-6)
    assert (args.lr_scheduler, args.warmup_steps, args.max_steps, args.mixed_precision) == ("linear", 5000, 50000,
                                                                                             "fp16")  # fmt: skip
    large = "large" in path.stem
    assert args.speech_layer_norm is large and args.speech_tower == raw["speech_tower"]
    assert ("hubert-large" in args.speech_tower) is large and ("large-patch14" in args.clip) is large
    speech, clip = _tiny_towers(tmp_path, large)
    model, processor = build_speechclip(dataclasses.replace(args, speech_tower=speech, clip=clip), CAPTIONS)
    assert model.config.mode == raw["mode"] and model.config.speech_layer_norm is large
    assert model.config.speech_config.do_stable_layer_norm is large
    g = torch.Generator().manual_seed(0)
    waves = [torch.randn(1600 + 400 * i, generator=g).numpy() for i in range(3)]
    batch = processor(audio=waves, sampling_rate=16000)
    images = torch.randn(3, 3, 32, 32, generator=g)
    model.train()
    out = model(speech_values=batch["speech_values"], speech_attention_mask=batch["speech_attention_mask"],
                pixel_values=images, item_ids=torch.tensor([0, 0, 1]), return_loss=True)  # fmt: skip
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert model.speech_layer_weights.weights.grad is not None
    assert all(p.grad is None for p in model.speech_model.parameters())
    assert all(p.grad is None for p in model.clip.parameters())
