"""The scenes CLIP: its config follows the trained tokenizer, a short run writes a folder CLIPModel and CLIPProcessor
load, and its recorded validation recall is what the saved model gives."""

import json

import pytest
import torch
from transformers import CLIPModel, CLIPProcessor

from modeling_speechct.data.flickr8k import load_flickr8k
from modeling_speechct.training.scenes_clip import (
    CaptionImageCollator,
    caption_rows,
    clip_image_processor,
    text_image_recall,
)
from scripts import load_script


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes_clip")
    script = load_script("train/train_scenes_clip.py")
    argv = ["--output_dir", str(root / "out"), "--data_dir", str(root / "data"), "--num_images", "40",
            "--max_steps", "12", "--hidden_size", "32", "--num_layers", "1", "--per_device_batch_size", "16",
            "--eval_every", "12", "--save_every", "6", "--log_every", "6", "--vocab_size", "110"]  # fmt: skip
    return root, script, script.main(argv)


def test_the_run_writes_a_clip_folder_whose_text_side_follows_the_tokenizer(run):
    root, _, _ = run
    final = root / "out" / "final"
    model, processor = CLIPModel.from_pretrained(final), CLIPProcessor.from_pretrained(final)
    text = model.config.text_config
    assert text.vocab_size == len(processor.tokenizer) == 110
    assert (text.bos_token_id, text.eos_token_id) == (108, 109) == (processor.tokenizer.bos_token_id,
                                                                    processor.tokenizer.eos_token_id)  # fmt: skip
    assert model.config.vision_config.image_size == 64
    assert json.loads((final / "eval_results.json").read_text())["step"] == 12


def test_the_recorded_recall_is_the_saved_models(run):
    root, _, result = run
    final = root / "out" / "final"
    model, processor = CLIPModel.from_pretrained(final), CLIPProcessor.from_pretrained(final)
    rows = caption_rows(load_flickr8k(root / "data", "valid", check_files=False), clip_image_processor(64))
    with torch.no_grad():
        recall = text_image_recall(model, rows, CaptionImageCollator(processor.tokenizer, 32))
    assert recall == pytest.approx({k[len("eval_") :]: v for k, v in result.items() if k.startswith("eval_")})
