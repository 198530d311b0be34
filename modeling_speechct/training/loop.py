"""One Accelerate training loop for both stages: seeded epochs, gradient accumulation, atomic resumable checkpoints,
TensorBoard logging, periodic evaluation. The same code runs on one CPU, one GPU or many (DDP / FSDP / DeepSpeed
through `accelerate config`).

Resuming is exact: a checkpoint holds model, optimiser, scheduler and RNG states (`accelerator.save_state`) plus
the optimiser step; the epoch's sample order is a function of (seed, epoch) alone, and the batches already done
in the interrupted epoch are skipped, so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm
from transformers import get_scheduler

from .arguments import RUN_FILE, CommonArguments, run_record

CHECKPOINTS = "checkpoints"


class EpochSampler(Sampler[int]):
    """A permutation of the dataset that depends only on (seed, epoch): restartable anywhere."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist())

    def __len__(self) -> int:
        return self.size


def make_accelerator(args: CommonArguments, log: bool = True) -> Accelerator:
    """The run's Accelerator; also seeds torch, since every script calls this before it builds the model, so the
    freshly initialised modules (heads, new towers) are the same in every run of the same arguments."""
    torch.manual_seed(args.seed)
    return Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with="tensorboard" if log else None,
        project_dir=args.output_dir,
    )


def checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (a write in progress lives under a `.tmp-` name and is never listed)."""
    folder = Path(output_dir) / CHECKPOINTS
    return sorted(p for p in folder.glob("step_*") if (p / "progress.json").is_file())


def resolve_resume(args: CommonArguments) -> Path | None:
    if args.resume_from_checkpoint in (None, "", "none"):
        return None
    if args.resume_from_checkpoint == "latest":
        found = checkpoints(args.output_dir)
        return found[-1] if found else None
    path = Path(args.resume_from_checkpoint)
    if not (path / "progress.json").is_file():
        raise ValueError(f"resume_from_checkpoint={str(path)!r} is not a complete checkpoint (no progress.json).")
    return path


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, step: int, keep: int) -> Path:
    """`save_state` into a temporary folder, then one rename: a crash mid-write never replaces a good checkpoint."""
    folder = Path(output_dir) / CHECKPOINTS
    final, tmp = folder / f"step_{step:08d}", folder / f".tmp-step_{step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "progress.json").write_text(json.dumps({"step": step}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def fit(
    model: torch.nn.Module,
    dataset: Dataset,
    collate_fn: Callable[[list[Any]], dict[str, Any]],
    args: CommonArguments,
    accelerator: Accelerator,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train `model` (its trainable parameters) on `dataset`; returns the last logged values.

    `evaluate(model)` runs on every process (use `accelerator.gather_for_metrics` inside) every `eval_every` steps
    or at each epoch's end. `stop_after` ends the run after that many steps as if killed (tests of resuming)."""
    if len(dataset) < args.per_device_batch_size * accelerator.num_processes:
        raise ValueError(
            f"per_device_batch_size={args.per_device_batch_size} × {accelerator.num_processes} process(es) is larger "
            f"than the training set ({len(dataset)} rows): lower the batch size."
        )
    if accelerator.is_main_process:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / RUN_FILE).write_text(json.dumps(run_record(args), indent=1, default=str))
    torch.manual_seed(args.seed)
    sampler = EpochSampler(len(dataset), args.seed)
    loader = DataLoader(
        dataset,
        batch_size=args.per_device_batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        drop_last=True,  # every step sees the same number of negatives
        num_workers=args.num_workers,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameter: check the freeze settings.")
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    steps_per_epoch = max(1, len(loader) // args.gradient_accumulation_steps)
    total = args.max_steps if args.max_steps > 0 else math.ceil(args.num_epochs * steps_per_epoch)
    # Stepped once per optimiser step by us (not prepared: accelerate would step it once per process).
    scheduler = get_scheduler(
        args.lr_scheduler, optimizer, num_warmup_steps=args.warmup_steps, num_training_steps=total
    )
    accelerator.register_for_checkpointing(scheduler)

    step = 0
    resume = resolve_resume(args)
    if resume is not None:
        accelerator.load_state(str(resume))
        step = json.loads((resume / "progress.json").read_text())["step"]
        accelerator.print(f"resumed from {resume} at step {step}")
    config = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in asdict(args).items()}
    accelerator.init_trackers("runs", config=config)
    progress = tqdm(total=total, initial=step, disable=not accelerator.is_local_main_process, desc="train")
    last: dict[str, Any] = {}
    model.train()
    while step < total:
        epoch = step // steps_per_epoch
        # Through the prepared loader: it re-applies its own epoch counter to the sampler at every iteration (and
        # hands it to the loader `skip_first_batches` makes), so setting only the sampler would be overridden.
        loader.set_epoch(epoch)
        sampler.set_epoch(epoch)
        if hasattr(dataset, "set_epoch"):  # rows that vary by epoch (VoiceSampledRows), as a function of it alone
            dataset.set_epoch(epoch)
        done_in_epoch = (step - epoch * steps_per_epoch) * args.gradient_accumulation_steps
        batches = accelerator.skip_first_batches(loader, done_in_epoch) if done_in_epoch else loader
        for batch in batches:
            with accelerator.accumulate(model):
                output = model(**batch, return_loss=True)
                accelerator.backward(output.loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            progress.update(1)
            if step % args.log_every == 0 or step == total:
                last = {
                    "loss": accelerator.reduce(output.loss.detach(), "mean").item(),
                    "lr": scheduler.get_last_lr()[0],
                }
                for name in ("contrastive_loss", "distill_loss"):
                    value = getattr(output, name, None)
                    if value is not None:
                        last[name] = accelerator.reduce(value.detach(), "mean").item()
                accelerator.log(last, step=step)
                progress.set_postfix(loss=f"{last['loss']:.4f}")
            end_of_epoch = step % steps_per_epoch == 0
            if evaluate is not None and ((args.eval_every and step % args.eval_every == 0) or
                                         (not args.eval_every and end_of_epoch) or step == total):  # fmt: skip
                scores = evaluate(model)
                model.train()
                accelerator.log({f"eval/{k}": v for k, v in scores.items()}, step=step)
                last.update({f"eval_{k}": v for k, v in scores.items()})
            if args.save_every and (step % args.save_every == 0 or step == total):
                save_checkpoint(accelerator, args.output_dir, step, args.keep_checkpoints)
            if step >= total or (stop_after is not None and step >= stop_after):
                break
        if stop_after is not None and step >= stop_after:
            break
    progress.close()
    accelerator.end_training()
    last["step"] = step
    return last
