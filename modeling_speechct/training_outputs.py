"""What a training run leaves behind: the final model + processor (safetensors), its results and a model card,
written atomically (a temporary folder renamed into place), and uploaded to the Hub when asked."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .metrics import rank_summary, recall_at_k, retrieval_ranks
from .training_args import CommonArguments

RESULTS_FILE = "eval_results.json"


def retrieval_scores(queries: torch.Tensor, gallery: torch.Tensor, prefix: str = "", ks=(1, 5, 10)) -> dict:
    """Paired retrieval (query i ↔ gallery i): Recall@k and mean rank, for monitoring during training."""
    ranks = retrieval_ranks(queries.detach().float().cpu().numpy(), gallery.detach().float().cpu().numpy())
    scores = {f"{prefix}{k}": v for k, v in recall_at_k(ranks, ks).items()}
    scores[f"{prefix}mean_rank"] = rank_summary(ranks)["mean_rank"]
    return scores


def write_card(folder: Path, args: CommonArguments, results: dict[str, Any], title: str) -> None:
    """A model card holding the run's results and the exact arguments."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(library_name="transformers", license="apache-2.0", tags=["speechct-clip", "ct", "speech"])
    rows = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in results.items())
    body = (
        f"---\n{data.to_yaml()}\n---\n\n# {title}\n\nTrained with speechct-clip "
        f"(`{type(args).__name__}`).\n\n## Results\n\n| metric | value |\n|---|---|\n{rows}\n\n"
        f"## Arguments\n\n```json\n{json.dumps(asdict(args), indent=1, default=str)}\n```\n"
    )
    ModelCard(body).save(folder / "README.md")


def save_final(accelerator: Any, model: torch.nn.Module, processor: Any, args: CommonArguments, results: dict,
               title: str = "SpeechCT-CLIP", model_to_save: torch.nn.Module | None = None) -> Path:  # fmt: skip
    """`save_pretrained` of the unwrapped model and the processor into `<output_dir>/final`, atomically."""
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
        write_card(tmp, args, results, title)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        if args.push_to_hub:
            push(final, args.hub_model_id)
    accelerator.wait_for_everyone()
    return final


def push(folder: Path, repo_id: str) -> None:
    """Upload the folder in one commit (all files or none); offline or without a token, a clear error."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="speechct-clip training run")
    except Exception as err:  # network, auth: the run's outputs stay on disk either way
        raise RuntimeError(
            f"push_to_hub: uploading {folder} to {repo_id!r} failed ({type(err).__name__}: {err}). The model is "
            "saved locally; log in (`hf auth login`) and upload it with `hf upload`."
        ) from err
