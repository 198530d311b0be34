"""A teacher whose top text layers train over the cached output of the frozen ones (LiT's second stage)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark
from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.training.benchmark_teacher import (
    assemble_teacher,
    export_teacher,
    init_from_teacher,
    learnt_state,
)
from modeling_speechct.training.embedding_cache import TextPrefixCache, collate_text_prefixes
from modeling_speechct.training.rows import FeatureCollator, teacher_rows
from modeling_speechct.training.teacher import build_teacher

REPORTS = [
    "No pleural effusion. Mild cardiomegaly with a small pericardial effusion.",
    "Emphysema.",
    "Calcific atheroma plaques in the thoracic aorta; a 6 mm nodule in the right upper lobe.",
]


@pytest.fixture(scope="module")
def top2():
    torch.manual_seed(0)
    return build_teacher("benchmark", "minilm", "top", 64, 32, text_trainable_layers=2)


def test_prefix_path_equals_the_full_text_tower_in_float64(top2):
    model, processor = top2
    model = model.double().eval()
    batch = processor(text=REPORTS)  # three lengths: the padding must change nothing
    try:
        full = model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output
        prefix = model.get_text_prefix(batch["input_ids"], batch["attention_mask"])
        assert model.text_prefix_layer == 4 and prefix.hidden_states.shape[:2] == batch["input_ids"].shape
        from_prefix = model.get_text_features_from_prefix(prefix)
        # and report by report, unpadded: the same numbers as in the padded batch
        alone = []
        for i, n in enumerate(batch["attention_mask"].sum(dim=1).tolist()):
            ids, mask = batch["input_ids"][i : i + 1, :n], batch["attention_mask"][i : i + 1, :n]
            alone.append(model.get_text_features(ids, mask).pooler_output)
    finally:
        model.float()
    assert torch.allclose(from_prefix, full, atol=1e-10)
    assert torch.allclose(torch.cat(alone), full, atol=1e-10)


def test_only_the_top_layers_train_and_the_frozen_ones_keep_no_dropout(top2):
    model, _ = top2
    trainable = {n.split(".")[3] for n, p in model.named_parameters() if p.requires_grad and n.startswith("text_model")}
    assert trainable == {"4", "5"}
    assert model.text_projection.weight.requires_grad and model.ct_projection.weight.requires_grad
    assert not model.text_model.embeddings.word_embeddings.weight.requires_grad
    model.train()
    layers = model.text_model.encoder.layer
    assert not layers[3].training and not model.text_model.embeddings.training
    assert layers[4].training and layers[5].training
    model.eval()


def test_prefix_cache_and_collation_give_the_same_embeddings(top2, tmp_path):
    model, processor = top2
    model.eval()
    cached = TextPrefixCache(tmp_path, model, processor)(REPORTS)
    lengths = processor(text=REPORTS)["attention_mask"].sum(dim=1)
    assert [h.shape[0] for h in cached] == lengths.tolist() and cached[0].dtype == torch.float16
    again = TextPrefixCache(tmp_path, model, processor)(REPORTS)  # read back from disk
    assert all(torch.equal(a, b) for a, b in zip(cached, again, strict=True))
    prefix = collate_text_prefixes(cached)
    assert prefix.attention_mask.sum(dim=1).tolist() == lengths.tolist()
    batch = processor(text=REPORTS)
    with torch.no_grad():
        direct = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_embeds
        via_cache = model(text_prefix=prefix).text_embeds
    assert torch.allclose(via_cache, direct, atol=2e-3)  # float16 storage of the prefix
    with pytest.raises(ValueError, match="Give one of"):
        model(input_ids=batch["input_ids"], text_prefix=prefix)


def test_a_locked_ct_tower_is_cached_as_embeddings(tmp_path):
    data = tmp_path / "data"
    build_benchmark(BuildConfig(out=data, num_volumes=4, seed=3, shape=(24, 48, 48), speech=False), progress=False)
    torch.manual_seed(0)
    model, processor = build_teacher("benchmark", "minilm", "top", 64, 32, text_trainable_layers=1, lock_ct=True)
    model.eval()
    rows = list(load_ct_rate(data, "train", require_speech=False))
    out = teacher_rows(model, processor, rows, tmp_path / "cache", cache_ct_values=True)
    assert set(out[0]) == {"labels", "ct_embeds", "text_prefix"}
    with torch.no_grad():
        values = processor(ct=[r["volume"] for r in rows], ct_kwargs={"is_hu": True})["ct_values"]
        expected = model.get_ct_features(values.half().float()).pooler_output  # the volume cache keeps float16
    assert torch.allclose(torch.stack([r["ct_embeds"] for r in out]), expected, atol=1e-5)
    batch = FeatureCollator(processor)(out)
    assert set(batch) == {"ct_embeds", "text_prefix"}
    assert not any(p.requires_grad for p in model.ct_model.parameters())


def _teacher_folder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model, processor = build_teacher("benchmark", "minilm", "projection", 64, 32)
    folder = tmp_path / "stage1"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_second_stage_changes_the_top_text_layers_only_and_ships_them(tmp_path):
    from scripts import load_script

    stage1 = _teacher_folder(tmp_path)
    data = tmp_path / "data"
    build_benchmark(BuildConfig(out=data, num_volumes=12, seed=3, shape=(24, 48, 48), speech=False), progress=False)
    pretrain = load_script("train/pretrain.py")
    out = tmp_path / "stage2"
    argv = ["--output_dir", str(out), "--data_dir", str(data), "--cache_dir", str(tmp_path / "cache"),
            "--init_teacher", str(stage1), "--lock_ct", "--train_text", "top", "--text_trainable_layers", "1",
            "--projection_dim", "64", "--max_text_length", "32", "--max_steps", "3", "--per_device_batch_size", "4",
            "--learning_rate", "1e-3", "--warmup_steps", "1", "--eval_every", "3", "--save_every", "3"]  # fmt: skip
    pretrain.main(argv)
    before = SpeechCTClipModel.from_pretrained(stage1).state_dict()
    after_model = SpeechCTClipModel.from_pretrained(out / "final")
    after = after_model.state_dict()
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed, "the second stage trained nothing"
    assert all(n.startswith(("text_model.encoder.layer.5.", "text_projection", "logit_scale")) for n in changed)
    assert any(n.startswith("text_model.encoder.layer.5.") for n in changed)
    # shipping keeps the tuned layer (and only it) of the text tower; assembling gives the trained tensors back
    import json

    run_args = json.loads((out / "run_args.json").read_text())
    dest = export_teacher(out / "final", tmp_path / "shipped", run_args, [{"step": 3}], ["cmd"], 1.0, "test")
    state = learnt_state(after_model)
    shipped_text = {n.split(".")[3] for n in state if n.startswith("text_model.")}
    assert shipped_text == {"5"}
    rebuilt = SpeechCTClipModel.from_pretrained(assemble_teacher(tmp_path / "again", dest)).state_dict()
    assert all(torch.equal(rebuilt[n], after[n]) for n in after if not n.startswith("speech_"))


def test_init_from_teacher_refuses_another_tower(tmp_path):
    stage1 = _teacher_folder(tmp_path)
    model, _ = build_teacher("benchmark-conv", "minilm", "top", 64, 32)
    with pytest.raises(ValueError, match="does not fit the teacher"):
        init_from_teacher(model, str(stage1), tmp_path)
