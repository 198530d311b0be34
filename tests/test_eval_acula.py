"""`eval/acula.py` end to end on a small build: an AcuLa folder is probed through its tower exactly as that tower's
own folder is, aligned models get audio ↔ report recall, and bad arguments stop with what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits
from transformers import AutoTokenizer

from modeling_speechct import AcuLaModel, AcuLaProcessor, SpectrogramMAEConfig
from modeling_speechct.data.auscultation.benchmark import AuscultationConfig, build_auscultation
from modeling_speechct.feature_extraction_acula import AcuLaFeatureExtractor
from modeling_speechct.training.acula_training import BENCHMARK_MAE, ensure_reports
from modeling_speechct.training.teacher import text_tower_path
from scripts import load_script


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_acula")
    data = root / "data"
    build_auscultation(AuscultationConfig(out=data, num_patients=40, recordings_per_patient=2), progress=False)
    ensure_reports(data)
    torch.manual_seed(0)
    text = text_tower_path("minilm")
    model = AcuLaModel.from_tower_pretrained(audio=SpectrogramMAEConfig(**BENCHMARK_MAE), text=text)
    model.save_pretrained(root / "acula")
    AcuLaProcessor(AcuLaFeatureExtractor(), AutoTokenizer.from_pretrained(text)).save_pretrained(root / "acula")
    model.audio_model.save_pretrained(root / "tower")
    AcuLaFeatureExtractor().save_pretrained(root / "tower")
    return root


def test_an_acula_folder_probes_as_its_own_tower_and_adds_report_recall(folders, capsys):
    out = folders / "evaluation"
    argv = ["--models", f"tower={folders / 'tower'}", f"acula={folders / 'acula'}", "--data_dir",
            str(folders / "data"), "--compare", "acula:tower", "--seeds", "0", "1", "--n_resamples", "50",
            "--output_dir", str(out), "--no_progress"]  # fmt: skip
    with threadpool_limits(1):
        record = load_script("eval/acula.py").main(argv)
    tower, acula = (record["models"][n]["probe"] for n in ("tower", "acula"))
    for task in record["tasks"]:
        a, b = tower["per_task"][task]["per_seed"], acula["per_task"][task]["per_seed"]
        np.testing.assert_array_equal(a, b)  # the same embeddings → the same probes, seed by seed
    assert tower["mean"] == acula["mean"] and np.isfinite(tower["mean"])
    difference = record["comparisons"]["acula − tower"]
    assert all(entry["ci95"] == [0, 0] or entry["n_dropped"] == 50 for entry in difference.values())
    assert "report_recall" in record["models"]["acula"] and "report_recall" not in record["models"]["tower"]
    recall = record["models"]["acula"]["report_recall"]
    assert all(0 <= v <= 1 for v in recall.values()) and recall["audio_to_report_R@10"] >= recall["audio_to_report_R@1"]
    saved = json.loads((out / "acula_eval.json").read_text())
    assert saved["command"].startswith("python eval/acula.py") and saved["tasks"] == record["tasks"]
    markdown = (out / "acula_eval.md").read_text()
    assert "| **mean, all tasks** |" in markdown and "acula − tower" in markdown
    assert markdown in capsys.readouterr().out


def test_bad_arguments_name_what_is_wrong(folders):
    script = load_script("eval/acula.py")
    with pytest.raises(SystemExit, match="--models 'tower': expected two names joined by '='"):
        script.main(["--models", "tower", "--data_dir", str(folders / "data")])
    with pytest.raises(ValueError, match=r"compare names \['ghost'\] are not among the models"):
        script.main(["--models", f"tower={folders / 'tower'}", "--compare", "tower:ghost", "--data_dir",
                     str(folders / "data"), "--no_progress"])  # fmt: skip
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        script.main(["--models", f"x={folders / 'data'}", "--data_dir", str(folders / "data"), "--no_progress"])
