"""The shipped spectrogram MAE (AcuLa's "before" tower): its pin holds and refuses a changed file, it loads as a
SpectrogramMAEModel with and without the package, and it reconstructs masked patches of recordings it never heard
better than an untrained tower. And the main job's reading of its claims."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from no_package import run_without_package
from safetensors.torch import save_file
from transformers import AutoModel

from modeling_speechct import SpectrogramMAEModel
from modeling_speechct.data.auscultation.benchmark import AuscultationConfig, build_auscultation
from modeling_speechct.data.auscultation.manifest import read_manifest
from modeling_speechct.evaluation.acula_eval import load_audio_model, recording_features
from modeling_speechct.files.provenance import sha256_file
from modeling_speechct.modeling_spectrogram_mae import grid_mask
from modeling_speechct.training.acula_training import MAE_RECIPE_FILE, SHIPPED_MAE, shipped_mae
from scripts import load_script


def test_the_pin_holds_and_a_changed_file_is_refused(tmp_path):
    recipe = json.loads((SHIPPED_MAE / MAE_RECIPE_FILE).read_text())
    assert shipped_mae() == SHIPPED_MAE and recipe["weights_sha256"] == sha256_file(SHIPPED_MAE / "model.safetensors")
    assert recipe["weights_sha256"] in (SHIPPED_MAE / "README.md").read_text()
    assert recipe["training_args"]["align_weight"] == 0  # unaligned: the "before" row
    copy = tmp_path / "mae"
    shutil.copytree(SHIPPED_MAE, copy)
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ValueError, match=r"model\.safetensors: sha256 \w+ is not the pinned"):
        shipped_mae(copy)


def test_it_reconstructs_unheard_recordings_better_than_an_untrained_tower(tmp_path):
    build_auscultation(AuscultationConfig(out=tmp_path, num_patients=6, recordings_per_patient=2, seed=5),
                       progress=False)  # fmt: skip
    tower, extractor = load_audio_model(SHIPPED_MAE)
    assert type(tower) is SpectrogramMAEModel and type(AutoModel.from_pretrained(SHIPPED_MAE)) is SpectrogramMAEModel
    features = recording_features(extractor, [str(r.path) for r in read_manifest(tmp_path)]).float()
    torch.manual_seed(0)
    fresh = SpectrogramMAEModel(tower.config).eval()
    cfg = tower.config
    grid = (cfg.grid[0], features.shape[-1] // cfg.patch_size[1])
    mask = grid_mask(
        len(features), grid, cfg.mask_ratio_time, cfg.mask_ratio_frequency, torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        losses = {
            name: m.reconstruction_loss(features, mask=mask).loss.item()
            for name, m in (("shipped", tower), ("fresh", fresh))
        }
    assert losses["shipped"] < 0.7 * losses["fresh"], losses


def test_it_loads_without_the_package(tmp_path):
    x = torch.randn(2, 64, 800, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = AutoModel.from_pretrained(SHIPPED_MAE).eval()(x).pooler_output
    save_file({"x": x, "expected": expected}, tmp_path / "io.safetensors")
    body = f"""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel
    io = load_file({str(tmp_path / "io.safetensors")!r})
    model = AutoModel.from_pretrained({str(SHIPPED_MAE)!r}, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        torch.testing.assert_close(model(io["x"]).pooler_output, io["expected"], rtol=0, atol=0)
    """
    run_without_package(body, tmp_path)


def _record(gain: float, low: float, wheeze_high: float) -> dict:
    entry = {"difference": gain, "ci95": [low, gain + 0.05]}
    wheeze = {"difference": -0.01, "ci95": [-0.05, wheeze_high]}
    return {"tasks": ["wheeze", "elderly"], "depends_on": ["acoustics", "metadata"],
            "comparisons": {"both − before": {"all tasks": entry, "elderly": entry, "wheeze": wheeze}}}  # fmt: skip


def test_the_main_job_reads_its_claims_from_the_paired_intervals():
    claims = load_script("train/run_acula_benchmark.py").claims
    (_, met_rise, _), (_, met_acoustic, figure) = claims(_record(0.09, 0.02, 0.03))
    assert met_rise and met_acoustic and "wheeze" in figure
    assert not claims(_record(0.07, 0.02, 0.03))[0][1]  # below +0.08
    assert not claims(_record(0.09, -0.01, 0.03))[0][1]  # the interval holds 0
    assert not claims(_record(0.09, 0.02, -0.001))[1][1]  # an acoustics task falls beyond its interval
