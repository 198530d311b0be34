"""The shipped scenes CLIP: its weights match the pinned sha256 (a tampered copy is refused), and on a fresh build of
the scenes it was trained on, its caption → image recall is the one its card and recipe record."""

import json
import shutil

import pytest

from modeling_speechct.data.flickr8k import load_flickr8k
from modeling_speechct.data.scenes_build import ScenesConfig, build_scenes
from modeling_speechct.training.scenes_clip import (
    RECIPE_FILE,
    SHIPPED_SCENES_CLIP,
    WEIGHTS_FILE,
    CaptionImageCollator,
    caption_rows,
    load_scenes_clip,
    text_image_recall,
)

RECIPE = json.loads((SHIPPED_SCENES_CLIP / RECIPE_FILE).read_text())


def test_the_pin_holds_and_a_changed_file_is_refused(tmp_path):
    model, processor = load_scenes_clip()
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    copy = tmp_path / "clip"
    shutil.copytree(SHIPPED_SCENES_CLIP, copy)
    data = bytearray((copy / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 1
    (copy / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"sha256 .* is not the pinned"):
        load_scenes_clip(copy)


def test_the_recorded_test_recall_reproduces_on_a_fresh_build(tmp_path):
    scenes = RECIPE["scenes"]
    config = ScenesConfig(out=tmp_path / "scenes", num_images=scenes["num_images"], seed=scenes["seed"],
                          image_size=scenes["image_size"], valid_fraction=scenes["valid_fraction"],
                          test_fraction=scenes["test_fraction"], speech=False)  # fmt: skip
    build_scenes(config, progress=False)
    model, processor = load_scenes_clip()
    rows = caption_rows(load_flickr8k(config.out, "test", check_files=False), processor.image_processor)
    collate = CaptionImageCollator(processor.tokenizer, RECIPE["training_args"]["max_text_length"])
    assert text_image_recall(model, rows, collate) == pytest.approx(RECIPE["recall"]["test"], abs=1e-9)
    card = (SHIPPED_SCENES_CLIP / "README.md").read_text()
    assert f"{RECIPE['recall']['test']['R@1']:.3f}" in card and RECIPE["weights_sha256"] in card
