"""What a training run leaves behind: the final model + processor (safetensors), its results and a model card,
written atomically (a temporary folder renamed into place), and uploaded to the Hub when asked."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..evaluation.metrics import rank_summary, recall_at_k, retrieval_ranks
from ..hub.publish import RESULTS_FILE, add_pipelines
from .arguments import CommonArguments


def retrieval_scores(queries: torch.Tensor, gallery: torch.Tensor, prefix: str = "", ks=(1, 5, 10)) -> dict:
    """Paired retrieval (query i ↔ gallery i): Recall@k and mean rank, for monitoring during training."""
    ranks = retrieval_ranks(queries.detach().float().cpu().numpy(), gallery.detach().float().cpu().numpy())
    scores = {f"{prefix}{k}": v for k, v in recall_at_k(ranks, ks).items()}
    scores[f"{prefix}mean_rank"] = rank_summary(ranks)["mean_rank"]
    return scores


def write_card(folder: Path, args: CommonArguments, results: dict[str, Any], title: str) -> None:
    """The run's model card (`model_card.write_model_card`, the one card of the full model): metadata, how to load,
    intended use, the recipe from the run's arguments, the last monitoring step's metrics, limitations, citations.
    Evaluation figures (`model-index`) are added when the folder is published with the eval JSON
    (`model_cards/publish.py`)."""
    from ..hub.model_card import write_model_card

    write_model_card(
        folder,
        title=title,
        repo_id=args.hub_model_id,
        run_args=asdict(args),
        training_metrics=results,
        results=(),
    )


def save_model_folder(accelerator: Any, model: torch.nn.Module, processor: Any, args: CommonArguments,
                      results: dict, model_to_save: torch.nn.Module | None = None,
                      finish: Callable[[Path], None] | None = None) -> Path:  # fmt: skip
    """`save_pretrained` of the unwrapped model (its full state under FSDP / ZeRO-3) and the processor into
    `<output_dir>/final` with the run's results, `finish(folder)` adding what a system adds (card, pipelines), then
    renamed into place; pushed to the Hub with `--push_to_hub`. Any system's trainer ends with it."""
    final = Path(args.output_dir) / "final"
    tmp = Path(args.output_dir) / ".tmp-final"
    accelerator.wait_for_everyone()
    unwrapped = model_to_save if model_to_save is not None else accelerator.unwrap_model(model)
    state = accelerator.get_state_dict(model) if model_to_save is None else None  # complete under FSDP / ZeRO-3
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        unwrapped.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        processor.save_pretrained(tmp)
        (tmp / RESULTS_FILE).write_text(json.dumps(results, indent=1))
        if finish is not None:
            finish(tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        if args.push_to_hub:
            push(final, args.hub_model_id)
    accelerator.wait_for_everyone()
    return final


def save_final(accelerator: Any, model: torch.nn.Module, processor: Any, args: CommonArguments, results: dict,
               title: str = "SpeechCT-CLIP", model_to_save: torch.nn.Module | None = None) -> Path:  # fmt: skip
    """A SpeechCT-CLIP folder: `save_model_folder` plus the pipelines and the model card."""

    def finish(folder: Path) -> None:
        add_pipelines(folder)  # `pipeline("zero-shot-ct-classification", model=final, trust_remote_code=True)`
        write_card(folder, args, results, title)

    return save_model_folder(accelerator, model, processor, args, results, model_to_save, finish)


def push(folder: Path, repo_id: str) -> None:
    """Upload the folder in one commit (all files or none); offline or without a token, a clear error."""
    from ..hub.publish import PublishError, upload

    try:
        upload(folder, repo_id, commit_message="speechct-clip training run")
    except PublishError as err:  # offline, no token, network, auth: the run's outputs stay on disk either way
        raise RuntimeError(
            f"push_to_hub: {err} The model is saved locally in {folder}; publish it later with "
            "`python model_cards/publish.py --model <folder> --repo_id <id>`."
        ) from err
