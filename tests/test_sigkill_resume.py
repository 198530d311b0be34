"""A training process SIGKILLed between checkpoints, and again while writing one, resumes to the very weights of an
uninterrupted run (the in-process `stop_after` test cannot show that nothing else survives a real kill: no
`finally`, no flushed buffer, a checkpoint folder left half-written).

This file is also the child: `python tests/test_sigkill_resume.py OUTPUT_DIR {step,save} RESUME` trains the tiny
student of `training_helpers` and, at the chosen point, announces itself in a marker file and waits to be killed:
`step` at the forward pass of step 6 (step 5 done in memory, checkpoint 4 on disk), `save` inside checkpoint 6's
write (the state files written, not yet committed by `progress.json` and the rename).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from training_helpers import run, tiny_args, tiny_rows, tiny_student, trainable_state

from modeling_speechct.training.loop import CHECKPOINTS, checkpoints, fit, make_accelerator, resolve_resume
from modeling_speechct.training.rows import FeatureCollator, RowDataset

# 24 rows, batch 8: 3 steps per epoch, so the kills at steps 5-6 fall mid-epoch and resuming must skip batches.
COMMON = dict(max_steps=8, save_every=2, lr_scheduler="cosine", warmup_steps=1)
HANG_STEP = 6
MARKER = "killed_here.json"


def _announce_and_wait(output_dir: Path, where: str, step: int) -> None:
    """Tell the parent where we are (atomically: it polls) and block until it kills us."""
    tmp = output_dir / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"where": where, "step": step}))
    os.replace(tmp, output_dir / MARKER)
    time.sleep(600)  # never returns normally: the parent SIGKILLs us
    raise SystemExit("not killed")


def child(output_dir: Path, hang: str, resume: bool) -> None:
    """The same run as `training_helpers.run`, with a trap at step `HANG_STEP` that changes no number."""
    torch.set_num_threads(1)
    model = tiny_student()
    rows = tiny_rows(model)
    args = tiny_args(output_dir, resume_from_checkpoint="latest" if resume else None, **COMMON)
    accelerator = make_accelerator(args, log=False)
    if hang == "step":
        start = resolve_resume(args)
        done = json.loads((start / "progress.json").read_text())["step"] if start else 0
        calls = iter(range(done + 1, 10**6))  # one forward pass per optimiser step (no accumulation)

        def trap(module: torch.nn.Module, inputs: tuple) -> None:
            step = next(calls)
            if step == HANG_STEP:
                _announce_and_wait(output_dir, "step", step)

        model.register_forward_pre_hook(trap)
    else:
        save_state = accelerator.save_state

        def trapped_save(folder: str, **kwargs) -> None:
            save_state(folder, **kwargs)
            if Path(folder).name == f".tmp-step_{HANG_STEP:08d}":
                _announce_and_wait(output_dir, "save", HANG_STEP)

        accelerator.save_state = trapped_save
    fit(model, RowDataset(rows), FeatureCollator(), args, accelerator)
    raise SystemExit("the run finished without reaching its trap")


def _kill_at_trap(tmp_path: Path, output_dir: Path, hang: str, resume: bool) -> str:
    """Start a child, wait for its trap, SIGKILL it; returns its stdout."""
    log = tmp_path / f"{hang}.out"
    (output_dir / MARKER).unlink(missing_ok=True)  # the previous child's, before this one can be polled for
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, str(output_dir), hang, str(int(resume))], stdout=out, stderr=subprocess.STDOUT,
            cwd=Path(__file__).parent, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (output_dir / MARKER).is_file():
            assert proc.poll() is None, f"child exited early ({proc.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"child never reached its trap:\n{log.read_text()[-3000:]}"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads((output_dir / MARKER).read_text()) == {"where": hang, "step": HANG_STEP}
    return log.read_text()


def test_sigkilled_twice_and_resumed_run_reaches_the_uninterrupted_weights(tmp_path):
    output_dir = tmp_path / "killed"
    output_dir.mkdir()
    folder = output_dir / CHECKPOINTS

    # Kill 1: mid-run, step 5 done in memory only; checkpoint 4 is the latest on disk, nothing of step 6.
    _kill_at_trap(tmp_path, output_dir, "step", resume=False)
    assert [p.name for p in checkpoints(output_dir)] == ["step_00000002", "step_00000004"]
    assert sorted(p.name for p in folder.iterdir()) == ["step_00000002", "step_00000004"]

    # Kill 2: the restarted process resumes from 4 and dies while writing checkpoint 6.
    out = _kill_at_trap(tmp_path, output_dir, "save", resume=True)
    assert f"resumed from {folder / 'step_00000004'} at step 4" in out
    half = folder / f".tmp-step_{HANG_STEP:08d}"
    assert (half / "model.safetensors").is_file() and not (half / "progress.json").exists()
    assert not (folder / f"step_{HANG_STEP:08d}").exists()
    # The half-written folder is never taken for the latest checkpoint.
    assert [p.name for p in checkpoints(output_dir)] == ["step_00000002", "step_00000004"]
    latest = resolve_resume(tiny_args(output_dir, resume_from_checkpoint="latest"))
    assert latest == folder / "step_00000004"
    at_resume = load_file(latest / "model.safetensors")

    # Resume to the end and compare with one uninterrupted run of the same seed and steps.
    resumed, result = run(output_dir, resume_from_checkpoint="latest", **COMMON)
    straight, _ = run(tmp_path / "straight", **COMMON)
    assert result["step"] == COMMON["max_steps"]
    got, want = trainable_state(resumed), trainable_state(straight)
    assert got.keys() == want.keys() and want
    d = max((got[k] - want[k]).abs().max().item() for k in want)
    print(f"max |Δ| after SIGKILL + resume: {d:.3g}")
    assert d <= 1e-6
    # Agreeing is not trivial: the last four steps moved the weights well beyond that tolerance.
    assert want.keys() <= at_resume.keys()
    moved = max((want[k] - at_resume[k]).abs().max().item() for k in want)
    assert moved > 1e-3
    # The interrupted write was replaced by a committed checkpoint 6.
    assert [p.name for p in checkpoints(output_dir)] == ["step_00000006", "step_00000008"]
    assert not half.exists()


if __name__ == "__main__":
    child(Path(sys.argv[1]), sys.argv[2], bool(int(sys.argv[3])))
