"""Build the embedded scenes benchmark in the Flickr8k Audio Captions layout (`data/flickr8k.py` reads it).

    python processing/build_scenes.py --out data/scenes --num-images 2000

Images (`scenes.draw_scene`), five captions each (`scenes.scene_captions`), each caption spoken by a seeded draw of
engine, voice, rate and pitch over the *training* TTS engines (the held-out engine is refused), a speech manifest
(`speech_manifest.csv`: who spoke each wav) and `scenes.json` (what each image shows). Every file is written
atomically and an existing one is kept, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..files.provenance import refuse_other_build, write_text_atomic
from .flickr8k import SPLIT_FILES
from .scenes import draw_scene, sample_scene, scene_captions

CAPTIONS_PER_IMAGE = 5


@dataclass(frozen=True)
class ScenesConfig:
    out: Path
    num_images: int = 2000
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    image_size: int = 64
    seed: int = 0
    workers: int = 2
    tts_backends: tuple[str, ...] = ("espeak", "flite")
    speech: bool = True


def image_name(index: int) -> str:
    return f"scene_{index:06d}.jpg"


def assign_splits(config: ScenesConfig) -> list[str]:
    order = np.random.default_rng([config.seed, 3]).permutation(config.num_images)
    n_valid, n_test = round(config.num_images * config.valid_fraction), round(config.num_images * config.test_fraction)
    splits = [""] * config.num_images
    for rank, index in enumerate(order):
        splits[index] = "valid" if rank < n_valid else "test" if rank < n_valid + n_test else "train"
    return splits


# What decides the content; `out` and `workers` do not (a moved copy, or one built with more workers, is the same).
_CONTENT_FIELDS = ("num_images", "valid_fraction", "test_fraction", "image_size", "seed", "tts_backends", "speech")


def require_same_build(config: ScenesConfig) -> None:
    """Refuse a folder that holds another scenes build (`files.provenance.refuse_other_build`)."""
    new = {**asdict(config), "tts_backends": list(config.tts_backends)}
    refuse_other_build(Path(config.out) / "scenes.json", {k: new[k] for k in _CONTENT_FIELDS}, "scenes")


def _write_image(scene: Any, path: Path, size: int) -> None:
    if path.is_file():
        return
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".jpg", delete=False) as tmp:
        draw_scene(scene, size).save(tmp, format="JPEG", quality=95)
    os.replace(tmp.name, path)


def build_scenes(config: ScenesConfig, progress: bool = True) -> dict[str, Any]:
    """Write the benchmark under `config.out`; returns counts (and the speech statistics)."""
    from .speech_manifest import manifest_rows, write_speech_manifest
    from .tts import plan_speech, synthesize_all
    from .tts_engines import require_training_engines

    require_training_engines(config.tts_backends, "scenes_build.build_scenes")
    if config.num_images < 3:
        raise ValueError(f"num_images={config.num_images}: a benchmark needs at least one image per split.")
    require_same_build(config)
    root = Path(config.out)
    images_dir, text_dir, wav_dir = root / "Flicker8k_Dataset", root / "Flickr8k_text", root / "flickr_audio" / "wavs"
    for folder in (images_dir, text_dir, wav_dir):
        folder.mkdir(parents=True, exist_ok=True)
    splits = assign_splits(config)
    tokens, wav2capt, records, jobs, names = [], [], [], [], []
    indices = range(config.num_images)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="scenes", unit="image")
    for index in indices:
        scene = sample_scene(config.seed, index)
        name = image_name(index)
        _write_image(scene, images_dir / name, config.image_size)
        captions = scene_captions(scene, config.seed, index, CAPTIONS_PER_IMAGE)
        records.append({"image": name, "split": splits[index], **asdict(scene), "captions": captions})
        for n, caption in enumerate(captions):
            tokens.append(f"{name}#{n}\t{caption}")
            wav = f"{name[:-4]}_{n}.wav"
            wav2capt.append(f"{wav} {name} #{n}")
            jobs.append((caption, wav_dir / wav))
            names.append((f"{name[:-4]}_{n}", splits[index]))
    for split, listing in SPLIT_FILES.items():
        members = [image_name(i) for i in range(config.num_images) if splits[i] == split]
        write_text_atomic(text_dir / listing, "\n".join(members) + "\n")
    write_text_atomic(text_dir / "Flickr8k.token.txt", "\n".join(tokens) + "\n")
    write_text_atomic(root / "flickr_audio" / "wav2capt.txt", "\n".join(wav2capt) + "\n")
    write_text_atomic(root / "scenes.json", json.dumps({"config": {**asdict(config), "out": str(config.out)},
                                                        "images": records}, indent=1) + "\n")  # fmt: skip
    stats: dict[str, Any] = {"images": config.num_images, "captions": len(tokens),
                             "splits": {s: splits.count(s) for s in SPLIT_FILES}}  # fmt: skip
    if config.speech:
        plan = plan_speech(jobs, list(config.tts_backends), seed=config.seed)
        stats["speech"] = synthesize_all(plan, workers=config.workers, progress=progress, desc="captions")
        rows = manifest_rows(plan, root, [n for n, _ in names], [s for _, s in names])
        stats["speech_manifest"] = str(write_speech_manifest(root / "speech_manifest.csv", rows))
    return stats
