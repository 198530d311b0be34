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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

TOWERS = ("ct", "text")


def _sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tower_fingerprint(model: Any, tower: str, settings: dict | None = None) -> str:
    """SHA-256 over the tower's and its projection's tensors (names, shapes, bytes) plus `settings` as JSON."""
    digest = hashlib.sha256(json.dumps(settings or {}, sort_keys=True, default=str).encode())
    modules = {"ct": ("ct_model", "ct_projection"), "text": ("text_model", "text_projection")}[tower]
    for prefix in modules:
        for name, tensor in sorted(getattr(model, prefix).state_dict().items()):
            digest.update(f"{prefix}.{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class EmbeddingCache:
    """Projected embeddings of one frozen tower (`"ct"` or `"text"`), computed on demand and kept on disk."""

    def __init__(self, directory: str | os.PathLike, model: Any, processor: Any, tower: str, batch_size: int = 8):
        if tower not in TOWERS:
            raise ValueError(f"tower {tower!r} is not one of {TOWERS}.")
        self.model, self.processor, self.tower, self.batch_size = model, processor, tower, batch_size
        if tower == "ct":  # the tensor depends on the preprocessing as much as on the weights
            settings = {k: v for k, v in processor.ct_feature_extractor.to_dict().items() if k != "auto_map"}
        else:
            settings = {"vocab": processor.tokenizer.get_vocab(), "max_text_length": processor.max_text_length}
        self.fingerprint = tower_fingerprint(model, tower, settings)
        self.directory = Path(directory) / f"{tower}-{self.fingerprint}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    def key(self, item: str) -> str:
        return _sha256_file(item) if self.tower == "ct" else hashlib.sha256(item.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    @torch.no_grad()
    def _compute(self, items: Sequence[str]) -> torch.Tensor:
        if self.tower == "ct":
            batch = self.processor(ct=list(items), ct_kwargs={"is_hu": True})
            return self.model.get_ct_features(batch["ct_values"]).pooler_output
        batch = self.processor(text=list(items))
        return self.model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output

    def __call__(self, items: Sequence[str]) -> torch.Tensor:
        """Embeddings `(len(items), projection_dim)` for volume paths (CT) or report texts (text)."""
        keys = [self.key(item) for item in items]
        found = {k: load_file(self._path(k))["embedding"] for k in set(keys) if self._path(k).is_file()}
        todo = [(k, item) for k, item in dict(zip(keys, items, strict=True)).items() if k not in found]
        missing = sum(k not in found for k in keys)
        self.hits, self.misses = self.hits + len(keys) - missing, self.misses + missing
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            embeddings = self._compute([item for _, item in chunk])
            for (key, _), embedding in zip(chunk, embeddings, strict=True):
                self._write(key, embedding)
                found[key] = embedding
        self.model.train(was_training)
        return torch.stack([found[k] for k in keys])

    def _write(self, key: str, embedding: torch.Tensor) -> None:
        with tempfile.NamedTemporaryFile(dir=self.directory, suffix=".tmp", delete=False) as tmp:
            pass
        save_file({"embedding": embedding.detach().cpu().contiguous()}, tmp.name)
        os.replace(tmp.name, self._path(key))
