"""The Flickr8k Audio Captions reader on a miniature folder in the corpus's distributed layout."""

import numpy as np
import pytest
import soundfile as sf

from modeling_speechct.data.flickr8k import load_flickr8k

IMAGES = {"train": ["100_a.jpg", "200_b.jpg"], "valid": ["300_c.jpg"], "test": ["400_d.jpg"]}


def _miniature(root, captions_per_image=2):
    (root / "Flicker8k_Dataset").mkdir(parents=True)
    (root / "Flickr8k_text").mkdir()
    (root / "flickr_audio" / "wavs").mkdir(parents=True)
    tokens, wav2capt = [], []
    for split, names in IMAGES.items():
        listing = {"train": "trainImages", "valid": "devImages", "test": "testImages"}[split]
        (root / "Flickr8k_text" / f"Flickr_8k.{listing}.txt").write_text("\n".join(names) + "\n")
        for name in names:
            (root / "Flicker8k_Dataset" / name).write_bytes(b"\xff\xd8jpeg")
            for n in range(captions_per_image):
                tokens.append(f"{name}#{n}\tA caption {n} of {name} .")
                wav = f"{name[:-4]}_{n}.wav"
                sf.write(root / "flickr_audio" / "wavs" / wav, np.full(160, 0.1, dtype=np.float32), 16000)
                wav2capt.append(f"{wav} {name} #{n}")
    (root / "Flickr8k_text" / "Flickr8k.token.txt").write_text("\n".join(tokens) + "\n")
    (root / "flickr_audio" / "wav2capt.txt").write_text("\n".join(reversed(wav2capt)) + "\n")
    return root


def test_reads_each_split_with_its_images_captions_and_item_ids(tmp_path):
    root = _miniature(tmp_path / "flickr8k")
    train = load_flickr8k(root, "train")
    assert [(r.image.name, r.caption_number, r.item_id) for r in train] == [
        ("100_a.jpg", 0, 0), ("100_a.jpg", 1, 0), ("200_b.jpg", 0, 1), ("200_b.jpg", 1, 1)]  # fmt: skip
    assert train[1].caption == "A caption 1 of 100_a.jpg ." and train[1].wav.name == "100_a_1.wav"
    assert [r.image.name for r in load_flickr8k(root, "test")] == ["400_d.jpg", "400_d.jpg"]


def _drop_a_wav(root):
    (root / "flickr_audio" / "wavs" / "200_b_1.wav").unlink()


def _drop_captions(root):
    (root / "Flickr8k_text" / "Flickr8k.token.txt").write_text("100_a.jpg#0\tonly one\n")


def _escape_the_root(root):
    (root / "flickr_audio" / "wav2capt.txt").write_text("../../etc/passwd 100_a.jpg #0\n")


def _garble_a_row(root):
    (root / "flickr_audio" / "wav2capt.txt").write_text("x.wav 100_a.jpg 0\n")


def _drop_the_split_list(root):
    (root / "Flickr8k_text" / "Flickr_8k.trainImages.txt").unlink()


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (_drop_a_wav, FileNotFoundError, r"wav2capt.txt:\d+: .*200_b_1.wav is missing"),
        (_drop_captions, ValueError, r"wav2capt.txt:\d+: caption \S+#\d is not in .*Flickr8k.token.txt"),
        (_escape_the_root, ValueError, "points outside the dataset root"),
        (_garble_a_row, ValueError, r"wav2capt.txt:1: expected '<wav> <image>.jpg #<n>'"),
        (_drop_the_split_list, FileNotFoundError, "Flickr_8k.trainImages.txt is missing"),
    ],
)
def test_bad_folders_are_refused_with_the_file_and_line(tmp_path, damage, error, message):
    root = _miniature(tmp_path / "flickr8k")
    damage(root)
    with pytest.raises(error, match=message):
        load_flickr8k(root, "train")


def test_an_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"split 'dev' is not one of \('train', 'valid', 'test'\)"):
        load_flickr8k(_miniature(tmp_path / "f"), "dev")
