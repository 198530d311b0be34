"""Zero-shot classification with prompt pairs, written or spoken (CT-CLIP's protocol, made voice-native).

For each label the prompts "{label} is present." / "{label} is not present." are embedded; a CT embedding's
probability of the finding is the softmax over its two scaled cosine similarities (CT-CLIP's `zero_shot.py`).
A side of a pair may also be an ensemble of sentences (CLIP's prompt ensembling, e.g. sentences that state and
rule out the finding in the reports' own words): its embedding is the mean of the sentences' unit embeddings.
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


Prompt = str | Sequence[str]  # one sentence, or an ensemble of sentences


def prompt_sentences(prompt: Prompt) -> list[str]:
    """A prompt's sentences: `[prompt]` for one sentence, the ensemble's sentences otherwise."""
    sentences = [prompt] if isinstance(prompt, str) else list(prompt)
    if not sentences or not all(isinstance(t, str) and t.strip() for t in sentences):
        raise ValueError(f"a prompt is a sentence or a non-empty list of sentences, got {prompt!r}")
    return sentences


@torch.no_grad()
def text_prompt_embeddings(
    model: Any, processor: Any, prompts: Sequence[tuple[Prompt, Prompt]], batch_size: int = 64
) -> tuple[torch.Tensor, ...]:
    """(present, not present) prompt embeddings through the text tower, `(labels, dim)` each: a sentence's unit
    embedding, or the mean of an ensemble's unit embeddings."""
    model.eval()
    out = []
    for side in (0, 1):
        groups = [prompt_sentences(pair[side]) for pair in prompts]
        flat = [t for group in groups for t in group]
        embeds = []
        for start in range(0, len(flat), batch_size):
            batch = processor(text=flat[start : start + batch_size]).to(model.device)
            embeds.append(model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output)
        out.append(_group_means(torch.cat(embeds), [len(g) for g in groups]))
    return tuple(out)


@torch.no_grad()
def speech_prompt_embeddings(
    model: Any, processor: Any, paths: list[list[list[Any]]], batch_size: int = 16
) -> tuple[torch.Tensor, ...]:
    """(present, not present) prompt embeddings through the speech tower: each prompt's recordings (voices, or
    the sentences of an ensemble) are encoded and their L2-normalised embeddings averaged (the prompt ensemble CLIP
    averages over templates).

    `paths[label][side]` lists a prompt's recordings, each a wav path or a `(waveform, sampling_rate)` pair (spoken
    prompts recorded or synthesised elsewhere); prompts may have different numbers of recordings."""
    model.eval()
    sides = [side for label in paths for side in label]
    if len(sides) != 2 * len(paths) or not all(sides):
        raise ValueError("paths[label] must hold two non-empty lists of recordings (present, not present)")
    flat = [_recording(p) for side in sides for p in side]
    embeds = []
    for start in range(0, len(flat), batch_size):
        chunk = flat[start : start + batch_size]
        batch = processor(audio=[audio for audio, _ in chunk], sampling_rate=[rate for _, rate in chunk])
        batch = batch.to(model.device)
        features = model.get_speech_features(batch["speech_values"], batch.get("speech_attention_mask"))
        embeds.append(features.pooler_output)
    per = _group_means(torch.cat(embeds), [len(side) for side in sides]).view(len(paths), 2, -1)
    return per[:, 0], per[:, 1]


def _group_means(embeds: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Mean of the unit embeddings of consecutive groups of `sizes` rows: one prompt (ensemble) each."""
    unit = F.normalize(embeds.float(), dim=-1)
    owner = torch.repeat_interleave(torch.tensor(list(sizes), device=unit.device))
    sums = unit.new_zeros(len(sizes), unit.shape[-1]).index_add(0, owner, unit)
    return sums / torch.tensor(list(sizes), device=unit.device, dtype=sums.dtype)[:, None]


def _recording(item: Any) -> tuple[Any, int | None]:
    """A wav path → (path, None) (the file's rate is read with it); a `(waveform, rate)` pair as it is."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item), None
    audio, rate = item
    return audio, rate
