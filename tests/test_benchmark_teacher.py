"""The shipped benchmark teacher: what ships, how it is reassembled, and that shipping round-trips exactly."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark
from modeling_speechct.training.benchmark_teacher import (
    RECIPE_FILE,
    SHIPPED_TEACHER,
    WEIGHTS_FILE,
    assemble_teacher,
    export_teacher,
    learnt_state,
    read_recipe,
    text_tower_sha256,
)
from modeling_speechct.training.teacher import BENCHMARK_CT_GRID, build_teacher, text_tower_path
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assembled(tmp_path_factory) -> Path:
    return assemble_teacher(tmp_path_factory.mktemp("teacher") / "final")


def test_shipped_folder_is_small_safetensors_and_package_data():
    weights = SHIPPED_TEACHER / WEIGHTS_FILE
    assert weights.stat().st_size <= 20e6
    assert weights.read_bytes()[:8] != b"PK\x03\x04"  # not a zip (torch.save) archive
    assert all(not n.startswith(("text_model.", "speech_model.")) for n in load_file(weights))
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = ROOT / "modeling_speechct"
    covered = {p for pattern in patterns["modeling_speechct"] for p in package.glob(pattern)}
    assert {p for p in SHIPPED_TEACHER.iterdir() if p.is_file()} <= covered


def test_card_reports_the_recorded_validation_scores():
    recipe = read_recipe()
    card = ModelCard.load(SHIPPED_TEACHER / "README.md")
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    last = recipe["validation"][-1]
    assert results["Mean AUROC"] == pytest.approx(last["zero_shot_auroc"])
    assert results["Report → CT R@10"] == pytest.approx(last["text_ct_R@10"])
    assert last["step"] == recipe["steps"] == recipe["training_args"]["max_steps"]
    assert f"{recipe['steps']:,}" in card.text and "train/pretrain.py" in card.text


def test_assembled_teacher_holds_the_shipped_tensors_and_the_locked_minilm(assembled):
    model = SpeechCTClipModel.from_pretrained(assembled).eval()
    shipped = load_file(SHIPPED_TEACHER / WEIGHTS_FILE)
    state = learnt_state(model)
    assert state.keys() == shipped.keys()
    assert all(torch.equal(state[name], shipped[name]) for name in shipped)
    minilm = load_file(str(Path(text_tower_path("minilm")) / "model.safetensors"))
    text = model.text_model.state_dict()
    matched = [name for name in text if name in minilm]
    assert len(matched) == len(text)  # every text-tower tensor is the wheel's
    assert all(torch.equal(text[name], minilm[name]) for name in matched)
    assert text_tower_sha256(model) == read_recipe()["text_tower_sha256"]
    processor = SpeechCTClipProcessor.from_pretrained(assembled)
    assert processor.ct_feature_extractor.target_shape == BENCHMARK_CT_GRID["target_shape"]


def _tiny_run(tmp_path: Path) -> tuple[Path, dict]:
    data = tmp_path / "data"
    build_benchmark(BuildConfig(out=data, num_volumes=4, seed=3, shape=(24, 48, 48), speech=False), progress=False)
    torch.manual_seed(0)
    model, processor = build_teacher("benchmark", "minilm", "projection", 64, 32)
    with torch.no_grad():  # stand-in for training: move every learnt tensor off its initialisation
        for name, parameter in model.named_parameters():
            if not name.startswith(("text_model.", "speech_model.")):
                parameter.add_(0.01 * torch.randn_like(parameter))
    final = tmp_path / "run" / "final"
    model.save_pretrained(final)
    processor.save_pretrained(final)
    args = {
        "data_dir": str(data), "ct_tower": "benchmark", "text_tower": "minilm", "train_text": "projection",
        "projection_dim": 64, "max_text_length": 32, "speech_tower": "shipped", "max_steps": 10,
        "learning_rate": 1e-3, "weight_decay": 0.01, "warmup_steps": 1, "lr_scheduler": "cosine",
        "per_device_batch_size": 2, "seed": 0, "extra_train_dirs": [],
    }  # fmt: skip
    return final, args


def test_export_then_assemble_round_trips_exactly(tmp_path):
    final, args = _tiny_run(tmp_path)
    history = [{"step": 10, "zero_shot_auroc": 0.61, "text_ct_R@5": 0.2, "text_ct_R@10": 0.3}]
    dest = export_teacher(final, tmp_path / "shipped", args, history, ["python train/pretrain.py ..."], 3.0, "test")
    assert sorted(p.name for p in dest.iterdir()) == sorted(["README.md", RECIPE_FILE, WEIGHTS_FILE])
    assert not list(tmp_path.glob(".shipped.tmp-*"))
    trained = learnt_state(SpeechCTClipModel.from_pretrained(final))
    rebuilt = learnt_state(SpeechCTClipModel.from_pretrained(assemble_teacher(tmp_path / "again", dest)))
    assert trained.keys() == rebuilt.keys()
    assert all(torch.equal(trained[name], rebuilt[name]) for name in trained)
    assert ModelCard.load(dest / "README.md").data.eval_results[0].metric_value == pytest.approx(0.61)


def test_assembling_refuses_another_text_tower_or_foreign_tensors(tmp_path):
    final, args = _tiny_run(tmp_path)
    history = [{"step": 10, "zero_shot_auroc": 0.5}]
    dest = export_teacher(final, tmp_path / "shipped", args, history, ["cmd"], 1.0, "test")
    recipe = json.loads((dest / RECIPE_FILE).read_text())
    (dest / RECIPE_FILE).write_text(json.dumps({**recipe, "text_tower_sha256": "0" * 64}))
    with pytest.raises(ValueError, match=r"text tower 'minilm'.*not the one"):
        assemble_teacher(tmp_path / "out", dest)
    assert not (tmp_path / "out").exists()
    (dest / RECIPE_FILE).write_text(json.dumps(recipe))
    weights = load_file(dest / WEIGHTS_FILE)
    save_file({**weights, "ct_model.extra.weight": torch.zeros(1)}, str(dest / WEIGHTS_FILE))
    with pytest.raises(ValueError, match=r"does not fit.*ct_model.extra.weight"):
        assemble_teacher(tmp_path / "out", dest)
    assert not (tmp_path / "out").exists()


def _run_benchmark_module(monkeypatch):
    return load_script("train/run_benchmark.py")


def test_main_job_uses_the_shipped_teacher_and_warns_on_another_benchmark(tmp_path, monkeypatch, capsys):
    import argparse

    run_benchmark = _run_benchmark_module(monkeypatch)
    data = tmp_path / "data"
    build_benchmark(BuildConfig(out=data, num_volumes=4, seed=3, shape=(24, 48, 48), speech=False), progress=False)
    args = argparse.Namespace(data_dir=str(data), speech_tower="shipped")
    final = tmp_path / "teacher" / "final"
    run_benchmark.shipped_teacher(args, final)
    assert "WARNING" in capsys.readouterr().out  # a 4-volume build is not the benchmark the teacher learnt from
    shipped = load_file(SHIPPED_TEACHER / WEIGHTS_FILE)
    state = learnt_state(SpeechCTClipModel.from_pretrained(final))
    assert all(torch.equal(state[name], shipped[name]) for name in shipped)


def test_retraining_the_teacher_follows_the_shipped_recipe(tmp_path, monkeypatch):
    import argparse

    run_benchmark = _run_benchmark_module(monkeypatch)
    pool = tmp_path / "pool"
    (pool / "dataset" / "train").mkdir(parents=True)  # present: not rebuilt
    seen: list[list[str]] = []
    from modeling_speechct.training import stages

    monkeypatch.setattr(stages, "run_script", lambda script, argv: seen.append(argv))
    args = argparse.Namespace(teacher_steps=7, teacher_pool=str(pool), batch_size=16, speech_tower="shipped")
    run_benchmark.train_teacher(args, tmp_path / "teacher", ["--data_dir", "d"])
    flags = dict(zip(seen[0][::2], seen[0][1::2], strict=True))
    recipe = read_recipe()["training_args"]
    assert flags["--max_steps"] == "7" and flags["--extra_train_dirs"] == str(pool)
    assert float(flags["--learning_rate"]) == recipe["learning_rate"]
    assert int(flags["--warmup_steps"]) == recipe["warmup_steps"]
    assert flags["--ct_augment"] == str(recipe["ct_augment"])
