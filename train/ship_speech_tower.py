"""Ship a pretrained speech tower into the package: weights, processor, metrics, training arguments and a model card.

    python train/ship_speech_tower.py --run outputs/speech_tower \\
        --command "python train/pretrain_speech.py --max_minutes 40" [--command "... --resume ..."] \\
        [--wall_minutes 118] [--hardware "2 CPU cores (...)"] [--dest modeling_speechct/pretrained/speech-ctc-small]

Reads `<run>/final/` (model, processor, metrics.json) and `<run>/train_log.jsonl`. Only the model and processor
files are copied (never optimizer or scheduler state); the weights must be safetensors of at most 20 MB. Give one
`--command` per launch of `train/pretrain_speech.py` (a resumed run has several); the last one's arguments describe
the data and optimisation. Without `--wall_minutes` the training time is estimated from the log's throughput and the
run's cached clip durations (training steps only: speech synthesis and evaluation are not counted).

The destination is assembled in a temporary sibling folder, loaded once as a check, and only then put in place of
the old one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from modeling_speechct.files.provenance import sha256_file, this_machine
from modeling_speechct.hub.publish import staged_folder
from modeling_speechct.training.speech_pretraining import batches, speech_pretraining_parser
from modeling_speechct.training.speech_tower import (
    MAX_SHIPPED_MB,
    SHIPPED_SPEECH_TOWER,
    load_speech_tower,
    write_speech_tower_card,
)

MODEL_FILES = ("config.json", "model.safetensors", "generation_config.json")
PROCESSOR_FILES = (
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
)
RUN_FILES = ("metrics.json",)
FRESH_EVAL_FILE = "fresh_eval.json"  # train/eval_speech_tower.py's scores of these weights on fresh sentences


def training_arguments(command: str) -> argparse.Namespace:
    """The arguments `train/pretrain_speech.py` parses from `command` (its own parser, so its own defaults)."""
    tokens = shlex.split(command)
    script = next(
        (
            i
            for i, token in enumerate(tokens)
            if Path(token).name == "pretrain_speech.py" or token.endswith(".pretrain_speech")
        ),
        None,
    )
    if script is None:
        raise ValueError(f"not a train/pretrain_speech.py command: {command!r}")
    return speech_pretraining_parser().parse_args(tokens[script + 1 :])


def read_train_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def estimate_wall_minutes(records: list[dict], args: argparse.Namespace) -> float:
    """Minutes of training steps from the log: each record covers the steps since the previous one at
    `audio_s_per_s`; a step's audio is the run's total clip duration over its batches per epoch (the same
    duration-bucketed batching, from the cached clips in `--data_dir`)."""
    clips = sorted((Path(args.data_dir) / "train").glob("*.wav"))[: args.num_sentences]
    if len(clips) < args.num_sentences:
        raise FileNotFoundError(
            f"{args.data_dir}/train holds {len(clips)} of the run's {args.num_sentences} clips: give --wall_minutes"
        )
    durations = np.array([sf.info(str(clip)).duration for clip in clips])
    per_epoch = len(batches(durations, args.batch_seconds, np.random.default_rng(args.seed)))
    audio_per_step = float(durations.sum()) / per_epoch
    seconds, previous = 0.0, 0
    for record in records:
        step = record["step"]
        if step <= previous:  # a resumed launch: it restarted from the last checkpoint below this step
            previous = (step - 1) // args.save_every * args.save_every
        seconds += (step - previous) * audio_per_step / record["audio_s_per_s"]
        previous = step
    return seconds / 60


def ship(
    run: Path,
    commands: list[str],
    dest: Path = SHIPPED_SPEECH_TOWER,
    wall_minutes: float | None = None,
    hardware: str | None = None,
    fresh_eval: Path | None = None,
) -> Path:
    final = run / "final"
    weights = final / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: the run must end with safetensors weights in final/")
    if weights.stat().st_size > MAX_SHIPPED_MB * 1e6:
        raise ValueError(
            f"{weights} is {weights.stat().st_size / 1e6:.1f} MB: more than the {MAX_SHIPPED_MB:g} MB limit"
        )
    metrics = json.loads((final / "metrics.json").read_text())
    fresh = json.loads(fresh_eval.read_text()) if fresh_eval is not None else None
    if fresh is not None and fresh.get("weights_sha256") != sha256_file(weights):
        raise ValueError(f"{fresh_eval} scores other weights than {weights} (weights_sha256 differs)")
    log_path = run / "train_log.jsonl"
    records = read_train_log(log_path) if log_path.is_file() else []
    args = training_arguments(commands[-1])
    note = None
    if wall_minutes is None:
        if not records:
            raise FileNotFoundError(f"{log_path} is missing: give --wall_minutes")
        wall_minutes = estimate_wall_minutes(records, args)
        note = "training steps only, estimated from the throughput in train_log.jsonl"
    training_args = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}

    with staged_folder(dest) as staging:
        for name in (*MODEL_FILES, *PROCESSOR_FILES, *RUN_FILES):
            if (final / name).is_file():
                shutil.copyfile(final / name, staging / name)
        skipped = sorted(p.name for p in final.iterdir() if not (staging / p.name).exists())
        if skipped:
            print(f"not shipped: {', '.join(skipped)}")
        (staging / "training_args.json").write_text(json.dumps(training_args, indent=1))
        if fresh is not None:
            (staging / FRESH_EVAL_FILE).write_text(json.dumps(fresh, indent=1))
        write_speech_tower_card(
            staging,
            metrics,
            commands,
            wall_minutes,
            hardware or this_machine(),
            records,
            training_args=training_args,
            wall_time_note=note,
            fresh_eval=fresh,
        )
        total = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        if total > MAX_SHIPPED_MB * 1e6:
            raise ValueError(f"the shipped folder would be {total / 1e6:.1f} MB: more than {MAX_SHIPPED_MB:g} MB")
        load_speech_tower(staging)  # it must load before it replaces anything
    cer = metrics["seen_voices"]["cer"]
    print(f"shipped {run} → {dest} ({total / 1e6:.1f} MB, {wall_minutes:.0f} min, seen-voice CER {cer:.3f})")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("outputs/speech_tower"), help="pretrain_speech's output_dir")
    parser.add_argument(
        "--command", action="append", required=True, help="the command that produced the run (once per launch)"
    )
    parser.add_argument("--dest", type=Path, default=SHIPPED_SPEECH_TOWER)
    parser.add_argument("--wall_minutes", type=float, default=None, help="default: estimated from train_log.jsonl")
    parser.add_argument("--hardware", default=None, help="default: this machine's CPU cores and GPU")
    parser.add_argument(
        "--fresh_eval", type=Path, default=None, help="train/eval_speech_tower.py --output of these weights"
    )
    args = parser.parse_args()
    try:
        ship(args.run, args.command, args.dest, args.wall_minutes, args.hardware, args.fresh_eval)
    except (FileNotFoundError, ValueError) as err:
        parser.exit(1, f"ship_speech_tower: {err}\n")


if __name__ == "__main__":
    main()
