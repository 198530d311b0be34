"""The demo's AcuLa tab: upload an auscultation recording, see the report phrases and reports it sits closest to in
the shared space, and what linear probes on the tower read from it.

Loaded once per page: a saved AcuLa model (with its processor) and one split of an AcuLa manifest folder. The split's
reports give the gallery — each distinct sentence and each distinct full report, embedded by the frozen teacher and
the text head — and its recordings' tower embeddings train one linear probe per manifest task (the paper's
evaluation read-out: what a linear layer on the tower knows, not the head). A request embeds the upload once: the
head output is ranked against the gallery by cosine, the tower output goes through the probes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.auscultation.manifest import ProbeTask
from ..evaluation.acula_eval import recording_features, report_embeddings, tower_embeddings
from ..evaluation.acula_probe import task_labels

PHRASE_COLUMNS = ["rank", "phrase", "cosine"]
REPORT_COLUMNS = ["rank", "report", "cosine"]
PROBE_COLUMNS = ["task", "positive class", "P(positive)", "C", "train recordings"]
C_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
DEFAULT_C = 1.0  # scikit-learn's default: used when the valid split cannot rank the grid
MAX_ITER = 1000
Rows = list[list[Any]]


@dataclass(frozen=True)
class Probe:
    """One task's fitted read-out: standardise (train statistics) then logistic regression with the chosen C."""

    task: ProbeTask
    pipeline: Pipeline
    c: float
    num_train: int

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """P(task.positive) for each row of `embeddings` (tower outputs)."""
        return self.pipeline.predict_proba(np.asarray(embeddings, dtype=np.float64))[:, 1]


def _fit(x: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter)).fit(x, y)


def fit_probes(train_x: np.ndarray, train_y: np.ndarray, tasks: Sequence[ProbeTask], valid_x: np.ndarray | None = None,
               valid_y: np.ndarray | None = None, c_grid: Sequence[float] = C_GRID, default_c: float = DEFAULT_C,
               max_iter: int = MAX_ITER) -> tuple[list[Probe], dict[str, str]]:  # fmt: skip
    """One probe per task on the train rows where its label is known (`train_y[:, j]` not NaN). C is the grid's best
    valid AUROC (ties → the smaller C) when the task's known valid rows hold both classes, else `default_c`. A task
    whose known train rows hold one class cannot be fitted: `(probes, {task name: why it was skipped})`."""
    train_x, train_y = np.asarray(train_x, dtype=np.float64), np.asarray(train_y, dtype=np.float64)
    if train_y.shape != (len(train_x), len(tasks)):
        raise ValueError(f"train_y: expected shape {(len(train_x), len(tasks))}, got {train_y.shape}.")
    probes, skipped = [], {}
    for j, task in enumerate(tasks):
        known = ~np.isnan(train_y[:, j])
        x, y = train_x[known], train_y[known, j].astype(int)
        if len(np.unique(y)) < 2:
            skipped[task.name] = f"{int(known.sum())} train recording(s) with a label, one class only"
            continue
        vx = vy = None
        if valid_x is not None and valid_y is not None and len(valid_x):
            valid_known = ~np.isnan(np.asarray(valid_y, dtype=np.float64)[:, j])
            vx, vy = np.asarray(valid_x, dtype=np.float64)[valid_known], np.asarray(valid_y)[valid_known, j]
        if vy is not None and len(np.unique(vy)) == 2:
            best = None
            for c in sorted(c_grid):
                fitted = _fit(x, y, c, max_iter)
                auroc = roc_auc_score(vy, fitted.predict_proba(vx)[:, 1])
                if best is None or auroc > best[0]:
                    best = (auroc, c, fitted)
            _, c, pipeline = best
        else:
            c, pipeline = default_c, _fit(x, y, default_c, max_iter)
        probes.append(Probe(task, pipeline, float(c), int(known.sum())))
    return probes, skipped


def report_sentences(reports: Sequence[str]) -> list[str]:
    """The distinct sentences of `reports` in first-seen order, split on ". ", each ending with one full stop (the
    last sentence of a report keeps its own, the others get theirs back) so that equal sentences compare equal."""
    sentences = (s.strip() for report in reports for s in report.split(". "))
    return list(dict.fromkeys(s if s.endswith(".") else s + "." for s in sentences if s.strip(". ")))


class SoundSearchBackend:
    """Model, processor, gallery embeddings and probes, loaded once; `search` serves one recording."""

    def __init__(self, model_dir: str | os.PathLike, data_dir: str | os.PathLike, split: str = "train",
                 valid_split: str | None = "valid", c_grid: Sequence[float] = C_GRID,
                 batch_size: int = 32):  # fmt: skip
        from ..data.auscultation.manifest import read_manifest, read_tasks
        from ..data.auscultation.reports import reports_for
        from ..modeling_acula import AcuLaModel
        from ..processing_acula import AcuLaProcessor

        self.model = AcuLaModel.from_pretrained(model_dir).eval()
        self.processor = AcuLaProcessor.from_pretrained(model_dir)
        self.batch_size = batch_size
        root = Path(data_dir)
        self.tasks, excluded = read_tasks(root)
        recordings = read_manifest(root, split)
        if not recordings:
            raise ValueError(f"SoundSearchBackend: {root} has no {split!r} recording.")
        reports = reports_for(root, recordings, excluded)  # leak-checked: no excluded value reaches the gallery
        self.reports = list(dict.fromkeys(reports))
        self.phrases = report_sentences(reports)
        self.phrase_embeds = self._embed_text(self.phrases)
        self.report_embeds = self._embed_text(self.reports)
        valid = read_manifest(root, valid_split) if valid_split else []
        self.probes, self.skipped = fit_probes(
            self._embed_audio([str(r.path) for r in recordings]), task_labels(recordings, self.tasks), self.tasks,
            self._embed_audio([str(r.path) for r in valid]) if valid else None,
            task_labels(valid, self.tasks) if valid else None, c_grid=c_grid,
        )  # fmt: skip

    @torch.no_grad()
    def _embed_text(self, texts: list[str]) -> np.ndarray:
        """Unit text-head outputs (float64) of the teacher's embeddings of `texts`."""
        teacher = report_embeddings(self.model, self.processor, texts, self.batch_size)
        return _unit(self.model.get_text_features(teacher_embeds=teacher).pooler_output.double().numpy())

    def _features(self, paths: list[str]) -> torch.Tensor:
        """Log-mels as training and evaluation compute them (float16), so probes and queries see the same input."""
        return recording_features(self.processor.feature_extractor, paths, self.batch_size).float()

    def _embed_audio(self, paths: list[str]) -> np.ndarray:
        """Tower embeddings (float64): what the probes read."""
        return tower_embeddings(self.model, self._features(paths), self.batch_size)

    @torch.no_grad()
    def search(self, audio_path: str | None, top_k: int = 5) -> tuple[Rows, Rows, Rows]:
        """`(phrase rows, report rows, probe rows)` for one recording: `[rank, text, cosine]` best first, and
        `[task, positive class, P(positive), C, train recordings]` per fitted task. Unusable audio: the processor's
        ValueError."""
        if not audio_path:
            raise ValueError("Upload an auscultation recording (a .wav or .flac file) first.")
        out = self.model.get_audio_features(self._features([audio_path]))
        query = _unit(out.pooler_output.double().numpy())[0]
        tower = out.last_hidden_state.double().numpy()
        phrases = _ranked(self.phrases, self.phrase_embeds @ query, top_k)
        reports = _ranked(self.reports, self.report_embeds @ query, top_k)
        probes = [[p.task.name, p.task.positive, round(float(p.probability(tower)[0]), 4), p.c, p.num_train]
                  for p in self.probes]  # fmt: skip
        return phrases, reports, probes


def _ranked(texts: list[str], scores: np.ndarray, top_k: int) -> Rows:
    order = np.argsort(-scores, kind="stable")[: min(top_k, len(texts))]
    return [[n + 1, texts[i], round(float(scores[i]), 4)] for n, i in enumerate(order)]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def add_sound_search_tab(backend: SoundSearchBackend) -> None:
    """The tab's widgets inside the caller's `gr.Blocks` / `gr.Tabs` context."""
    import gradio as gr

    def run(audio_file):
        try:
            return backend.search(audio_file)
        except (ValueError, FileNotFoundError) as err:
            # The processor names a file by its path: show the upload's name, not the server's temporary folder.
            message = str(err).replace(audio_file, Path(audio_file).name) if audio_file else str(err)
            raise gr.Error(message) from err

    skipped = "".join(f"\n- *{name}*: not probed ({why})" for name, why in backend.skipped.items())
    with gr.Tab("Auscultation (AcuLa)", elem_id="sounds-tab"):
        gr.Markdown(f"Upload a lung, heart or cough recording (at least 0.5 s; 8 s are read). It is ranked against "
                    f"{len(backend.phrases)} report phrases and {len(backend.reports)} reports by the audio head, "
                    f"and {len(backend.probes)} linear probes read its tower embedding. Each probe learnt from the "
                    "recordings whose label is known (wheeze from lung sounds, murmur from heart sounds, …): on "
                    f"another kind of sound its reading means little.{skipped}")  # fmt: skip
        audio = gr.Audio(label="Auscultation recording", sources=["upload"], type="filepath", elem_id="sound-audio")
        button = gr.Button("Search", variant="primary", elem_id="sound-search")
        with gr.Row():
            phrases = gr.Dataframe(headers=PHRASE_COLUMNS, label="Closest report phrases", elem_id="sound-phrases")
            reports = gr.Dataframe(headers=REPORT_COLUMNS, label="Closest reports", elem_id="sound-reports")
        probes = gr.Dataframe(headers=PROBE_COLUMNS, label="Linear probes (tower embedding)", elem_id="sound-probes")
        button.click(run, inputs=[audio], outputs=[phrases, reports, probes])


__all__ = ["Probe", "SoundSearchBackend", "add_sound_search_tab", "fit_probes", "report_sentences"]
