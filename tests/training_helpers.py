"""A tiny student and its cached rows, rebuilt identically in every process (training tests, incl. 2-process DDP)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.training.arguments import DistillArguments
from modeling_speechct.training.loop import fit, make_accelerator
from modeling_speechct.training.rows import FeatureCollator, RowDataset, VoiceSampledRows
from modeling_speechct.training.tiny import tiny_speech_config, tiny_speechct_config

NUM_ROWS = 24


def tiny_student(seed: int = 0) -> SpeechCTClipModel:
    torch.manual_seed(seed)
    config = tiny_speechct_config(
        # No dropout: one process and two draw different masks, and the comparison is about the arithmetic.
        speech_config=tiny_speech_config(
            "wav2vec2", do_stable_layer_norm=True, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0
        ),
        speech_pooling="attention",
        speech_trainable_layers=1,
        distill_weight=0.5,
    )
    model = SpeechCTClipModel(config)
    for module in model.speech_pooler.modules():  # the attention pooler's dropout too
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        elif isinstance(module, torch.nn.MultiheadAttention):
            module.dropout = 0.0
    return model


def tiny_rows(model: SpeechCTClipModel, seed: int = 1, voices: bool = False) -> list[dict]:
    """Rows as `training_data.student_rows` makes them: cached prefix + teacher embeddings (random here); with
    `voices`, each row also holds two recordings (`speech_prefix_voices`: the prefix and a quieter copy)."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(NUM_ROWS):
        wave = torch.randn(1, 400 + 40 * (i % 7), generator=generator)
        prefix = model.get_speech_prefix(wave)
        rows.append(
            {
                "speech_prefix": {"hidden_states": prefix.hidden_states.half(), "frame_mask": prefix.frame_mask},
                "ct_embeds": torch.randn(model.config.projection_dim, generator=generator),
                "text_embeds": torch.randn(model.config.projection_dim, generator=generator),
            }
        )
        if voices:
            other = {**rows[-1]["speech_prefix"], "hidden_states": rows[-1]["speech_prefix"]["hidden_states"] * 0.5}
            rows[-1]["speech_prefix_voices"] = [rows[-1]["speech_prefix"], other]
    return rows


def tiny_args(output_dir: str | Path, **overrides) -> DistillArguments:
    values = dict(
        output_dir=str(output_dir),
        teacher=str(output_dir),
        per_device_batch_size=8,
        learning_rate=1e-2,
        lr_scheduler="constant",
        max_steps=1,
        save_every=0,
        log_every=1,
        seed=0,
    )
    return DistillArguments(**{**values, **overrides})


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def run(
    output_dir: str | Path, stop_after: int | None = None, voices: bool = False, **overrides
) -> tuple[SpeechCTClipModel, dict]:
    model = tiny_student()
    rows = tiny_rows(model, voices=voices)
    args = tiny_args(output_dir, **overrides)
    accelerator = make_accelerator(args, log=False)
    data = VoiceSampledRows(rows, args.seed) if voices else RowDataset(rows)
    result = fit(model, data, FeatureCollator(), args, accelerator, stop_after=stop_after)
    return accelerator.unwrap_model(model), result


def ddp_worker(rank: int, world: int, port: int, output_dir: str, result_file: str) -> None:
    """One process of a gloo DDP run (torch.multiprocessing.spawn): per-device batch 4, one step."""
    os.environ.update(  # what `accelerate launch --cpu --num_processes 2` sets
        ACCELERATE_USE_CPU="true",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    model, result = run(output_dir, per_device_batch_size=4)
    if rank == 0:
        torch.save({"state": trainable_state(model), "loss": result["loss"]}, result_file)
