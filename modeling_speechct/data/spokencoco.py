"""SpokenCOCO (Hsu et al., 2021) with the Karpathy split, in its distributed layout, read into spoken captions.

    <root>/SpokenCOCO/SpokenCOCO_{train,val,test}_karpathy.json            {"data": [{"image": …, "captions": […]}]}
    <root>/SpokenCOCO/SpokenCOCO_{train,val,test}_unrolled_karpathy.json   {"data": [{"image": …, "caption": {…}}]}
    <root>/SpokenCOCO/wavs/…                  each caption {"text", "speaker", "uttid", "wav": "wavs/val/0/….wav"}
    <root>/train2014/…, <root>/val2014/…      MSCOCO's images ("image": "val2014/COCO_val2014_….jpg")

Either JSON form is read (the unrolled one, one entry per caption, is what SpeechCLIP trains on). Rows are the
Flickr8k reader's `SpokenCaption`s, with `item_id` the image's index in the split, so one training loop serves both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .flickr8k import SpokenCaption, _inside, require_files

SPLITS = {"train": "train", "valid": "val", "test": "test"}


def _json_file(folder: Path, split: str) -> Path:
    for name in (f"SpokenCOCO_{split}_unrolled_karpathy.json", f"SpokenCOCO_{split}_karpathy.json"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder} has neither SpokenCOCO_{split}_unrolled_karpathy.json nor _karpathy.json.")


def load_spokencoco(root: str | os.PathLike, split: str, check_files: bool = True) -> list[SpokenCaption]:
    """The spoken captions of `split` ("train", "valid" or "test"), images in order of first appearance."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {tuple(SPLITS)}.")
    root = Path(root)
    folder = root / "SpokenCOCO"
    path = _json_file(folder, SPLITS[split])
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a SpokenCOCO file ({type(error).__name__}: {error}).") from error
    items: dict[str, int] = {}
    numbers: dict[str, int] = {}
    rows = []
    for index, entry in enumerate(entries):
        where = f"{path} entry {index}"
        captions = entry.get("captions", [entry["caption"]] if "caption" in entry else None)
        if "image" not in entry or not captions:
            raise ValueError(f"{where}: needs an 'image' and 'captions' (or one 'caption').")
        image = entry["image"]
        item = items.setdefault(image, len(items))
        for caption in captions:
            if not {"text", "wav"} <= set(caption):
                raise ValueError(f"{where}: a caption needs 'text' and 'wav', got keys {sorted(caption)}.")
            row = SpokenCaption(
                wav=_inside(folder, caption["wav"], where),
                image=_inside(root, image, where),
                caption=caption["text"].strip(),
                caption_number=numbers.get(image, 0),
                item_id=item,
            )
            numbers[image] = row.caption_number + 1
            if check_files:
                require_files(row, where)
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no caption.")
    return rows
