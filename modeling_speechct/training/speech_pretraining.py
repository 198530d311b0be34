"""What a pretraining run of the package's CTC speech tower needs beyond the loop: its command line and its batching.

`train/pretrain_speech.py` runs the loop; `train/ship_speech_tower.py` re-reads a run's commands with the same
parser (so a shipped card states the run's own defaults) and counts its batches per epoch with the same batching.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def speech_pretraining_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The arguments of `train/pretrain_speech.py`."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/speech_tower"))
    parser.add_argument("--data_dir", type=Path, default=Path("data/speech_pretrain"))
    parser.add_argument("--num_sentences", type=int, default=12000)
    parser.add_argument("--eval_sentences", type=int, default=200)
    parser.add_argument("--max_minutes", type=float, default=40.0)
    parser.add_argument("--max_steps", type=int, default=6000)
    parser.add_argument("--batch_seconds", type=float, default=96.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup_steps", type=int, default=300)
    parser.add_argument("--eval_every", type=int, default=250)
    parser.add_argument("--save_every", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    return parser


def batches(durations: np.ndarray, batch_seconds: float, rng: np.random.Generator) -> list[list[int]]:
    """Shuffle, sort within windows of 50 by duration (little padding), cut at `batch_seconds` of padded audio."""
    order = rng.permutation(len(durations))
    order = np.concatenate(
        [sorted(chunk, key=lambda i: durations[i]) for chunk in np.array_split(order, max(1, len(order) // 50))]
    )
    out, current = [], []
    for index in order:
        if current and (len(current) + 1) * max(durations[[*current, index]]) > batch_seconds:
            out.append(current)
            current = []
        current.append(int(index))
    if current:
        out.append(current)
    return [out[i] for i in rng.permutation(len(out))]
