"""Zero-shot classification with prompt pairs, written or spoken (CT-CLIP's protocol, made voice-native).

For each label the prompts "{label} is present." / "{label} is not present." are embedded; a CT embedding's
probability of the finding is the softmax over its two scaled cosine similarities (CT-CLIP's `zero_shot.py`).
Written prompts go through the text tower; spoken prompts are synthesised by the TTS engines in several voices,
encoded by the speech tower and averaged over voices, so a model that never reads text at inference is evaluated
on its own modality. The CT embedding is computed once per volume and the prompt embeddings once per model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

DEFAULT_TEMPLATES = ("{label} is present.", "{label} is not present.")


def prompt_pairs(labels: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES) -> list[tuple[str, str]]:
    if len(templates) != 2 or any("{label}" not in t for t in templates):
        raise ValueError(f"templates must be two strings with a {{label}} field, got {templates!r}")
    return [(templates[0].format(label=label), templates[1].format(label=label)) for label in labels]


def pair_probabilities(
    ct_embeds: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, logit_scale: float | torch.Tensor
) -> torch.Tensor:
    """P(present) `(volumes, labels)`: softmax over (present, not present) of `logit_scale · cos(CT, prompt)`."""
    ct = F.normalize(ct_embeds.float(), dim=-1)
    pos, neg = F.normalize(positive.float(), dim=-1), F.normalize(negative.float(), dim=-1)
    logits = torch.stack((ct @ pos.T, ct @ neg.T), dim=-1) * float(logit_scale)
    return logits.softmax(dim=-1)[..., 0]


@torch.no_grad()
def text_prompt_embeddings(model: Any, processor: Any, prompts: list[tuple[str, str]]) -> tuple[torch.Tensor, ...]:
    """(present, not present) prompt embeddings through the text tower, `(labels, dim)` each."""
    model.eval()
    out = []
    for side in (0, 1):
        batch = processor(text=[pair[side] for pair in prompts]).to(model.device)
        out.append(model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output)
    return tuple(out)


@torch.no_grad()
def speech_prompt_embeddings(
    model: Any, processor: Any, paths: list[list[list[Any]]], batch_size: int = 16
) -> tuple[torch.Tensor, ...]:
    """(present, not present) prompt embeddings through the speech tower: each prompt's voices are encoded, the
    L2-normalised embeddings averaged (the prompt ensemble CLIP averages over templates).

    `paths[label][side][voice]` is a wav path or a `(waveform, sampling_rate)` pair (spoken prompts recorded or
    synthesised elsewhere); every prompt has the same number of voices."""
    model.eval()
    flat = [_recording(p) for label in paths for side in label for p in side]
    embeds = []
    for start in range(0, len(flat), batch_size):
        chunk = flat[start : start + batch_size]
        batch = processor(audio=[audio for audio, _ in chunk], sampling_rate=[rate for _, rate in chunk])
        batch = batch.to(model.device)
        features = model.get_speech_features(batch["speech_values"], batch.get("speech_attention_mask"))
        embeds.append(features.pooler_output)
    voices = len(paths[0][0])
    per = F.normalize(torch.cat(embeds), dim=-1).view(len(paths), 2, voices, -1).mean(dim=2)
    return per[:, 0], per[:, 1]


def _recording(item: Any) -> tuple[Any, int | None]:
    """A wav path → (path, None) (the file's rate is read with it); a `(waveform, rate)` pair as it is."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item), None
    audio, rate = item
    return audio, rate
