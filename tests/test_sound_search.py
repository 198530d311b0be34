"""The demo's AcuLa tab (`hub.sound_search`): its rankings against an independent float64 cosine ranking from the saved
model's own head outputs, its gallery against the split's reports and excluded fields, its probes against scikit-learn
fitted here, unusable uploads refused by name, and the tab wired into `build_demo`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from tiny_folder import save_tiny_folder
from transformers import AutoTokenizer

from modeling_speechct import AcuLaModel, AcuLaProcessor
from modeling_speechct.configuration_spectrogram_mae import SpectrogramMAEConfig
from modeling_speechct.data.auscultation.benchmark import DIAGNOSES, AuscultationConfig, build_auscultation
from modeling_speechct.data.auscultation.manifest import ProbeTask, read_manifest, read_tasks
from modeling_speechct.data.auscultation.reports import read_reports
from modeling_speechct.feature_extraction_acula import AcuLaFeatureExtractor
from modeling_speechct.hub.demo import DemoBackend, build_demo
from modeling_speechct.hub.sound_search import SoundSearchBackend, fit_probes
from modeling_speechct.training.acula_training import BENCHMARK_MAE, ensure_reports
from modeling_speechct.training.teacher import text_tower_path


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, AcuLaModel, AcuLaProcessor, SoundSearchBackend]:
    """The 16-patient benchmark with its template reports, a fresh benchmark-sized AcuLa folder, its backend."""
    root = tmp_path_factory.mktemp("sounds")
    build_auscultation(AuscultationConfig(out=root / "data", num_patients=16, recordings_per_patient=2), progress=False)
    ensure_reports(root / "data")
    torch.manual_seed(0)
    text = text_tower_path("minilm")
    model = AcuLaModel.from_tower_pretrained(audio=SpectrogramMAEConfig(**BENCHMARK_MAE), text=text)
    processor = AcuLaProcessor(AcuLaFeatureExtractor(), AutoTokenizer.from_pretrained(text))
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    backend = SoundSearchBackend(root / "model", root / "data", split="train", batch_size=256)
    return root, model.eval(), processor, backend


def _unit(x: torch.Tensor) -> np.ndarray:
    x = x.detach().double().numpy()
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _upload(case) -> str:
    """A test-split recording: a real auscultation sound the gallery and probes never saw."""
    root = case[0]
    return str(read_manifest(root / "data", "test")[0].path)


def test_rankings_are_the_models_float64_cosine_rankings(case):
    _, model, processor, backend = case
    phrases, reports, probes = backend.search(_upload(case), top_k=5)
    with torch.no_grad():
        audio = _unit(model.get_audio_features(processor(audio=[_upload(case)])["input_features"]).pooler_output)[0]
        for shown, gallery in ((phrases, backend.phrases), (reports, backend.reports)):
            batch = processor(text=gallery)  # one batch, as the backend's batch_size=256 embeds it
            teacher = model.encode_reports(batch["input_ids"], batch["attention_mask"])
            cosine = _unit(model.get_text_features(teacher_embeds=teacher).pooler_output) @ audio
            want = np.argsort(-cosine, kind="stable")[:5]
            assert [row[0] for row in shown] == [1, 2, 3, 4, 5]
            assert [row[1] for row in shown] == [gallery[i] for i in want]
            np.testing.assert_allclose([row[2] for row in shown], cosine[want], rtol=0, atol=1e-4)
            assert np.ptp(cosine) > 1e-3  # the heads separate the gallery: the order is not decided by rounding
    assert [row[0] for row in probes] == [p.task.name for p in backend.probes] and probes
    assert all(0 <= row[2] <= 1 for row in probes)
    wheeze = next(row for row in probes if row[0] == "wheeze")
    assert wheeze[1] == "wheeze present"


def test_the_gallery_holds_each_sentence_once_and_no_excluded_value(case):
    root, _, _, backend = case
    data = (root / "data").resolve()
    train = read_manifest(data, "train")
    stored = read_reports(data)
    reports = [stored[str(r.path.relative_to(data))] for r in train]
    sentences = {s.rstrip(".") + "." for report in reports for s in report.split(". ")}
    assert sorted(backend.phrases) == sorted(sentences) and len(backend.phrases) == len(set(backend.phrases))
    assert sorted(backend.reports) == sorted(set(reports))
    assert len(backend.phrases) > len(backend.reports) > 1
    _, excluded = read_tasks(data)
    values = {r.metadata[f] for r in read_manifest(data) for f in excluded if f in r.metadata}
    assert len(values) >= 3 and values <= set(DIAGNOSES)  # the patients' diagnoses are the values checked
    for text in backend.phrases + backend.reports:
        for value in values:
            assert not re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, flags=re.IGNORECASE), (value, text)


def _separable(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Task 0: x₀ shifted by ±2 (linearly separable); task 1: noisy along x₁, unknown on a third of the rows;
    task 2: one class only (cannot be fitted)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)) * [1, 2, 1, 1, 3, 1, 1, 1]
    y = np.zeros((n, 3))
    y[:, 0] = np.arange(n) % 2
    x[:, 0] += np.where(y[:, 0] == 1, 2.0, -2.0)
    y[:, 1] = (x[:, 1] + rng.normal(scale=1.5, size=n) > 0).astype(float)
    y[::3, 1] = np.nan
    return x, y


TASKS = (ProbeTask("sep", "sep", "yes", "acoustics"), ProbeTask("noisy", "noisy", "on", "metadata"),
         ProbeTask("one", "one", "yes", "acoustics"))  # fmt: skip


def _reference(x: np.ndarray, y: np.ndarray, c: float, queries: np.ndarray) -> np.ndarray:
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, max_iter=1000).fit(scaler.transform(x), y)
    return model.predict_proba(scaler.transform(queries))[:, 1]


def test_fit_probes_separates_and_matches_sklearn():
    (x, y), (vx, vy), (tx, _) = _separable(0, 60), _separable(1, 30), _separable(2, 20)
    probes, skipped = fit_probes(x, y, TASKS, vx, vy)
    assert [p.task.name for p in probes] == ["sep", "noisy"] and set(skipped) == {"one"}
    sep = probes[0]
    positive = sep.probability(x)[y[:, 0] == 1]
    assert (positive > 0.5).all() and (sep.probability(x)[y[:, 0] == 0] < 0.5).all()
    for j, probe in enumerate(probes):
        known, valid_known = ~np.isnan(y[:, j]), ~np.isnan(vy[:, j])
        assert probe.num_train == int(known.sum())
        # C: the grid's best valid AUROC, ties → the smaller C, each fitted independently here
        aurocs = [roc_auc_score(vy[valid_known, j], _reference(x[known], y[known, j], c, vx[valid_known]))
                  for c in (0.01, 0.1, 1.0, 10.0)]  # fmt: skip
        assert probe.c == (0.01, 0.1, 1.0, 10.0)[int(np.argmax(aurocs))]
        np.testing.assert_allclose(probe.probability(tx), _reference(x[known], y[known, j], probe.c, tx),
                                   rtol=0, atol=1e-10)  # fmt: skip
    # Without a valid split that holds both classes, C is the default 1.0.
    one_class = np.zeros_like(vy)
    assert [p.c for p in fit_probes(x, y, TASKS, vx, one_class)[0]] == [1.0, 1.0]
    assert [p.c for p in fit_probes(x, y, TASKS)[0]] == [1.0, 1.0]


def test_silent_and_too_short_uploads_are_refused_by_name(case, tmp_path):
    _, _, _, backend = case
    silent, short = tmp_path / "silent.wav", tmp_path / "short.wav"
    sf.write(silent, np.zeros(32000, dtype=np.float32), 16000)
    sf.write(short, (0.1 * np.random.default_rng(0).standard_normal(3200)).astype(np.float32), 16000)
    with pytest.raises(ValueError, match="silent"):
        backend.search(str(silent))
    with pytest.raises(ValueError, match="too short"):
        backend.search(str(short))
    with pytest.raises(ValueError, match="Upload an auscultation recording"):
        backend.search(None)


def test_the_tab_is_in_the_demo_and_serves_the_backend(case, tmp_path):
    import gradio as gr

    _, _, _, backend = case
    save_tiny_folder(tmp_path / "ct")
    ct = DemoBackend(tmp_path / "ct", prompts="written")
    demo = build_demo(ct, sounds=backend)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert isinstance(by_id["sounds-tab"], gr.Tab) and by_id["sounds-tab"].label == "Auscultation (AcuLa)"
    audio = by_id["sound-audio"]
    assert isinstance(audio, gr.Audio) and audio.type == "filepath"
    outputs = [by_id[k] for k in ("sound-phrases", "sound-reports", "sound-probes")]
    assert all(isinstance(o, gr.Dataframe) for o in outputs)
    (note,) = [b for b in demo.blocks.values() if isinstance(b, gr.Markdown) and "report phrases" in str(b.value)]
    assert f"{len(backend.phrases)} report phrases" in note.value
    assert f"{len(backend.probes)} linear probes" in note.value and backend.skipped  # the benchmark leaves one out
    assert all(f"*{name}*: not probed" in note.value for name in backend.skipped)
    (fn,) = [f for f in demo.fns.values() if f.inputs == [audio]]
    assert fn.outputs == outputs
    assert fn.fn(_upload(case)) == backend.search(_upload(case))
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32000, dtype=np.float32), 16000)
    with pytest.raises(gr.Error) as refused:
        fn.fn(str(silent))
    assert refused.value.message == "silent.wav: the recording is silent (every sample is zero)."  # no server path
    assert "sounds-tab" not in {getattr(b, "elem_id", None) for b in build_demo(ct).blocks.values()}
