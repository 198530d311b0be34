"""What `eval/acula.py` runs: towers → frozen embeddings of an AcuLa manifest's splits → per-task linear probes
(`acula_probe`), paired comparisons between towers, and audio ↔ report recall for aligned models.

A model is an `AcuLaModel` folder (the probe reads its tower, `get_audio_embeddings`) or a bare audio-tower folder
such as a `SpectrogramMAEModel` (its `pooler_output`): the "before" row of the paper is the tower before alignment.
Log-mels are computed once per split and feature-extractor setting and shared by every model that uses them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModel

from ..audio_io import load_recordings
from ..data.auscultation.manifest import SPLITS, read_manifest, read_tasks
from ..data.auscultation.reports import reports_for
from ..feature_extraction_acula import AcuLaFeatureExtractor
from ..modeling_acula import AcuLaModel
from ..modeling_spectrogram_mae import SpectrogramMAEModel
from ..processing_acula import AcuLaProcessor
from .acula_probe import GROUPS, compare_probes, probe_tasks, task_labels
from .linear_probe import DEFAULT_C_GRID, DEFAULT_SEEDS, DEFAULT_TRAIN_FRACTION
from .speechclip_metrics import speech_image_retrieval

__all__ = [
    "acula_markdown",
    "audio_report_scores",
    "evaluate_acula",
    "folder_feature_extractor",
    "load_audio_model",
    "recording_features",
    "report_embeddings",
    "tower_embeddings",
]


def folder_feature_extractor(path: str | Path) -> AcuLaFeatureExtractor:
    """The extractor a folder was saved with (`processor_config.json` of an AcuLa folder, `preprocessor_config.json`
    of a bare tower), else AcuLa's default (a fresh tower, a Hub id)."""
    path = Path(path)
    if (path / "processor_config.json").is_file():
        return AcuLaProcessor.from_pretrained(str(path)).feature_extractor
    if (path / "preprocessor_config.json").is_file():
        return AcuLaFeatureExtractor.from_pretrained(str(path))
    return AcuLaFeatureExtractor()


def load_audio_model(path: str | Path) -> tuple[torch.nn.Module, AcuLaFeatureExtractor]:
    """(model in eval mode, its feature extractor) of an AcuLa folder or an audio-tower folder."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json)")
    model = AutoModel.from_pretrained(path).eval()
    if not isinstance(model, (AcuLaModel, SpectrogramMAEModel)):
        raise ValueError(f"{path}: a {type(model).__name__}; give an AcuLa folder or a spectrogram MAE folder "
                         "(wrap other towers with AcuLaModel.from_tower_pretrained)")  # fmt: skip
    return model, folder_feature_extractor(path)


def recording_features(extractor: AcuLaFeatureExtractor, paths: Sequence[str], batch_size: int = 64,
                       progress: Any = None) -> torch.Tensor:  # fmt: skip
    """float16 log-mels `(N, mel, frames)` of the recordings at `paths` (float16 halves the cache; the towers'
    inputs are log-mels of a few dB resolution, far above float16's)."""
    out = []
    for start in range(0, len(paths), batch_size):
        waves = load_recordings(list(paths[start : start + batch_size]), None, int(extractor.sampling_rate))
        batch = extractor(waves, sampling_rate=extractor.sampling_rate, return_tensors="pt")
        out.append(batch["input_features"].half())
        if progress is not None:
            progress.update(len(waves))
    return torch.cat(out)


@torch.no_grad()
def tower_embeddings(model: torch.nn.Module, features: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """What the probe reads: `get_audio_embeddings` of an AcuLa model, `pooler_output` of a bare tower."""
    out = []
    for start in range(0, len(features), batch_size):
        x = features[start : start + batch_size].float()
        pooled = model.get_audio_embeddings(x) if isinstance(model, AcuLaModel) else model(x).pooler_output
        out.append(pooled.double().numpy())
    return np.concatenate(out)


@torch.no_grad()
def audio_report_scores(model: AcuLaModel, rows: list[dict[str, Any]], batch_size: int = 64) -> dict[str, float]:
    """Audio → report and report → audio R@k over the rows' *distinct* reports (recordings of one patient and site
    share a report: they are one gallery item, as the five captions of an image are). Rows hold `input_features`,
    `teacher_embeds` and `report`."""
    model.eval()
    audio, text = [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        features = torch.stack([r["input_features"] for r in chunk]).float()
        out = model(features, teacher_embeds=torch.stack([r["teacher_embeds"] for r in chunk]), return_loss=False)
        audio.append(torch.nn.functional.normalize(out.audio_embeds, dim=-1))
        text.append(torch.nn.functional.normalize(out.text_embeds, dim=-1))
    index: dict[str, int] = {}
    ids = [index.setdefault(r["report"], len(index)) for r in rows]
    recall = speech_image_retrieval(torch.cat(audio).numpy(), torch.cat(text).numpy(), ids)
    names = {"speech_to_image": "audio_to_report", "image_to_speech": "report_to_audio"}
    return {f"{names[d]}_{k}": v for d, scores in recall.items() for k, v in scores.items()}


@torch.no_grad()
def report_embeddings(model: AcuLaModel, processor: AcuLaProcessor, reports: Sequence[str],
                      batch_size: int = 64) -> torch.Tensor:  # fmt: skip
    """The frozen teacher's embedding of each report `(N, width)`: the frozen work done once per run."""
    out = []
    for start in range(0, len(reports), batch_size):
        text = processor(text=list(reports[start : start + batch_size]))
        out.append(model.encode_reports(text["input_ids"], text["attention_mask"]))
    return torch.cat(out)


def _report_recall(model: AcuLaModel, features: torch.Tensor, reports: list[str], folder: str) -> dict[str, float]:
    teacher = report_embeddings(model, AcuLaProcessor.from_pretrained(folder), reports)
    rows = [{"input_features": f, "teacher_embeds": t, "report": r}
            for f, t, r in zip(features, teacher, reports, strict=True)]  # fmt: skip
    return audio_report_scores(model, rows)


def evaluate_acula(
    models: dict[str, str | Path],
    data_dir: str | Path,
    compare: Sequence[tuple[str, str]] = (),
    seeds: Sequence[int] = DEFAULT_SEEDS,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Probe every model on `data_dir`'s tasks, compare the `(a, b)` pairs (a − b, paired over seeds and a patient
    bootstrap of the test split), and give aligned models' test audio ↔ report R@k. Returns a JSON-able record
    (the probes' test scores left out)."""
    from tqdm import tqdm

    root = Path(data_dir)
    tasks, excluded = read_tasks(root)
    recordings = {split: read_manifest(root, split) for split in SPLITS}
    for split, rows in recordings.items():
        if not rows:
            raise ValueError(f"{root}: the {split} split is empty; the probe needs train, valid and test")
    unknown = sorted({name for pair in compare for name in pair} - set(models))
    if unknown:
        raise ValueError(f"compare names {unknown} are not among the models {sorted(models)}")
    labels = {split: task_labels(rows, tasks) for split, rows in recordings.items()}
    cache: dict[str, dict[str, torch.Tensor]] = {}
    record: dict[str, Any] = {"data_dir": str(root), "tasks": [t.name for t in tasks],
                              "depends_on": [t.depends_on for t in tasks], "models": {}, "comparisons": {},
                              "n": {s: len(r) for s, r in recordings.items()}}  # fmt: skip
    scores: dict[str, np.ndarray] = {}
    reports: list[str] = []  # the test reports, read when the first aligned model needs them
    for name, path in models.items():
        model, extractor = load_audio_model(path)
        key = extractor.to_json_string()
        if key not in cache:
            total = sum(len(r) for r in recordings.values())
            with tqdm(total=total, desc="log-mels", unit="rec", disable=not progress) as bar:
                cache[key] = {s: recording_features(extractor, [str(r.path) for r in rows], progress=bar)
                              for s, rows in recordings.items()}  # fmt: skip
        features = cache[key]
        with tqdm(total=1, desc=f"probe {name}", disable=not progress) as bar:
            embedded = {split: tower_embeddings(model, x) for split, x in features.items()}
            result = probe_tasks(embedded, labels, tasks, seeds, train_fraction, c_grid)
            bar.update()
        scores[name] = result.pop("scores")
        entry = {"path": str(path), "kind": type(model).__name__, "probe": result}
        if isinstance(model, AcuLaModel):
            reports = reports or reports_for(root, recordings["test"], excluded)
            entry["report_recall"] = _report_recall(model, features["test"], reports, str(path))
        record["models"][name] = entry
    patients = [r.patient for r in recordings["test"]]
    for a, b in compare:
        record["comparisons"][f"{a} − {b}"] = compare_probes(labels["test"], scores[a], scores[b], patients, tasks,
                                                            n_resamples=n_resamples, seed=seed)  # fmt: skip
    record["protocol"] = {"seeds": list(seeds), "train_fraction": train_fraction, "c_grid": list(c_grid),
                          "n_resamples": n_resamples, "bootstrap": "paired; a draw = one probe seed and test "
                          "patients resampled with replacement"}  # fmt: skip
    return json.loads(json.dumps(record, default=float))


def _cell(mean: float, std: float) -> str:
    return "–" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}"


def _interval(entry: dict[str, Any]) -> str:
    low, high = entry["ci95"]
    return f"{entry['difference']:+.3f} [{low:+.3f}, {high:+.3f}]"


def acula_markdown(record: dict[str, Any]) -> str:
    """Per-task AUROC (mean ± std over seeds) of every model, the group means, the paired differences and R@k."""
    names = list(record["models"])
    tasks, kinds = record["tasks"], record["depends_on"]
    lines = ["| task | depends on | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for task, kind in zip(tasks, kinds, strict=True):
        cells = [_cell(**{k: record["models"][n]["probe"]["per_task"][task][k] for k in ("mean", "std")})
                 for n in names]  # fmt: skip
        lines.append(f"| {task} | {kind} | " + " | ".join(cells) + " |")
    for group in GROUPS:
        cells = [_cell(**{k: record["models"][n]["probe"]["groups"][group][k] for k in ("mean", "std")})
                 for n in names]  # fmt: skip
        lines.append(f"| **mean, {group}** | | " + " | ".join(f"**{c}**" for c in cells) + " |")
    if record["comparisons"]:
        pairs = list(record["comparisons"])
        lines += ["", "| paired difference (AUROC) [95 % CI] | " + " | ".join(pairs) + " |",
                  "|---|" + "---|" * len(pairs)]  # fmt: skip
        for row in [*GROUPS, *tasks]:
            lines.append(f"| {row} | " + " | ".join(_interval(record["comparisons"][p][row]) for p in pairs) + " |")
    aligned = [n for n in names if "report_recall" in record["models"][n]]
    if aligned:
        keys = list(record["models"][aligned[0]]["report_recall"])
        lines += ["", "| test audio ↔ report (distinct reports) | " + " | ".join(keys) + " |",
                  "|---|" + "---|" * len(keys)]  # fmt: skip
        for n in aligned:
            lines.append(f"| {n} | " + " | ".join(f"{record['models'][n]['report_recall'][k]:.3f}" for k in keys)
                         + " |")  # fmt: skip
    p = record["protocol"]
    lines.append(f"\nProbe: frozen embeddings standardised on train, L2 logistic regression per task, C from "
                 f"{p['c_grid']} on validation, seeds {p['seeds']} (each a stratified {p['train_fraction']:g} of "
                 f"train). Intervals: {p['bootstrap']}, {p['n_resamples']} draws.")  # fmt: skip
    return "\n".join(lines) + "\n"
