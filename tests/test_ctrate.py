"""CT-RATE layout: the loader reads a hand-made miniature of the real download; paths stay inside the root;
missing and corrupt files are named or skipped and counted; the collator feeds the model."""

import pytest
import torch
from miniature import NAMES, make_miniature, tiny_processor

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.data import ctrate
from modeling_speechct.training.tiny import tiny_speechct_config


def test_loader_reads_the_real_layout(tmp_path):
    root = make_miniature(tmp_path)
    ds = ctrate.load_ct_rate(root, "valid")
    assert ds.column_names == ["volume_name", "volume", "speech", "findings", "impressions", "labels"]
    assert ds["volume_name"] == NAMES
    assert ds[2]["volume"].endswith("dataset/valid/valid_53/valid_53_b/valid_53_b_1.nii.gz")
    assert ds[2]["speech"].endswith("dataset/valid/valid_53/valid_53_b/valid_53_b_1_findings.wav")
    assert ds[1]["findings"] == "Finding number 1. No pleural effusion." and ds[1]["impressions"] == ""
    assert ds[1]["labels"] == [int(j == 1) for j in range(18)]
    streamed = list(ctrate.load_ct_rate(root, "valid", streaming=True))
    assert [r["volume_name"] for r in streamed] == NAMES


def test_missing_files_are_named_or_skipped_and_counted(tmp_path):
    root = make_miniature(tmp_path)
    ctrate.speech_path(root, NAMES[1]).unlink()
    with pytest.raises(
        FileNotFoundError, match=r"valid_1_a_2\.nii\.gz: speech file .*valid_1_a_2_findings\.wav is missing"
    ):
        ctrate.load_ct_rate(root, "valid")
    with pytest.warns(UserWarning, match="skipped 1 row"):
        ds = ctrate.load_ct_rate(root, "valid", on_missing="skip")
    assert ds["volume_name"] == [NAMES[0], NAMES[2]]
    assert len(ctrate.load_ct_rate(root, "valid", require_speech=False)) == 3
    with pytest.raises(FileNotFoundError, match=r"train_reports\.csv is missing"):
        ctrate.load_ct_rate(root, "train")


def test_manifest_names_cannot_escape_the_root(tmp_path):
    with pytest.raises(ValueError, match="is not a CT-RATE volume name"):
        ctrate.volume_path(tmp_path, "../../../etc/passwd")
    with pytest.raises(ValueError, match="is not a CT-RATE volume name"):
        ctrate.volume_path(tmp_path, "valid_1_a_1.nii.gz/../../x.nii.gz")
    root = make_miniature(tmp_path, names=["valid_1_a_1.nii.gz"])
    labels = ctrate.labels_csv(root, "valid")
    labels.write_text(labels.read_text().replace("valid_1_a_1.nii.gz", "../../../../etc/passwd.nii.gz"))
    with pytest.raises(ValueError, match="not a CT-RATE volume name"):
        ctrate.load_ct_rate(root, "valid")


def test_collator_feeds_the_model_and_names_corrupt_files(tmp_path):
    root = make_miniature(tmp_path / "data")
    ds = ctrate.load_ct_rate(root, "valid")
    collate = ctrate.SpeechCTClipCollator(tiny_processor(tmp_path))
    batch = collate([ds[i] for i in range(3)])
    assert batch["ct_values"].shape == (3, 1, 8, 32, 32) and batch["labels"].shape == (3, 18)
    model = SpeechCTClipModel(tiny_speechct_config("whisper")).eval()
    with torch.no_grad():
        out = model(**{k: v for k, v in batch.items() if k != "labels"}, return_loss=True)
    assert torch.isfinite(out.loss)

    ctrate.speech_path(root, NAMES[1]).write_bytes(b"RIFF garbage")
    with pytest.raises(ValueError, match=r"valid_1_a_2_findings\.wav: cannot read as audio"):
        collate([ds[i] for i in range(3)])
    path = ctrate.volume_path(root, NAMES[2])
    path.write_bytes(path.read_bytes()[:200])
    skipping = ctrate.SpeechCTClipCollator(tiny_processor(tmp_path), on_error="skip")
    batch = skipping([ds[i] for i in range(3)])
    assert batch["ct_values"].shape[0] == 1 and [name for name, _ in skipping.skipped] == NAMES[1:]


def test_a_hub_dataset_id_is_downloaded_by_pattern(tmp_path, monkeypatch):
    """A non-local root is a Hub dataset id: the tables and the split's folder are fetched, then read alike."""
    mirror = make_miniature(tmp_path / "hub_copy")
    calls = []

    def fake_snapshot_download(repo_id, repo_type, allow_patterns, **kwargs):
        calls.append((repo_id, repo_type, sorted(allow_patterns)))
        return str(mirror)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    ds = ctrate.load_ct_rate("ibrahimhamamci/CT-RATE", "valid", speech_root="lbuess/Speech-RATE")
    assert ds["volume_name"] == NAMES
    assert calls[0] == (
        "ibrahimhamamci/CT-RATE",
        "dataset",
        sorted(
            [
                "dataset/radiology_text_reports/*",
                "dataset/multi_abnormality_labels/*",
                "dataset/metadata/*",
                "dataset/valid/*",
            ]
        ),
    )
    assert calls[1][0] == "lbuess/Speech-RATE"

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("huggingface_hub.snapshot_download", offline)
    with pytest.raises(FileNotFoundError, match="neither a local folder nor a reachable Hub dataset"):
        ctrate.load_ct_rate("someone/missing-dataset", "valid")
