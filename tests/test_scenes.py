"""The scenes benchmark: captions true of their images, images that show what the captions say, the Flickr8k
layout read back by its reader, training engines only in the speech, deterministic and resumable builds."""

import re

import numpy as np
import pytest

from modeling_speechct.data.flickr8k import load_flickr8k
from modeling_speechct.data.scenes import COLOURS, SHAPES, draw_scene, sample_scene, scene_captions
from modeling_speechct.data.scenes_build import ScenesConfig, build_scenes
from modeling_speechct.data.speech_manifest import held_out_voices, read_speech_manifest
from modeling_speechct.data.tts_engines import HELD_OUT_ENGINES

WORDS = re.compile(r"[a-z]+")


def test_every_caption_names_only_what_its_scene_holds():
    for index in range(300):
        scene = sample_scene(seed=5, index=index)
        captions = scene_captions(scene, seed=5, index=index)
        assert len(captions) == 5 and len(set(captions)) == 5
        colours = {o.colour for o in scene.objects} | {scene.background_colour}
        shapes = {o.shape for o in scene.objects}
        for caption in captions:
            words = set(WORDS.findall(caption))
            assert words & set(COLOURS) <= colours, (index, caption)
            assert words & set(SHAPES) <= shapes, (index, caption)
            assert words & (set(SHAPES) | {"shapes"}), caption  # every caption speaks of the shapes


def test_the_image_shows_each_object_in_its_colour_at_its_place():
    for index in range(60):
        scene = sample_scene(seed=2, index=index)
        pixels = np.asarray(draw_scene(scene, size=64))
        assert 1 <= len(scene.objects) <= 3
        for obj in scene.objects:
            centre = pixels[int(obj.y * 64), int(obj.x * 64)].astype(int)
            assert np.abs(centre - COLOURS[obj.colour]).max() <= 1, (index, obj)


def test_relations_follow_the_positions():
    for index in range(200):
        scene = sample_scene(seed=0, index=index)
        for caption in scene_captions(scene, seed=0, index=index):
            match = re.fullmatch(
                r"an? (?:\w+ )?(\w+) (\w+) (to the left of|to the right of|above|below) an? (?:\w+ )?(\w+) (\w+)",
                caption,
            )
            if not match:
                continue
            colour_a, shape_a, relation, colour_b, shape_b = match.groups()
            a = next(o for o in scene.objects if (o.colour, o.shape) == (colour_a, shape_a))
            b = next(o for o in scene.objects if (o.colour, o.shape) == (colour_b, shape_b))
            dx, dy = b.x - a.x, b.y - a.y
            expected = (("to the left of" if dx > 0 else "to the right of") if abs(dx) >= abs(dy)
                        else ("above" if dy > 0 else "below"))  # fmt: skip
            assert relation == expected, caption


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    config = ScenesConfig(out=tmp_path_factory.mktemp("scenes") / "scenes", num_images=6, image_size=32, seed=1,
                          valid_fraction=0.2, test_fraction=0.2)  # fmt: skip
    return config, build_scenes(config, progress=False)


def test_the_build_is_a_flickr8k_folder_with_five_spoken_captions_per_image(built):
    config, stats = built
    assert stats["captions"] == 30 and stats["speech"]["synthesized"] == 30
    rows = {split: load_flickr8k(config.out, split) for split in ("train", "valid", "test")}
    assert sum(len(r) for r in rows.values()) == 30
    for split_rows in rows.values():
        per_image = {}
        for row in split_rows:
            per_image.setdefault(row.item_id, []).append(row)
        assert all(len(captions) == 5 for captions in per_image.values())
        assert all(len({r.image for r in captions}) == 1 for captions in per_image.values())


def test_the_speech_comes_from_training_engines_only(built):
    config, _ = built
    manifest = read_speech_manifest(config.out / "speech_manifest.csv")
    assert len(manifest) == 30
    assert {row.backend for row in manifest} <= set(config.tts_backends)
    assert not {row.backend for row in manifest} & set(HELD_OUT_ENGINES)
    assert not {row.voice for row in manifest} & held_out_voices()
    with pytest.raises(ValueError, match="held out for evaluation"):
        build_scenes(ScenesConfig(out=config.out.parent / "x", num_images=3, tts_backends=("piper",)), progress=False)


def test_builds_are_deterministic_and_resume(built, tmp_path):
    config, _ = built
    again = ScenesConfig(**{**config.__dict__, "out": tmp_path / "again", "speech": False})
    build_scenes(again, progress=False)
    for relative in (
        "Flickr8k_text/Flickr8k.token.txt",
        "flickr_audio/wav2capt.txt",
        "Flicker8k_Dataset/scene_000004.jpg",
    ):
        assert (again.out / relative).read_bytes() == (config.out / relative).read_bytes(), relative
    victim = config.out / "flickr_audio" / "wavs" / "scene_000002_3.wav"
    victim.unlink()
    resumed = build_scenes(config, progress=False)
    assert resumed["speech"]["synthesized"] == 1 and resumed["speech"]["skipped"] == 29 and victim.is_file()


def test_a_folder_holding_another_build_is_refused_untouched(built, tmp_path):
    config, _ = built
    before = (config.out / "Flickr8k_text" / "Flickr8k.token.txt").read_bytes()
    for change in ({"seed": 2}, {"num_images": 7}, {"image_size": 48}):
        with pytest.raises(ValueError, match=f"holds another scenes build.*{next(iter(change))}="):
            build_scenes(ScenesConfig(**{**config.__dict__, **change}), progress=False)
    assert (config.out / "Flickr8k_text" / "Flickr8k.token.txt").read_bytes() == before
    moved = ScenesConfig(**{**config.__dict__, "workers": 1})  # how many workers build it does not change it
    assert build_scenes(moved, progress=False)["speech"]["skipped"] == 30
