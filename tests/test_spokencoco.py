"""The SpokenCOCO reader on miniature folders in both of its JSON forms (per image and unrolled)."""

import json

import pytest

from modeling_speechct.data.spokencoco import load_spokencoco

IMAGES = ["val2014/COCO_val2014_000000000042.jpg", "val2014/COCO_val2014_000000000073.jpg"]


def _miniature(root, unrolled):
    (root / "val2014").mkdir(parents=True)
    wavs = root / "SpokenCOCO" / "wavs" / "val" / "0"
    wavs.mkdir(parents=True)
    per_image = []
    for i, image in enumerate(IMAGES):
        (root / image).write_bytes(b"jpeg")
        captions = []
        for n in range(2):
            wav = f"wavs/val/0/utt{i}{n}.wav"
            (root / "SpokenCOCO" / wav).write_bytes(b"RIFF")
            captions.append({"text": f"caption {n} of {i} ", "speaker": "s", "uttid": f"u{i}{n}", "wav": wav})
        per_image.append({"image": image, "captions": captions})
    if unrolled:
        data = [{"image": e["image"], "caption": c} for e in per_image for c in e["captions"]]
        name = "SpokenCOCO_val_unrolled_karpathy.json"
    else:
        data, name = per_image, "SpokenCOCO_val_karpathy.json"
    (root / "SpokenCOCO" / name).write_text(json.dumps({"data": data}))
    return root


@pytest.mark.parametrize("unrolled", [False, True])
def test_both_json_forms_give_the_same_captions(tmp_path, unrolled):
    rows = load_spokencoco(_miniature(tmp_path / "coco", unrolled), "valid")
    expected = [(i, n, f"caption {n} of {i}") for i in range(2) for n in range(2)]
    assert [(r.item_id, r.caption_number, r.caption) for r in rows] == expected
    assert rows[3].wav.name == "utt11.wav" and rows[3].image.name.endswith("073.jpg")


def test_bad_folders_are_refused_by_entry(tmp_path):
    root = _miniature(tmp_path / "coco", unrolled=False)
    (root / "SpokenCOCO" / "wavs" / "val" / "0" / "utt10.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"SpokenCOCO_val_karpathy.json entry 1: .*utt10.wav is missing"):
        load_spokencoco(root, "valid")
    path = root / "SpokenCOCO" / "SpokenCOCO_val_karpathy.json"
    path.write_text(json.dumps({"data": [{"image": "../../x.jpg", "captions": [{"text": "t", "wav": "w.wav"}]}]}))
    with pytest.raises(ValueError, match="points outside the dataset root"):
        load_spokencoco(root, "valid")
    with pytest.raises(FileNotFoundError, match=r"neither SpokenCOCO_test_unrolled_karpathy\.json"):
        load_spokencoco(root, "test")
