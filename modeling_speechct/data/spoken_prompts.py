"""Spoken zero-shot prompts: each "{label} is present." / "… not present." pair (or each sentence of a prompt
ensemble), synthesised in several voices.

The Hub bundle's `zero_shot.speech_prompt_embeddings` encodes recordings from anywhere (a radiologist's own, or
these); synthesising them needs the TTS engines, so it lives with the data factory, not in the remote code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from ..zero_shot import Prompt, prompt_sentences
from .tts import plan_speech, synthesize_all


def synthesize_prompts(
    prompts: Sequence[tuple[Prompt, Prompt]],
    folder: str | os.PathLike,
    num_voices: int = 4,
    backends: Sequence[str] = ("espeak", "flite"),
    seed: int = 0,
    workers: int = 2,
) -> list[list[list[Path]]]:
    """Speak every prompt, cached in `folder`; returns paths indexed `[label][side][recording]`. A one-sentence
    prompt is spoken in `num_voices` renditions (voices spread evenly over `backends`); an ensemble's sentences
    once each, in voices spread the same way (its file names carry a hash of the sentence, so another ensemble
    never reads a stale file)."""
    folder = Path(folder)
    sides = ("present", "absent")
    jobs: list[tuple[str, Path]] = []
    paths: list[list[list[Path]]] = []
    for i, pair in enumerate(prompts):
        paths.append([])
        for side in (0, 1):
            if isinstance(pair[side], str):
                texts = [(pair[side], folder / f"{i:03d}_{sides[side]}_{v}.wav") for v in range(num_voices)]
            else:
                texts = [(t, folder / f"{i:03d}_{sides[side]}_{_digest(t)}.wav") for t in prompt_sentences(pair[side])]
            jobs += texts
            paths[-1].append([path for _, path in texts])
    todo = [(text, path) for text, path in jobs if not path.is_file()]
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
        plan = plan_speech(jobs, list(backends), seed)  # planned over all jobs, so cached files keep their voices
        synthesize_all([job for job in plan if not job.path.is_file()], workers=workers, progress=False)
    return paths


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]
