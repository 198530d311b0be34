"""The Flickr8k Audio Captions Corpus (Harwath & Glass, 2015) in its distributed layout, read into spoken captions.

    <root>/Flicker8k_Dataset/<image>.jpg            (the images; "Images/" in some re-distributions)
    <root>/Flickr8k_text/Flickr8k.token.txt         <image>.jpg#<n>\\t<caption>
    <root>/Flickr8k_text/Flickr_8k.{train,dev,test}Images.txt
    <root>/flickr_audio/wav2capt.txt                <wav> <image>.jpg #<n>
    <root>/flickr_audio/wavs/<wav>

SpeechCLIP trains and tests on this layout; the package's embedded scenes benchmark is written in it too, so one
reader serves both. Every caption row names its image (the contrastive loss masks captions of the same image
out as negatives through `item_id`). Paths from the lists never leave `root`; a wav, image or caption that a
list names but the folder lacks is refused with the file and line that named it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "valid": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}
IMAGE_DIRS = ("Flicker8k_Dataset", "Images")


@dataclass(frozen=True)
class SpokenCaption:
    """One recording: its wav, the image it describes, the caption's text and number, and the image's index in
    the split (`item_id`: equal for the five captions of one image)."""

    wav: Path
    image: Path
    caption: str
    caption_number: int
    item_id: int


def require_files(row: SpokenCaption, where: str) -> None:
    """FileNotFoundError naming `where` (the list file and line, or entry) when the row's wav or image is absent."""
    for path in (row.wav, row.image):
        if not path.is_file():
            raise FileNotFoundError(f"{where}: {path} is missing.")


def _inside(root: Path, relative: str, where: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{where}: {relative!r} points outside the dataset root {root}.")
    return path


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: not a Flickr8k Audio folder (see modeling_speechct.data.flickr8k)."
        )
    return [
        (n, line.strip()) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip()
    ]


def image_dir(root: Path) -> Path:
    for name in IMAGE_DIRS:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"{root} has no image folder ({' or '.join(IMAGE_DIRS)}).")


def load_flickr8k(root: str | os.PathLike, split: str, check_files: bool = True) -> list[SpokenCaption]:
    """The spoken captions of `split` ("train", "valid" or "test"), in the order of the split's image list and
    caption number."""
    if split not in SPLIT_FILES:
        raise ValueError(f"split {split!r} is not one of {tuple(SPLIT_FILES)}.")
    root = Path(root)
    text_dir, audio_dir = root / "Flickr8k_text", root / "flickr_audio"
    images = image_dir(root)
    split_file = text_dir / SPLIT_FILES[split]
    order = {name: index for index, (_, name) in enumerate(_lines(split_file))}
    captions: dict[tuple[str, int], str] = {}
    token_file = text_dir / "Flickr8k.token.txt"
    for number, line in _lines(token_file):
        key, _, caption = line.partition("\t")
        image, _, n = key.rpartition("#")
        if not image or not n.isdigit() or not caption:
            raise ValueError(f"{token_file}:{number}: expected '<image>.jpg#<n>\\t<caption>', got {line!r}.")
        captions[(image, int(n))] = caption.strip()
    rows = []
    wav_list = audio_dir / "wav2capt.txt"
    for number, line in _lines(wav_list):
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("#") or not parts[2][1:].isdigit():
            raise ValueError(f"{wav_list}:{number}: expected '<wav> <image>.jpg #<n>', got {line!r}.")
        wav_name, image_name, n = parts[0], parts[1], int(parts[2][1:])
        if image_name not in order:
            continue
        where = f"{wav_list}:{number}"
        if (image_name, n) not in captions:
            raise ValueError(f"{where}: caption {image_name}#{n} is not in {token_file}.")
        row = SpokenCaption(
            wav=_inside(audio_dir, f"wavs/{wav_name}", where),
            image=_inside(images, image_name, where),
            caption=captions[(image_name, n)],
            caption_number=n,
            item_id=order[image_name],
        )
        if check_files:
            require_files(row, where)
        rows.append(row)
    if not rows:
        raise ValueError(f"{wav_list} names no recording of an image in {split_file}.")
    return sorted(rows, key=lambda r: (r.item_id, r.caption_number))


def flickr8k_revision(root: str | os.PathLike, splits: list[str]) -> dict:
    """The revision of a Flickr8k-layout folder: SHA-256 over the tables that define `splits` (the split lists,
    the captions, the wav list and, for a scenes build, its speech manifest), not over the media themselves."""
    from ..files.provenance import tables_revision

    root = Path(root)
    tables = [root / "Flickr8k_text" / SPLIT_FILES[s] for s in splits]
    tables += [root / "Flickr8k_text" / "Flickr8k.token.txt", root / "flickr_audio" / "wav2capt.txt"]
    tables += [p for p in (root / "speech_manifest.csv",) if p.is_file()]
    missing = [str(p) for p in tables if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{root} is not a Flickr8k-layout folder for {splits}: {missing[0]} is missing.")
    return tables_revision(root, tables, {"data_dir": str(root), "splits": list(splits), "layout": "flickr8k"})
