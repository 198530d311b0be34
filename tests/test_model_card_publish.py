"""Model card and publishing: the card's model-index is the results JSON's figures, the exported folder loads with
trust_remote_code where the package cannot be imported, and publishing without Hub access fails cleanly."""

import json
import math
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub import ModelCard, constants
from no_package import WITHOUT_PACKAGE
from safetensors.torch import save_file
from tiny_folder import save_tiny_folder, wave
from transformers import pipeline
from volumes import SPACING, canonical_volume

from modeling_speechct.hub.model_card import write_model_card
from modeling_speechct.hub.model_index import PIPELINE_TAG
from modeling_speechct.hub.publish import PublishError, export_folder, publish, remote_code_problems, upload
from modeling_speechct.labels import CT_RATE_LABELS
from modeling_speechct.training.arguments import DistillArguments
from modeling_speechct.training.outputs import write_card
from scripts import load_script

publish_cli = load_script("model_cards/publish.py")

TEXT_TOWER = "org/tiny-text-tower"  # a Hub-style id in the text config: the card's base_model
LOCAL_SPEECH = "/home/someone/checkpoints/speech-tower"  # a local path: never published


def _per_label(seed, undefined=()):
    values = [round(0.5 + 0.4 * math.sin(seed + j), 6) for j in range(len(CT_RATE_LABELS))]
    return [None if j in undefined else v for j, v in enumerate(values)]


ZERO_SHOT = {  # what eval/zero_shot.py writes (zero_shot.json), abridged to the keys the card reads
    "model": "outputs/benchmark/distilled/final",
    "data": {"data_dir": "data/benchmark", "split": "test", "val_split": "valid", "volumes": 150},
    "modality": "speech",
    "templates": ["{label} is present.", "{label} is not present."],
    "labels": list(CT_RATE_LABELS),
    "auroc": {"per_label": _per_label(1, {12}), "mean": 0.7131, "ci95": [0.65, 0.77], "excluded": [12]},
    "ctclip_protocol": {
        "per_label": {"f1_weighted": _per_label(2, {12}), "accuracy": _per_label(3, {12})},
        "mean": {"auroc": 0.7131, "f1_weighted": 0.6843, "accuracy": 0.6612, "precision": 0.3104, "recall": None},
    },
    "standard_protocol": {
        "per_label": {"f1": _per_label(4, {12})},
        "mean": {"f1": 0.4127, "precision": 0.3518, "recall": 0.5233, "accuracy": 0.7011},
        "macro_f1": 0.4127,
    },
}
RETRIEVAL = {  # what eval/retrieval.py writes (retrieval.json)
    "model": "outputs/benchmark/distilled/final",
    "data_dir": "data/benchmark",
    "split": "test",
    "pool": 150,
    "results": {
        name: {"R@1": r1, "R@5": r1 * 3, "R@10": r1 * 4, "median_rank": 9.0, "mean_rank": 17.5, "n_queries": 150}
        for name, r1 in (("speech_to_ct", 0.0667), ("ct_to_speech", 0.0733), ("speech_to_text", 0.12))
    },
}


def _benchmark_entry(auroc, f1, r5):
    return {
        "auroc": auroc,
        "auroc_ci95": [auroc - 0.05, auroc + 0.05],
        "auroc_excluded_labels": ["Pleural effusion"],
        "auroc_per_label": [float("nan") if j == 12 else v for j, v in enumerate(_per_label(5))],
        "ctclip_f1_weighted": f1,
        "ctclip_accuracy": 0.61,
        "ctclip_precision": 0.29,
        "standard_f1": float("nan"),  # undefined: shown as such, left out of the model-index
        "standard_precision": 0.3,
        "standard_recall": 0.5,
        "standard_accuracy": 0.6,
        "retrieval_report_to_ct": {"R@1": r5 / 4, "R@5": r5, "R@10": r5 + 0.1, "median_rank": 7.0},
        "retrieval_ct_to_report": {"R@1": r5 / 5, "R@5": r5 - 0.01, "R@10": r5 + 0.05, "median_rank": 8.0},
    }


def _benchmark_summary(root):  # what train/run_benchmark.py writes (results.json)
    return {
        "results": {
            "text teacher": _benchmark_entry(0.74, 0.70, 0.4),
            "speech, naive (λ=0)": _benchmark_entry(0.62, 0.61, 0.2),
            "speech, distilled": _benchmark_entry(0.70, 0.68, 0.3),
        },
        "recovered_share": {"ctclip_f1_weighted": 0.78, "auroc": 0.67, "standard_f1": float("nan")},
        "timings_s": {"total": 1200.0},
        "arguments": {"output_dir": str(root), "data_dir": "data/benchmark", "distill_weight": 1.0},
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A benchmark-run layout around a tiny model: <root>/distilled/{run_args.json, final/}, <root>/results.json."""
    root = tmp_path_factory.mktemp("run")
    final = root / "distilled" / "final"
    model, processor = save_tiny_folder(final)
    config = json.loads((final / "config.json").read_text())
    config["text_config"]["_name_or_path"], config["speech_config"]["_name_or_path"] = TEXT_TOWER, LOCAL_SPEECH
    (final / "config.json").write_text(json.dumps(config))
    args = DistillArguments(output_dir=str(root / "distilled"), data_dir="data/benchmark", distill_weight=1.0)
    (root / "distilled" / "run_args.json").write_text(json.dumps(vars(args)))
    (final / "eval_results.json").write_text(json.dumps({"loss": 2.5, "eval_speech_ct_R@1": 0.25}))
    (root / "results.json").write_text(json.dumps(_benchmark_summary(root)))
    for name, data in (("zero_shot.json", ZERO_SHOT), ("retrieval.json", RETRIEVAL)):
        (root / name).write_text(json.dumps(data))
    hub = export_folder(final, root / "hub", [root / "zero_shot.json", root / "retrieval.json"], repo_id="org/tiny")
    return {"root": root, "final": final, "hub": hub, "model": model, "processor": processor}


def _index(card):
    """{(task type, dataset config, metric type, metric config): value} of a card's model-index; Recall@k entries
    share type and config (the direction), so their config is (direction, k), k read from the metric's name."""
    index = {}
    for r in card.data.eval_results:
        config = r.metric_config
        if r.task_type == "feature-extraction" and r.metric_type == "recall":
            config = (config, int(r.metric_name.split()[0][2:]))
        key = (r.task_type, r.dataset_config, r.metric_type, config)
        assert key not in index, key
        index[key] = r.metric_value
    return index


def _expected_zero_shot_and_retrieval():
    expected = {(PIPELINE_TAG, "speech", "roc_auc", None): ZERO_SHOT["auroc"]["mean"]}
    for protocol, metrics in (
        ("ctclip_protocol", {"f1": "f1_weighted", "accuracy": "accuracy", "precision": "precision"}),
        ("standard_protocol", {m: m for m in ("f1", "precision", "recall", "accuracy")}),
    ):
        for metric, key in metrics.items():
            expected[(PIPELINE_TAG, "speech", metric, protocol)] = ZERO_SHOT[protocol]["mean"][key]
    # Recall@k of every direction, under the direction's name; CT-CLIP's recall is null (undefined): left out.
    for direction, values in RETRIEVAL["results"].items():
        for k in (1, 5, 10):
            expected[("feature-extraction", "speech", "recall", (direction, k))] = values[f"R@{k}"]
    return expected


def test_card_metadata_and_model_index_are_the_results_figures(run):
    card = ModelCard.load(run["hub"] / "README.md")
    data = card.data
    assert data.library_name == "transformers" and data.license == "apache-2.0"
    assert data.pipeline_tag == PIPELINE_TAG
    assert {"speechct-clip", "zero-shot-ct-classification", "ct-retrieval"} <= set(data.tags)
    assert data.base_model == [TEXT_TOWER]  # the local speech path is not a Hub id
    assert data.datasets is None  # the procedural benchmark has no Hub dataset
    assert data.model_name == "tiny"

    assert _index(card) == _expected_zero_shot_and_retrieval()
    assert all(r.dataset_split == "test" for r in data.eval_results)

    text = card.text
    assert "Research use only — not a medical device" in text
    for marker in ("arXiv:2510.02322", "arXiv:2403.17834", "arXiv:2103.00020", "arXiv:2212.04356", "@article"):
        assert marker in text, marker
    assert 'AutoModel.from_pretrained("org/tiny", trust_remote_code=True)' in text
    assert "from modeling_speechct import SpeechCTClipModel" in text
    assert "Procedural benchmark ≠ real CT" in text and "Labels predicted from text" in text
    assert "λ = 1.0" in text and "| Learning rate | `0.001` |" in text  # the recipe, from run_args.json
    assert "| Pleural effusion | undefined |" in text  # per-label AUROC without a value
    assert "Shown for reference" in text  # results.json repeats the same evaluation: in the body, not the index
    assert "**speech, distilled**" in text  # ... with every model of the run compared


def test_benchmark_results_alone_give_the_entrys_figures(run, tmp_path):
    folder = tmp_path / "card"
    shutil.copytree(run["hub"], folder)
    write_model_card(folder, results=[run["root"] / "results.json"], model_dir=run["final"])  # entry from layout
    got = _index(ModelCard.load(folder / "README.md"))
    entry = _benchmark_summary(run["root"])["results"]["speech, distilled"]
    expected = {
        (PIPELINE_TAG, "speech", "roc_auc", None): entry["auroc"],
        (PIPELINE_TAG, "speech", "f1", "ctclip_protocol"): entry["ctclip_f1_weighted"],
        (PIPELINE_TAG, "speech", "accuracy", "ctclip_protocol"): entry["ctclip_accuracy"],
        (PIPELINE_TAG, "speech", "precision", "ctclip_protocol"): entry["ctclip_precision"],
        (PIPELINE_TAG, "speech", "precision", "standard_protocol"): entry["standard_precision"],
        (PIPELINE_TAG, "speech", "recall", "standard_protocol"): entry["standard_recall"],
        (PIPELINE_TAG, "speech", "accuracy", "standard_protocol"): entry["standard_accuracy"],
    }
    for direction, values in (("speech_to_ct", "retrieval_report_to_ct"), ("ct_to_speech", "retrieval_ct_to_report")):
        for k in (1, 5, 10):
            expected[("feature-extraction", "speech", "recall", (direction, k))] = entry[values][f"R@{k}"]
    assert got == expected  # the NaN standard F1 is not indexed
    with pytest.raises(ValueError, match="cannot tell which model"):
        write_model_card(folder, results=[run["root"] / "results.json"])  # the copy is not in the run's layout


def test_the_training_runs_card_is_the_same_card(run, tmp_path):
    folder = tmp_path / "final"
    shutil.copytree(run["final"], folder)
    args = DistillArguments(output_dir=str(tmp_path), data_dir="data/benchmark", distill_weight=0.0)
    write_card(folder, args, {"loss": 1.25, "step": 300}, "SpeechCT-CLIP student")
    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == PIPELINE_TAG and card.data.library_name == "transformers"
    assert "# SpeechCT-CLIP student" in card.text and "the naive baseline without distillation" in card.text
    assert "| loss | 1.2500 |" in card.text and "Research use only" in card.text
    assert not card.data.eval_results


def test_exported_folder_loads_where_the_package_cannot_be_imported(run, tmp_path):
    hub, model, processor = run["hub"], run["model"], run["processor"]
    assert remote_code_problems(hub) == []
    for name in ("pipeline_speechct_clip.py", "modeling_speechct_clip.py", "processing_speechct_clip.py"):
        assert (hub / name).is_file(), name
    config = json.loads((hub / "config.json").read_text())
    assert set(config["custom_pipelines"]) == {"zero-shot-ct-classification", "ct-retrieval"}
    assert config["speech_config"]["_name_or_path"] == "" and LOCAL_SPEECH not in (hub / "config.json").read_text()
    assert json.loads((hub / "eval_results" / "results.json").read_text())["results"]  # discovered and shipped
    assert {"zero_shot.json", "retrieval.json"} <= {p.name for p in (hub / "eval_results").iterdir()}
    assert (hub / "run_args.json").is_file() and (hub / "training_metrics.json").is_file()

    volume = canonical_volume(seed=7)
    with torch.no_grad():
        ct = model.get_ct_features(processor(ct=volume, ct_kwargs={"spacing": SPACING})["ct_values"]).pooler_output
    classify = pipeline("zero-shot-ct-classification", model=model, processor=processor)
    retrieve = pipeline("ct-retrieval", model=model, processor=processor)
    expected = {
        "ct": ct,
        "zero_shot": torch.tensor([item["score"] for item in classify(volume, spacing=SPACING)]),
        "retrieval": torch.tensor(
            [item["score"] for item in retrieve(wave(3), gallery=[volume], sampling_rate=16000, spacing=SPACING)]
        ),
    }
    save_file(
        {"volume": torch.from_numpy(volume.astype("float32")), "wave": torch.from_numpy(wave(3)), **expected},
        tmp_path / "io.safetensors",
    )
    script = WITHOUT_PACKAGE + textwrap.dedent(
        f"""
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoProcessor, pipeline
        torch.set_num_threads(1)
        folder, io = {str(hub)!r}, load_file({str(tmp_path / "io.safetensors")!r})
        volume, spacing = io["volume"].numpy(), {SPACING!r}
        model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        for obj in (model, processor):
            assert type(obj).__module__.startswith("transformers_modules"), type(obj).__module__
        with torch.no_grad():
            ct = model.get_ct_features(processor(ct=volume, ct_kwargs={{"spacing": spacing}})["ct_values"])
        torch.testing.assert_close(ct.pooler_output, io["ct"], rtol=0, atol=1e-5)
        classify = pipeline("zero-shot-ct-classification", model=folder, trust_remote_code=True)
        retrieve = pipeline("ct-retrieval", model=folder, trust_remote_code=True)
        for pipe in (classify, retrieve):
            assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
        scores = torch.tensor([item["score"] for item in classify(volume, spacing=spacing)])
        torch.testing.assert_close(scores, io["zero_shot"], rtol=0, atol=1e-5)
        ranked = retrieve(io["wave"].numpy(), gallery=[volume], sampling_rate=16000, spacing=spacing)
        torch.testing.assert_close(torch.tensor([item["score"] for item in ranked]), io["retrieval"], rtol=0, atol=1e-5)
        print("HUB-FOLDER-OK")
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HUB-FOLDER-OK" in result.stdout
    assert "Do you wish to run the custom code" not in result.stdout + result.stderr  # consent is asked once, given


def _no_hub_access(monkeypatch, tmp_path, offline=False, token=None):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    if token:
        monkeypatch.setenv("HF_TOKEN", token)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("offline", "token", "message"),
    [(True, "hf_x", "offline mode is on"), (False, None, "no Hugging Face token")],
)
def test_publishing_without_hub_access_fails_cleanly(run, tmp_path, monkeypatch, capsys, offline, token, message):
    _no_hub_access(monkeypatch, tmp_path, offline, token)
    out = tmp_path / "out"
    argv = ["--model", str(run["final"]), "--repo_id", "org/tiny", "--output_dir", str(out / "folder")]
    assert publish_cli.main(argv) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()  # checked before anything is written


def test_an_unreachable_hub_is_named_and_nothing_is_written(run, tmp_path, monkeypatch):
    _no_hub_access(monkeypatch, tmp_path, token="hf_not_a_real_token")
    with pytest.raises(PublishError, match=re.escape("cannot reach the Hub at http://127.0.0.1:9")):
        publish(run["final"], "org/tiny", tmp_path / "folder", endpoint="http://127.0.0.1:9")
    assert _leftovers(tmp_path) == []  # access is checked before the folder is written


def test_a_failing_export_leaves_no_partial_folder(run, tmp_path, monkeypatch):
    import modeling_speechct.hub.publish as publishing

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(publishing, "write_model_card", broken)  # fails after model, processor and code are written
    with pytest.raises(RuntimeError, match="disk full"):
        export_folder(run["final"], tmp_path / "folder", discover=False)
    assert _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="not an evaluation result"):
        export_folder(run["final"], tmp_path / "folder", [run["final"] / "config.json"])
    assert _leftovers(tmp_path) == []
    with pytest.raises(PublishError, match="already exists"):
        export_folder(run["final"], run["hub"])


def test_upload_is_one_commit_after_create_repo(tmp_path):
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs["folder_path"]))
            return "commit"

    assert upload(tmp_path, "org/tiny", FakeApi()) == "commit"
    assert calls == [
        ("create_repo", "org/tiny", {"exist_ok": True, "private": False}),
        ("upload_folder", "org/tiny", str(tmp_path)),
    ]
