"""The caption-trained CLIP tokenizer: CLIP's layout (special tokens last, every character word-final or not),
loadable by CLIPTokenizer and CLIPTokenizerFast alike, no unknown token on any lower-case word."""

import pytest
from transformers import AutoTokenizer, CLIPTokenizer, CLIPTokenizerFast

from modeling_speechct.data.clip_tokenizer import ALPHABET, EOT, SOT, train_clip_tokenizer
from modeling_speechct.data.scenes import sample_scene, scene_captions

CAPTIONS = [c for i in range(200) for c in scene_captions(sample_scene(0, i), 0, i)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    return folder, train_clip_tokenizer(CAPTIONS, vocab_size=200, out_dir=folder)


def test_the_vocabulary_is_laid_out_as_clips(trained):
    _, tokenizer = trained
    vocab = tokenizer.get_vocab()
    assert len(vocab) == 200 and vocab[SOT] == 198 and vocab[EOT] == 199
    assert tokenizer.bos_token_id == 198 and tokenizer.eos_token_id == 199
    assert all(c in vocab and f"{c}</w>" in vocab for c in ALPHABET)
    assert "circle</w>" in vocab and "background</w>" in vocab  # frequent words became single subwords


def test_captions_round_trip_without_unknowns_in_both_tokenizer_classes(trained):
    folder, slow = trained
    fast = CLIPTokenizerFast.from_pretrained(folder)
    assert isinstance(AutoTokenizer.from_pretrained(folder), (CLIPTokenizer, CLIPTokenizerFast))
    for caption in [*CAPTIONS[:50], "a zebra quietly jumps over 42 wax-jugs"]:
        ids = slow(caption)["input_ids"]
        assert ids[0] == 198 and ids[-1] == 199 and 199 not in ids[1:-1]  # no unknown (= EOT) inside
        assert fast(caption)["input_ids"] == ids
        decoded = slow.decode(ids, skip_special_tokens=True)
        assert decoded.replace(" ", "") == caption.lower().replace(" ", "")  # CLIP spaces out punctuation


def test_too_small_a_vocabulary_is_refused():
    with pytest.raises(ValueError, match=r"vocab_size=20: at least 86"):
        train_clip_tokenizer(CAPTIONS, vocab_size=20, out_dir="/tmp/unused")
