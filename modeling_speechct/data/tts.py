"""Speaking a batch of reports: `SpeechJob` (one report, its wav and engine settings), the seeded voice plan
`plan_speech`, and the resumable threaded runner `synthesize_all`. The engines themselves — backends, voices, text
normalisation (`speakable`), held-out engines — live in `tts_engines`; this module only decides who says what and
runs it.

`synthesize_all` skips every job whose wav is already there: the engines write atomically, so a wav that exists is
complete, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .tts_engines import PITCH_RANGE, RATE_RANGE, _check_wav, get_backend

__all__ = [
    "SpeechJob",
    "plan_speech",
    "synthesize_all",
]


def _wav_seconds(path: Path) -> float | None:
    """Duration of a finished wav, or None when the file is missing or not a usable wav."""
    try:
        return _check_wav(path, str(path))
    except (RuntimeError, OSError):
        return None


@dataclass(frozen=True)
class SpeechJob:
    """One report to speak: text, target wav, and the engine settings chosen for it."""

    text: str
    path: Path
    backend: str
    voice: str
    rate: float
    pitch: float


def plan_speech(
    texts_and_paths: list[tuple[str, Path]],
    backends: list[str],
    seed: int,
    voices: dict[str, list[str]] | None = None,
) -> list[SpeechJob]:
    """Choose backend, voice, rate and pitch for each `(text, path)`, deterministically from `seed`.

    Backends are spread evenly (shuffled round robin), voices evenly within each backend (all of its voices, or
    the subset `voices[backend]`, e.g. to hold some voices out for evaluation); rate and pitch are
    uniform in `RATE_RANGE` and `PITCH_RANGE` (rounded to 3 decimals). Only names are needed: planning works where
    an engine is not installed (`synthesize_all` checks that).
    """
    if not backends:
        raise ValueError("plan_speech needs at least one TTS backend name.")
    engines = [get_backend(name) for name in backends]
    names = [engine.name for engine in engines]
    rng = np.random.default_rng(seed)
    n = len(texts_and_paths)
    which = rng.permutation(np.resize(np.arange(len(engines)), n)) if n else np.zeros(0, dtype=int)
    voice_index = np.zeros(n, dtype=int)
    choices = []
    for name, engine in zip(backends, engines, strict=True):
        chosen = list((voices or {}).get(name, engine.voices()))
        for voice in chosen:
            engine.check_voice(voice)
        if not chosen:
            raise ValueError(f"plan_speech: no voices left for backend {name!r}.")
        choices.append(chosen)
    for b in range(len(engines)):
        slots = np.flatnonzero(which == b)
        voice_index[slots] = rng.permutation(np.resize(np.arange(len(choices[b])), len(slots)))
    rates = np.round(rng.uniform(*RATE_RANGE, size=n), 3)
    pitches = np.round(rng.uniform(*PITCH_RANGE, size=n), 3)
    jobs = []
    for i, (text, path) in enumerate(texts_and_paths):
        jobs.append(
            SpeechJob(
                text=text,
                path=Path(path),
                backend=names[int(which[i])],
                voice=choices[int(which[i])][int(voice_index[i])],
                rate=float(rates[i]),
                pitch=float(pitches[i]),
            )
        )
    return jobs


def _speak(job: SpeechJob) -> float:
    get_backend(job.backend).synthesize(job.text, job.path, job.voice, job.rate, job.pitch)
    return _check_wav(job.path, str(job.path))


def synthesize_all(jobs: list[SpeechJob], workers: int = 2, progress: bool = True, desc: str = "speech") -> dict:
    """Run the jobs in a thread pool around the engines; skip jobs whose wav is already there.

    A wav that exists and reads as a non-empty mono 16-bit wav counts as done (writes are atomic, so an interrupted
    run leaves only hidden temporaries, which do not count and are removed once their wav is written). The first
    failure cancels the jobs not yet started and is raised; finished wavs stay, so a rerun resumes.

    Returns `{"synthesized", "skipped", "seconds_of_audio", "wall_seconds"}`; `seconds_of_audio` is the audio
    written by this call.
    """
    start = time.perf_counter()
    todo: list[SpeechJob] = []
    skipped = 0
    claimed: set[Path] = set()
    for job in jobs:
        path = Path(job.path)
        if path in claimed or _wav_seconds(path) is not None:
            skipped += 1
            continue
        claimed.add(path)
        todo.append(job)
    for name in sorted({job.backend for job in todo}):
        get_backend(name).require()

    from tqdm.auto import tqdm

    seconds = 0.0
    with (
        ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool,
        tqdm(total=len(todo), desc=desc, unit="wav", disable=not progress) as bar,
    ):
        futures = [pool.submit(_speak, job) for job in todo]
        try:
            for future in as_completed(futures):
                seconds += future.result()
                bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return {
        "synthesized": len(todo),
        "skipped": skipped,
        "seconds_of_audio": seconds,
        "wall_seconds": time.perf_counter() - start,
    }
