"""Embedding cache: equals recomputation, never recomputes a cached entry, follows the model and preprocessing."""

import pytest
import torch
from miniature import NAMES, make_miniature, tiny_processor

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.data import ctrate
from modeling_speechct.training import embedding_cache
from modeling_speechct.training.embedding_cache import EmbeddingCache, TensorCache
from modeling_speechct.training.tiny import tiny_speechct_config


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


class _ListCache(TensorCache):
    """A cache of `value * 2` whose fill optionally fills an inner cache first (as CT embeddings fill volumes)."""

    def __init__(self, directory, name, inner=None):
        super().__init__(directory, name, fingerprint=name, batch_size=2)
        self.inner = inner

    def key(self, item):
        return f"{self.name}-{item}"

    def _compute(self, items):
        if self.inner is not None:
            self.inner.get(items)
        return [{"x": torch.tensor([float(i) * 2])} for i in items]


def _record_bars(monkeypatch) -> list[tuple[str, bool]]:
    """Every cache bar opened from now on, as (description, visible)."""
    shown = []
    real = embedding_cache.tqdm

    def recording_tqdm(*args, **kwargs):
        shown.append((kwargs["desc"], not kwargs["disable"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(embedding_cache, "tqdm", recording_tqdm)
    return shown


def test_only_the_outermost_fill_shows_a_progress_bar(tmp_path, monkeypatch):
    shown = _record_bars(monkeypatch)
    outer = _ListCache(tmp_path, "outer", inner=_ListCache(tmp_path, "inner"))
    assert [t["x"].item() for t in outer.get(["1", "2", "3"])] == [2.0, 4.0, 6.0]
    assert ("cache outer", True) in shown
    assert [d for d, visible in shown if visible] == ["cache outer"]  # the inner fills ran, bar hidden
    assert sum(d == "cache inner" for d, _ in shown) == 2  # two batches of 2 and 1
    inner_alone = _ListCache(tmp_path, "inner2")
    inner_alone.get(["4"])
    assert shown[-1] == ("cache inner2", True)  # depth restored: a later top-level fill shows its bar


def test_a_caller_with_its_own_bar_hides_the_fill_bars(tmp_path, monkeypatch):
    """eval/voice_robustness.py fills the cache 8 recordings at a time under its own bar: no bar per call."""
    shown = _record_bars(monkeypatch)
    cache = _ListCache(tmp_path, "chunked")
    with embedding_cache.caller_shows_progress():
        cache.get(["1", "2"])
        cache.get(["3"])
    assert [d for d, visible in shown if visible] == []
    assert [t["x"].item() for t in cache.get(["4"])] == [8.0]
    assert shown[-1] == ("cache chunked", True)  # outside the block, a fill shows its bar again
