"""Training rows for both stages: what frozen towers produce is read from the caches, the rest from disk.

A row is a dict. Teacher rows hold `ct_values` (cached preprocessed volume), `volume` (a path, preprocessed in
the DataLoader workers: CT-RATE's full grid does not fit a cache) or `ct_embeds` (a locked CT tower), and
`text_pooled` (locked text tower), `text_prefix` (only its top layers train) or `text`.
Student rows hold `speech_prefix` (the frozen lower speech layers' output), `ct_embeds` and `text_embeds`.
`FeatureCollator` turns a list of rows into the keyword arguments of `SpeechCTClipModel.forward`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data import ctrate
from ..data.speech_manifest import check_training_speech
from ..modeling_speechct_clip import SpeechPrefix
from .embedding_cache import (
    CTVolumeCache,
    EmbeddingCache,
    SpeechPrefixCache,
    TextPooledCache,
    TextPrefixCache,
    collate_prefixes,
    collate_text_prefixes,
)

STACKED = ("ct_values", "ct_embeds", "text_embeds", "text_pooled", "labels")


class RowDataset(Dataset):
    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


def augment_ct(values: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """Training-time CT augmentation on preprocessed volumes `(batch, 1, D, H, W)` in [-1, 1]: intensity scale
    (±10%) and offset (±0.05, i.e. ±50 HU), Gaussian noise (σ 0.02), a shift of up to `max_shift` voxels per axis
    filled with air. No flips: reports name sides, so left and right must stay where they are. Without it a tower
    trained on a few hundred volumes memorises each volume's noise instead of learning its findings."""
    b = values.shape[0]
    scale = 1 + 0.1 * (2 * torch.rand(b, 1, 1, 1, 1) - 1)
    offset = 0.05 * (2 * torch.rand(b, 1, 1, 1, 1) - 1)
    out = values * scale + offset + 0.02 * torch.randn_like(values)
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 3)).tolist()
    padded = torch.nn.functional.pad(out, (max_shift,) * 6, value=-1.0)
    d, h, w = values.shape[-3:]
    m = max_shift
    moved = [
        padded[i, :, m + z : m + z + d, m + y : m + y + h, m + x : m + x + w] for i, (z, y, x) in enumerate(shifts)
    ]
    return torch.stack(moved).clamp(-1.0, 1.0)


@dataclass
class FeatureCollator:
    """Rows → model inputs. `processor` is needed only for rows that carry raw `volume` paths or `text`;
    `augment` applies `augment_ct` to the volumes (teacher training)."""

    processor: Any = None
    augment: bool = False

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {k: torch.stack([r[k] for r in rows]) for k in STACKED if k in rows[0]}
        if "speech_prefix" in rows[0]:
            batch["speech_prefix"] = collate_prefixes([r["speech_prefix"] for r in rows], SpeechPrefix)
        if "text_prefix" in rows[0]:
            batch["text_prefix"] = collate_text_prefixes([r["text_prefix"] for r in rows])
        if "volume" in rows[0]:
            batch["ct_values"] = self.processor(ct=[r["volume"] for r in rows], ct_kwargs={"is_hu": True})["ct_values"]
        if "text" in rows[0]:
            tokens = self.processor(text=[r["text"] for r in rows])
            batch.update(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        if self.augment and "ct_values" in batch:
            batch["ct_values"] = augment_ct(batch["ct_values"].float())
        batch.pop("labels", None)  # evaluation reads labels from the rows, the loss does not use them
        return batch


def teacher_rows(
    model: Any, processor: Any, rows: list[dict[str, Any]], cache_dir: str | os.PathLike, cache_ct_values: bool
) -> list[dict[str, Any]]:
    """Rows for CT ↔ text training; frozen work is cached: a locked CT tower's embeddings (LiT's second stage),
    the locked text tower's pooled output when only its projection trains, or the output of its frozen lower
    layers when only its top `text_trainable_layers` train."""
    volumes, texts = [r["volume"] for r in rows], [r["findings"] for r in rows]
    volume_cache = CTVolumeCache(cache_dir, processor) if cache_ct_values else None
    cfg = model.config
    if cfg.freeze_ct:
        ct = {"ct_embeds": EmbeddingCache(cache_dir, model, processor, "ct", volume_cache=volume_cache)(volumes)}
    elif volume_cache is not None:
        ct = {"ct_values": volume_cache(volumes).half()}
    else:
        ct = {"volume": volumes}
    if cfg.freeze_text:
        text = {"text_pooled": TextPooledCache(cache_dir, model, processor)(texts)}
    elif cfg.text_trainable_layers is not None:
        text = {"text_prefix": TextPrefixCache(cache_dir, model, processor)(texts)}
    else:
        text = {"text": texts}
    return [
        {"labels": torch.tensor(row["labels"]), **{k: v[i] for k, v in (ct | text).items()}}
        for i, row in enumerate(rows)
    ]


class _FloatRows(RowDataset):
    """Cached float16 tensors are widened per row, so memory holds the half-size copies."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        return {k: v.float() if isinstance(v, torch.Tensor) and v.dtype == torch.float16 else v for k, v in row.items()}


def teacher_dataset(rows: list[dict[str, Any]]) -> RowDataset:
    return _FloatRows(rows)


def student_rows(
    model: Any,
    processor: Any,
    rows: list[dict[str, Any]],
    cache_dir: str | os.PathLike,
    batch_size: int = 8,
    cache_ct_values: bool = False,
    all_voices: bool = False,
) -> list[dict[str, Any]]:
    """Rows for the speech student: speech prefix + the frozen teacher's CT and text embeddings, all cached.
    The speech is checked against its `speech_manifest.csv` first (when there is one): a wav spoken by a held-out
    engine is refused, naming its manifest row, before anything is computed.

    `all_voices`: every recording of each report (`ctrate.speech_voices`: the primary wav and its `_voice<k>`
    siblings) is encoded, and the row keeps them all under `speech_prefix_voices` for `VoiceSampledRows`."""
    voices = [ctrate.speech_voices(r["speech"]) if all_voices else [r["speech"]] for r in rows]
    wavs = [wav for row_voices in voices for wav in row_voices]
    check_training_speech(wavs, "training_data.student_rows")
    volumes = CTVolumeCache(cache_dir, processor) if cache_ct_values else None
    ct = EmbeddingCache(cache_dir, model, processor, "ct", batch_size, volumes)([r["volume"] for r in rows])
    text = EmbeddingCache(cache_dir, model, processor, "text", batch_size)([r["findings"] for r in rows])
    prefixes = iter(SpeechPrefixCache(cache_dir, model, processor, batch_size).get(wavs))
    out = []
    for i, r in enumerate(rows):
        row_prefixes = [next(prefixes) for _ in voices[i]]
        item = {"speech_prefix": row_prefixes[0], "ct_embeds": ct[i], "text_embeds": text[i]}
        item["labels"] = torch.tensor(r["labels"])
        if all_voices:
            item["speech_prefix_voices"] = row_prefixes
        out.append(item)
    return out


class VoiceSampledRows(RowDataset):
    """Student rows whose speech is one of the report's recordings (`speech_prefix_voices`), drawn anew each epoch.

    One row per report, so a batch never holds two recordings of one report (they would be each other's false
    negatives in the contrastive loss), and over the epochs the student hears every voice. The draw is a function of
    (seed, epoch, row) alone, like `training_loop.EpochSampler`'s order: a resumed run, or a loader worker, draws
    what the uninterrupted run drew."""

    def __init__(self, rows: list[dict[str, Any]], seed: int = 0):
        super().__init__(rows)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = dict(self.rows[index])
        voices = row.pop("speech_prefix_voices", None)
        if voices and len(voices) > 1:
            pick = np.random.default_rng([self.seed, self.epoch, index]).integers(len(voices))
            row["speech_prefix"] = voices[int(pick)]
        return row
