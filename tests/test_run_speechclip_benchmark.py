"""`bash scripts/run_main.sh speechclip` end to end on a miniature: the five variants train and are scored in one
table, the claims are read from the figures, and a second run reuses every trained variant."""

import json
import subprocess
import sys

import pytest

from modeling_speechct.data.flickr8k import load_flickr8k
from scripts import ROOT


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("speechclip_main")
    argv = [sys.executable, str(ROOT / "train" / "run_speechclip_benchmark.py"), "--data_dir", str(root / "data"),
            "--num_images", "15", "--output_dir", str(root / "out"), "--cache_dir", str(root / "cache"),
            "--max_steps", "2", "--batch_size", "8", "--n_resamples", "50", "--cif_scaling_steps", "1"]  # fmt: skip
    first = subprocess.run(argv, capture_output=True, text=True, cwd=root)
    assert first.returncode == 0, first.stderr[-3000:]
    record = json.loads((root / "out" / "results.json").read_text())
    second = subprocess.run(argv, capture_output=True, text=True, cwd=root)
    assert second.returncode == 0, second.stderr[-3000:]
    return root, record, json.loads((root / "out" / "results.json").read_text()), second.stdout


def test_five_variants_in_one_table_on_the_test_split(runs):
    root, record, _, _ = runs
    assert list(record["models"]) == ["parallel", "cascaded", "cascaded_plus", "hybrid", "hybrid_plus"]
    assert "cascaded keyword hit top-5" in record["models"]["cascaded_plus"]
    assert "parallel speech→image R@10" in record["models"]["hybrid"] and "parallel speech→image R@10" not in (
        record["models"]["cascaded"])  # fmt: skip
    table = (root / "out" / "results.md").read_text()
    assert table.count("| hybrid_plus |") == 2  # both branches
    images = {c.item_id for c in load_flickr8k(root / "data", "test")}
    assert len(images) == 2 and record["resampled"] == "images"
    # the gallery is the split's distinct images (2), not its 10 captions: every caption finds its image in 10
    assert record["models"]["parallel"]["parallel speech→image R@10"]["value"] == 1.0
    for model in record["provenance"].values():
        assert model["data"]["splits"] == ["test"] and model["data"]["layout"] == "flickr8k"


def test_claims_are_read_from_the_figures(runs):
    _, record, _, _ = runs
    claims = {c["claim"]: c for c in record["claims"]}
    assert len(claims) == 5
    ratio = record["ratios"]["parallel parallel speech→image R@10 / CLIP text→image R@10"]
    bar = record["clip"]["CLIP text→image R@10"]["value"]
    assert ratio["value"] == pytest.approx(record["models"]["parallel"]["parallel speech→image R@10"]["value"] / bar)
    assert claims["parallel speech → image R@10 ≥ 80 % of CLIP's text → image"]["met"] == (ratio["value"] >= 0.8)
    cif = record["comparisons"]["cascaded_plus vs cascaded: cascaded keyword hit top-5"]
    assert claims["cascaded+ (CIF) keyword top-5 above cascaded, interval above 0"]["met"] == (cif["ci95"][0] > 0)


def test_a_second_run_reuses_every_variant(runs):
    _, record, again, stdout = runs
    assert all(f"[{v}] reusing" in stdout for v in record["models"])
    assert all(again["timings_s"][v] == 0 for v in record["models"])
    assert again["models"] == record["models"] and again["claims"] == record["claims"]
