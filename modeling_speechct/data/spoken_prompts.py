"""Spoken zero-shot prompts: each "{label} is present." / "… not present." pair, synthesised in several voices.

The Hub bundle's `zero_shot.speech_prompt_embeddings` encodes recordings from anywhere (a radiologist's own, or
these); synthesising them needs the TTS engines, so it lives with the data factory, not in the remote code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .tts import plan_speech, synthesize_all


def synthesize_prompts(
    prompts: list[tuple[str, str]],
    folder: str | os.PathLike,
    num_voices: int = 4,
    backends: Sequence[str] = ("espeak", "flite"),
    seed: int = 0,
    workers: int = 2,
) -> list[list[list[Path]]]:
    """Speak every prompt in `num_voices` renditions (voices spread evenly over `backends`), cached in `folder`;
    returns paths indexed `[label][side][voice]`."""
    folder = Path(folder)
    sides = ("present", "absent")
    paths = [
        [[folder / f"{i:03d}_{sides[side]}_{v}.wav" for v in range(num_voices)] for side in (0, 1)]
        for i in range(len(prompts))
    ]
    jobs = [(prompts[i][s], paths[i][s][v]) for i in range(len(prompts)) for s in (0, 1) for v in range(num_voices)]
    todo = [(text, path) for text, path in jobs if not path.is_file()]
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
        plan = plan_speech(jobs, list(backends), seed)  # planned over all jobs, so cached files keep their voices
        synthesize_all([job for job in plan if not job.path.is_file()], workers=workers, progress=False)
    return paths
