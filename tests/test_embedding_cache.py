"""Embedding cache: equals recomputation, never recomputes a cached entry, follows the model and preprocessing."""

import pytest
import torch
from miniature import NAMES, make_miniature, tiny_processor

from modeling_speechct import SpeechCTClipModel, ctrate
from modeling_speechct.embedding_cache import EmbeddingCache
from modeling_speechct.tiny import tiny_speechct_config


@pytest.fixture
def setup(tmp_path):
    root = make_miniature(tmp_path / "data", with_speech=False)
    paths = [str(ctrate.volume_path(root, n)) for n in NAMES]
    return SpeechCTClipModel(tiny_speechct_config("whisper")).eval(), tiny_processor(tmp_path), paths


@pytest.mark.parametrize("tower", ["ct", "text"])
def test_cache_equals_recomputation_and_is_reused_from_disk(tmp_path, setup, tower):
    model, processor, paths = setup
    items = paths if tower == "ct" else ["finding number one", "no finding", "finding number one"]
    with torch.no_grad():
        if tower == "ct":
            direct = model.get_ct_features(processor(ct=paths, ct_kwargs={"is_hu": True})["ct_values"]).pooler_output
        else:
            batch = processor(text=items)
            direct = model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output
    cache = EmbeddingCache(tmp_path / "cache", model, processor, tower)
    torch.testing.assert_close(cache(items), direct, atol=1e-5, rtol=1e-5)
    assert cache.misses == 3 and len(list(cache.directory.glob("*.safetensors"))) == len(set(items))

    again = EmbeddingCache(tmp_path / "cache", model, processor, tower)  # a later run: everything from disk
    again._compute = lambda batch: pytest.fail("a cached entry was recomputed")
    torch.testing.assert_close(again(items), direct, atol=1e-5, rtol=1e-5)
    assert (again.hits, again.misses) == (3, 0)


def test_new_weights_or_preprocessing_start_a_new_cache(tmp_path, setup):
    model, processor, paths = setup
    first = EmbeddingCache(tmp_path / "cache", model, processor, "ct")
    first(paths[:1])
    with torch.no_grad():
        model.ct_projection.weight.mul_(2)
    assert EmbeddingCache(tmp_path / "cache", model, processor, "ct").fingerprint != first.fingerprint
    processor.ct_feature_extractor.hu_window = (-500.0, 500.0)
    changed = EmbeddingCache(tmp_path / "cache", model, processor, "ct")
    assert changed.directory != first.directory and changed(paths[:1]).shape == (1, 16) and changed.misses == 1
    # The speech tower is not a frozen teacher: it has no cache.
    with pytest.raises(ValueError, match="tower 'speech' is not one of"):
        EmbeddingCache(tmp_path / "cache", model, processor, "speech")
