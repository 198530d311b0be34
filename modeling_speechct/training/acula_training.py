"""What `train/train_acula.py` needs beyond the loop: the model from its towers, rows whose frozen work is done
once (each recording's log-mel, each report's teacher embedding), a collator, and validation audio ↔ report recall.

The teacher is frozen, so its embedding of every report is computed once before training; a step runs the audio
tower, the heads and (for the spectrogram MAE) its masked reconstruction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from ..configuration_acula import objective_problems
from ..configuration_spectrogram_mae import SpectrogramMAEConfig
from ..data.auscultation.adapters import TEMPLATES
from ..data.auscultation.manifest import REPORTS, read_manifest, read_tasks
from ..data.auscultation.reports import reports_for, template_generator, write_reports
from ..evaluation.acula_eval import (
    audio_report_scores,
    folder_feature_extractor,
    recording_features,
    report_embeddings,
)
from ..feature_extraction_acula import AcuLaFeatureExtractor
from ..files.provenance import require_pinned_weights
from ..modeling_acula import AcuLaModel
from ..processing_acula import AcuLaProcessor
from .arguments import CommonArguments
from .teacher import text_tower_path

__all__ = [
    "AcuLaArguments",
    "acula_rows",
    "audio_report_scores",
    "build_acula",
    "collate_acula",
    "ensure_reports",
    "shipped_mae",
]

# The package's pre-trained MAE (train/ship_acula_mae.py): the "before" tower of the embedded main job.
SHIPPED_MAE = Path(__file__).parents[1] / "pretrained" / "spectrogram-mae"
MAE_RECIPE_FILE = "spectrogram_mae_recipe.json"
# The embedded benchmark's tower: 16 × 32 patches (100 a recording) keep a CPU step near 0.45 s at batch 24.
BENCHMARK_MAE = {"hidden_size": 192, "num_hidden_layers": 4, "num_attention_heads": 3, "intermediate_size": 768,
                 "patch_size": (16, 32), "decoder_hidden_size": 128, "decoder_num_layers": 2,
                 "decoder_num_heads": 4}  # fmt: skip


@dataclass
class AcuLaArguments(CommonArguments):
    data_dir: str = field(default="data/auscultation", metadata={"help": "An AcuLa manifest folder."})
    audio_tower: str = field(default="shipped", metadata={
        "help": "'shipped' (the package's pre-trained spectrogram MAE), 'new' (a fresh benchmark-sized MAE) or any "
                "audio-tower folder / id (an MAE folder, AST, Whisper, HuBERT, …)."})  # fmt: skip
    text_tower: str = field(default="minilm", metadata={"help": "'minilm' (offline) or any AutoModel folder / id."})
    align_loss: str = "cka"
    align_weight: float = 1.0
    ssl_weight: float = 1.0
    text_layer: int = -1

    def problems(self) -> list[str]:
        return super().problems() + objective_problems(self.align_loss, self.align_weight, self.ssl_weight)


def shipped_mae(folder: str | Path = SHIPPED_MAE) -> Path:
    """The shipped pre-trained spectrogram MAE's folder, after checking its weights against the pinned sha256."""
    return require_pinned_weights(folder, MAE_RECIPE_FILE)


def build_acula(args: AcuLaArguments) -> tuple[AcuLaModel, AcuLaProcessor]:
    text = text_tower_path(args.text_tower)
    tower = str(shipped_mae()) if args.audio_tower == "shipped" else args.audio_tower
    audio = SpectrogramMAEConfig(**BENCHMARK_MAE) if tower == "new" else tower
    config = {"align_loss": args.align_loss, "align_weight": args.align_weight, "ssl_weight": args.ssl_weight,
              "text_layer": args.text_layer}  # fmt: skip
    model = AcuLaModel.from_tower_pretrained(audio=audio, text=text, config_kwargs=config)
    extractor = AcuLaFeatureExtractor() if tower == "new" else folder_feature_extractor(tower)
    return model, AcuLaProcessor(extractor, AutoTokenizer.from_pretrained(text))


def ensure_reports(root: Path) -> None:
    """Write the reports once from each dataset's template (leak-checked) when the folder has none."""
    if (root / REPORTS).is_file():
        return
    recordings = read_manifest(root)
    _, excluded = read_tasks(root)
    datasets = {r.dataset for r in recordings}
    unknown = datasets - set(TEMPLATES)
    if unknown:
        raise ValueError(f"{root}: no report template for {sorted(unknown)}; write the reports with "
                         "data.auscultation.reports.write_reports and a generator of your choice.")  # fmt: skip
    for name in sorted(datasets):
        rows = [r for r in recordings if r.dataset == name]
        write_reports(root, rows, template_generator(TEMPLATES[name]), excluded)


@torch.no_grad()
def acula_rows(model: AcuLaModel, processor: AcuLaProcessor, root: Path, split: str, batch_size: int = 64,
               progress: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """One row per recording of `split`: its log-mel (float16), its report's teacher embedding, its labels."""
    from tqdm import tqdm

    recordings = read_manifest(root, split)
    _, excluded = read_tasks(root)
    reports = reports_for(root, recordings, excluded)
    with tqdm(total=len(recordings), desc=f"{split} log-mels", unit="rec", disable=not progress) as bar:
        audio = recording_features(processor.feature_extractor, [str(r.path) for r in recordings], batch_size, bar)
    teacher = report_embeddings(model, processor, reports, batch_size)
    return [{"input_features": a, "teacher_embeds": t, "labels": r.labels, "recording": str(r.path), "report": s}
            for a, t, r, s in zip(audio, teacher, recordings, reports, strict=True)]  # fmt: skip


def collate_acula(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {"input_features": torch.stack([r["input_features"] for r in rows]).float(),
            "teacher_embeds": torch.stack([r["teacher_embeds"] for r in rows])}  # fmt: skip
