"""SpeechCLIP's figures against hand computations: keyword hit rate (top-1 / top-5, per slot, masked slots) and
speech ↔ image retrieval with five captions per image."""

import numpy as np
import pytest

from modeling_speechct.evaluation.speechclip_metrics import keyword_hit_rate, speech_image_retrieval


def test_keyword_hit_rate_by_hand():
    ids = np.array([
        [[5, 9, 1], [7, 2, 3]],   # utterance 0: slot 0 top-1 hits (5), slot 1 hits only at top-3 (3)
        [[4, 8, 6], [0, 0, 0]],   # utterance 1: slot 0 hits at top-2 (8); slot 1 is not a keyword
    ])  # fmt: skip
    mask = np.array([[True, True], [True, False]])
    transcripts = [[5, 3, 11], [8, 12]]
    got = keyword_hit_rate(ids, mask, transcripts, ks=(1, 2, 3))
    assert got["top1"] == {"per_slot": [0.5, 0.0], "mean": pytest.approx(1 / 3)}
    assert got["top2"] == {"per_slot": [1.0, 0.0], "mean": pytest.approx(2 / 3)}
    assert got["top3"] == {"per_slot": [1.0, 1.0], "mean": 1.0}
    with pytest.raises(ValueError, match="top-5 hit rate needs at least 5 nearest subwords"):
        keyword_hit_rate(ids, mask, transcripts, ks=(5,))


def test_retrieval_with_five_captions_per_image_by_hand():
    rng = np.random.default_rng(0)
    gallery = np.eye(3, 8)  # three orthogonal images
    item_ids = np.repeat([10, 20, 30], 5)
    images = gallery[np.repeat(np.arange(3), 5)]
    speech = images + 0.01 * rng.normal(size=images.shape)  # every caption next to its own image
    speech[0] = gallery[1] + 0.5 * gallery[0]  # caption 0 of image 10: nearer image 20, then its own: rank 2
    got = speech_image_retrieval(speech, images, item_ids, ks=(1, 2))
    assert got["speech_to_image"] == {"R@1": pytest.approx(14 / 15), "R@2": 1.0}
    assert got["image_to_speech"]["R@1"] == 1.0  # each image still finds one of its own captions first
    with pytest.raises(ValueError, match="must align"):
        speech_image_retrieval(speech[:-1], images, item_ids)
