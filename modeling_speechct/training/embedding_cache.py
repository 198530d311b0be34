"""Frozen towers are frozen work: their embeddings are computed once and stored, so distillation runs the student only.

An entry's key is the SHA-256 of its content (the volume file's bytes, or the report text) and lives in a folder
named by a fingerprint of the tower (its weights, its projection, and for CT the preprocessing settings): change
the model or the preprocessing and the cache starts afresh; change nothing and every later run reuses it. Entries
are safetensors files written through a temporary file, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..files.provenance import sha256_file

TOWERS = ("ct", "text")


def _fingerprint(modules: dict[str, Any], settings: dict | None) -> str:
    """SHA-256 over the modules' tensors (names, shapes, bytes) plus `settings` as JSON."""
    digest = hashlib.sha256(json.dumps(settings or {}, sort_keys=True, default=str).encode())
    for prefix, module in modules.items():
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(f"{prefix}.{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def tower_fingerprint(model: Any, tower: str, settings: dict | None = None) -> str:
    """Fingerprint of a tower and its projection (`"ct"`, `"text"`), or of the bare speech / text tower
    (`"speech_body"`, `"text_body"`) for caches of what comes before the trainable part."""
    modules = {
        "ct": ("ct_model", "ct_projection"),
        "text": ("text_model", "text_projection"),
        "text_body": ("text_model",),
        "speech_body": ("speech_model",),
    }[tower]
    return _fingerprint({name: getattr(model, name) for name in modules}, settings)


_fill_depth = 0  # caches being filled right now (nested: a model cache that fills the volume cache)


class TensorCache(ABC):
    """Tensors computed from an item (a file path or a text), keyed by the item's content and stored one
    safetensors file per item in a folder named by `fingerprint` (what produced them): change the producer and
    the cache starts afresh; change nothing and every later run reuses it. Writes go through a temporary file, so
    an interrupted run keeps what it finished. Subclasses define `_compute(items) -> list[dict[str, Tensor]]`."""

    content: str = "text"  # "file": key = SHA-256 of the file's bytes; "text": of the string

    def __init__(self, directory: str | os.PathLike, name: str, fingerprint: str, batch_size: int = 8):
        self.name, self.fingerprint, self.batch_size = name, fingerprint, batch_size
        self.directory = Path(directory) / f"{name}-{fingerprint}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    def key(self, item: str) -> str:
        return sha256_file(item) if self.content == "file" else hashlib.sha256(item.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    @abstractmethod
    def _compute(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]: ...

    def get(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        """The tensors of every item, computed (in batches of `batch_size`) only where not cached yet."""
        keys = [self.key(item) for item in items]
        found = {k: load_file(self._path(k)) for k in set(keys) if self._path(k).is_file()}
        todo = [(k, item) for k, item in dict(zip(keys, items, strict=True)).items() if k not in found]
        if self.content == "file":  # similar sizes share a batch: less padding (recordings vary in length)
            todo.sort(key=lambda pair: os.path.getsize(pair[1]))
        missing = sum(k not in found for k in keys)
        self.hits, self.misses = self.hits + len(keys) - missing, self.misses + missing
        # Filling a cache is a stage of its own (minutes for thousands of volumes or recordings): it gets a bar.
        # Only the outermost fill shows one: a CT-embedding fill fills the volume cache batch by batch, and a bar per
        # batch of 8 would bury the stage's own.
        global _fill_depth
        with tqdm(total=len(todo), desc=f"cache {self.name}", disable=not todo or _fill_depth > 0) as bar:
            _fill_depth += 1
            try:
                for start in range(0, len(todo), self.batch_size):
                    chunk = todo[start : start + self.batch_size]
                    for (key, _), tensors in zip(chunk, self._compute([item for _, item in chunk]), strict=True):
                        self.put(key, tensors)
                        found[key] = tensors
                    bar.update(len(chunk))
            finally:
                _fill_depth -= 1
        return [found[k] for k in keys]

    def put(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        with tempfile.NamedTemporaryFile(dir=self.directory, suffix=".tmp", delete=False) as tmp:
            pass
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp.name)
        os.replace(tmp.name, self._path(key))


@contextmanager
def caller_shows_progress() -> Iterator[None]:
    """Cache fills inside show no bar of their own: the caller already reports the stage with one bar (or has been
    asked for none), and a bar per call of a few items would bury it."""
    global _fill_depth
    _fill_depth += 1
    try:
        yield
    finally:
        _fill_depth -= 1


class _ModelCache(TensorCache):
    """A cache whose producer is (part of) a model: computed in eval mode without gradients."""

    def __init__(self, directory, model, processor, name: str, fingerprint: str, batch_size: int = 8):
        self.model, self.processor = model, processor
        super().__init__(directory, name, fingerprint, batch_size)

    @torch.no_grad()
    def get(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        was_training = self.model.training
        self.model.eval()
        try:
            return super().get(items)
        finally:
            self.model.train(was_training)


def _ct_settings(processor: Any) -> dict:
    return {k: v for k, v in processor.ct_feature_extractor.to_dict().items() if k != "auto_map"}


def _text_settings(processor: Any) -> dict:
    return {"vocab": processor.tokenizer.get_vocab(), "max_text_length": processor.max_text_length}


class EmbeddingCache(_ModelCache):
    """Projected embeddings of one frozen tower (`"ct"` or `"text"`), computed on demand and kept on disk."""

    def __init__(
        self,
        directory: str | os.PathLike,
        model: Any,
        processor: Any,
        tower: str,
        batch_size: int = 8,
        volume_cache: CTVolumeCache | None = None,
    ):
        self.volume_cache = volume_cache  # CT: read preprocessed volumes from there instead of the files
        if tower not in TOWERS:
            raise ValueError(f"tower {tower!r} is not one of {TOWERS}.")
        self.tower = tower
        self.content = "file" if tower == "ct" else "text"
        # The CT tensor depends on the preprocessing as much as on the weights.
        settings = _ct_settings(processor) if tower == "ct" else _text_settings(processor)
        super().__init__(directory, model, processor, tower, tower_fingerprint(model, tower, settings), batch_size)

    def _compute(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        if self.tower == "ct":
            if self.volume_cache is not None:
                values = self.volume_cache(items)
            else:
                values = self.processor(ct=list(items), ct_kwargs={"is_hu": True})["ct_values"]
            embeds = self.model.get_ct_features(values).pooler_output
        else:
            batch = self.processor(text=list(items))
            embeds = self.model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output
        return [{"embedding": e} for e in embeds]

    def __call__(self, items: Sequence[str]) -> torch.Tensor:
        """Embeddings `(len(items), projection_dim)` for volume paths (CT) or report texts (text)."""
        return torch.stack([t["embedding"] for t in self.get(items)])


class CTVolumeCache(TensorCache):
    """Preprocessed CT tensors (`ct_values` of one volume, float16 to halve the disk and memory), so that a tower
    trained on them for many epochs reads and resamples each volume once."""

    content = "file"

    def __init__(self, directory: str | os.PathLike, processor: Any, batch_size: int = 8):
        self.processor = processor
        super().__init__(directory, "ct_values", _fingerprint({}, _ct_settings(processor)), batch_size)

    def _compute(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        values = self.processor(ct=list(items), ct_kwargs={"is_hu": True})["ct_values"]
        return [{"ct_values": v.to(torch.float16)} for v in values]

    def __call__(self, items: Sequence[str]) -> torch.Tensor:
        return torch.stack([t["ct_values"] for t in self.get(items)]).float()


class TextPooledCache(_ModelCache):
    """A frozen text tower's pooled output before its projection (a teacher whose projection trains)."""

    def __init__(self, directory: str | os.PathLike, model: Any, processor: Any, batch_size: int = 32):
        settings = {**_text_settings(processor), "pooling": model.config.text_pooling}
        fingerprint = tower_fingerprint(model, "text_body", settings)
        super().__init__(directory, model, processor, "text_pooled", fingerprint, batch_size)

    def _compute(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        batch = self.processor(text=list(items))
        _, pooled = self.model.get_text_pooled(batch["input_ids"], batch["attention_mask"])
        return [{"pooled": p} for p in pooled]

    def __call__(self, items: Sequence[str]) -> torch.Tensor:
        return torch.stack([t["pooled"] for t in self.get(items)])


class TextPrefixCache(_ModelCache):
    """What the frozen lower layers of the text tower make of each report (`SpeechCTClipModel.get_text_prefix`,
    float16, trimmed to the report's tokens): a teacher whose top text layers train runs only those."""

    def __init__(self, directory: str | os.PathLike, model: Any, processor: Any, batch_size: int = 32):
        settings = {**_text_settings(processor), "boundary": model.text_prefix_layer}
        fingerprint = tower_fingerprint(model, "text_body", settings)
        super().__init__(directory, model, processor, "text_prefix", fingerprint, batch_size)

    def _compute(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        batch = self.processor(text=list(items))
        prefix = self.model.get_text_prefix(batch["input_ids"], batch["attention_mask"])
        lengths = prefix.attention_mask.sum(dim=1)
        return [{"hidden_states": h[: int(n)].half()} for h, n in zip(prefix.hidden_states, lengths, strict=True)]

    def __call__(self, items: Sequence[str]) -> list[torch.Tensor]:
        """Each report's `(tokens, hidden)` float16 prefix (`collate_text_prefixes` batches them)."""
        return [t["hidden_states"] for t in self.get(items)]


def collate_text_prefixes(states: Sequence[torch.Tensor]):
    """Per-report cached text prefixes `(tokens, hidden)` → one `TextPrefix`, right-padded to the longest."""
    from ..towers import TextPrefix

    tokens = max(h.shape[0] for h in states)
    hidden = torch.stack([torch.nn.functional.pad(h, (0, 0, 0, tokens - h.shape[0])) for h in states]).float()
    mask = torch.zeros(len(states), tokens, dtype=torch.bool)
    for i, h in enumerate(states):
        mask[i, : h.shape[0]] = True
    return TextPrefix(hidden_states=hidden, attention_mask=mask)


class SpeechPrefixCache(_ModelCache):
    """What the frozen lower layers of the speech tower make of each recording (`SpeechCTClipModel.get_speech_prefix`,
    stored in float16): training then runs only the trainable top layers, pooling and projection."""

    content = "file"

    def __init__(self, directory: str | os.PathLike, model: Any, processor: Any, batch_size: int = 8):
        extractor = {k: v for k, v in processor.feature_extractor.to_dict().items() if k != "auto_map"}
        cfg = model.config
        settings = {
            "extractor": extractor,
            "boundary": model.speech_prefix_layer,
            "window": [cfg.speech_window_seconds, cfg.speech_window_overlap_seconds],
        }
        fingerprint = tower_fingerprint(model, "speech_body", settings)
        super().__init__(directory, model, processor, "speech_prefix", fingerprint, batch_size)

    def _compute(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        batch = self.processor(audio=list(items))
        prefix = self.model.get_speech_prefix(batch["speech_values"], batch.get("speech_attention_mask"))
        out = []
        for i in range(len(items)):
            rows = prefix.owner == i
            mask = prefix.frame_mask[rows]
            frames = int(mask.sum(dim=1).max())  # drop the batch's padding beyond this recording's longest window
            out.append({"hidden_states": prefix.hidden_states[rows, :frames].half(), "frame_mask": mask[:, :frames]})
        return out

    def __call__(self, items: Sequence[str]):
        """One `SpeechPrefix` for the items (windows of all items, padded to the longest)."""
        from ..modeling_speechct_clip import SpeechPrefix

        return collate_prefixes(self.get(items), SpeechPrefix)


def collate_prefixes(entries: list[dict[str, torch.Tensor]], prefix_class: Any):
    """Per-recording cached prefixes → one batch: windows stacked, frames padded, `owner` = position in `entries`."""
    frames = max(e["hidden_states"].shape[1] for e in entries)
    hidden, masks, owner = [], [], []
    for i, e in enumerate(entries):
        pad = frames - e["hidden_states"].shape[1]
        hidden.append(torch.nn.functional.pad(e["hidden_states"], (0, 0, 0, pad)))
        masks.append(torch.nn.functional.pad(e["frame_mask"].bool(), (0, pad), value=False))
        owner.append(torch.full((e["hidden_states"].shape[0],), i, dtype=torch.long))
    return prefix_class(hidden_states=torch.cat(hidden).float(), frame_mask=torch.cat(masks), owner=torch.cat(owner))


class SpeechLayersCache(_ModelCache):
    """Every hidden layer of a frozen speech tower for each recording (`SpeechClipModel.encode_speech_layers`,
    float16, trimmed to the recording's frames): SpeechCLIP's learnt layer weights then train without the tower."""

    content = "file"

    def __init__(self, directory: str | os.PathLike, model: Any, processor: Any, batch_size: int = 16):
        extractor = {k: v for k, v in processor.feature_extractor.to_dict().items() if k != "auto_map"}
        fingerprint = tower_fingerprint(model, "speech_body", {"extractor": extractor, "layers": "all"})
        super().__init__(directory, model, processor, "speech_layers", fingerprint, batch_size)

    def _compute(self, items: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        batch = self.processor(audio=list(items))
        layers, frames = self.model.encode_speech_layers(batch["speech_values"], batch.get("speech_attention_mask"))
        return [{"layers": layers[i, :, : int(frames[i].sum())].half()} for i in range(len(items))]

    def __call__(self, items: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """`(speech_layers (batch, layers, frames, hidden), speech_frame_mask (batch, frames))`, padded to the
        longest recording."""
        entries = [e["layers"] for e in self.get(items)]
        frames = max(e.shape[1] for e in entries)
        layers = torch.stack([torch.nn.functional.pad(e, (0, 0, 0, frames - e.shape[1])) for e in entries]).float()
        lengths = torch.tensor([e.shape[1] for e in entries])
        return layers, torch.arange(frames)[None, :] < lengths[:, None]
