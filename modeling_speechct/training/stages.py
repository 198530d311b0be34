"""The main jobs' stages: each a repository script run as a user would, in its own process, and skipped when its
final folder is already there (an interrupted stage resumes from its own checkpoints)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def run_script(script: Path, argv: list[str]) -> None:
    """`python <script> argv` in a child process (its own imports, its own memory); the hub's per-file bars are
    switched off there, so the stage shows its own bar only."""
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    subprocess.run([sys.executable, str(script), *argv], check=True, env=env)


def shown(script: Path) -> str:
    try:
        return str(Path(script).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def stage(name: str, final: Path, script: Path, argv: list[str]) -> float:
    """Run one stage unless `final/config.json` exists; prints the command; returns its wall time (0 if reused).
    A failing stage ends the job with the command that resumes it."""
    if (final / "config.json").is_file():
        print(f"[{name}] reusing {final}")
        return 0.0
    print(f"[{name}] python {shown(script)} {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    try:
        run_script(script, argv)
    except subprocess.CalledProcessError as error:  # the child printed its own traceback above
        raise SystemExit(f"[{name}] failed (exit {error.returncode}); the same command resumes it") from None
    return time.perf_counter() - start
