"""The training loop: distributed equivalence, exact resume, atomic checkpoints, frozen towers, LoRA, bad configs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from training_helpers import ddp_worker, run, tiny_args, tiny_rows, tiny_student, trainable_state

from modeling_speechct.training.arguments import validate
from modeling_speechct.training.loop import checkpoints, fit, make_accelerator, resolve_resume, save_checkpoint
from modeling_speechct.training.lora import add_speech_lora, finalize_lora, load_speech_lora
from modeling_speechct.training.rows import FeatureCollator, RowDataset


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path):
    single, single_result = run(tmp_path / "single", per_device_batch_size=8)
    result_file = tmp_path / "ddp.pt"
    mp.spawn(ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp"), str(result_file)), nprocs=2, join=True)
    ddp = torch.load(result_file, weights_only=True)
    assert ddp["loss"] == pytest.approx(single_result["loss"], abs=1e-5)
    expected = trainable_state(single)
    assert expected.keys() == ddp["state"].keys()
    initial = trainable_state(tiny_student())
    moved = max((expected[k] - initial[k]).abs().max().item() for k in expected)
    assert moved > 1e-4  # the step changed the weights, so agreeing is not trivial
    # AdamW's first step is lr·g/(|g| + ε): for gradients near ε the all-reduce's summation order moves it by up to
    # ~0.1 % of the learning rate (1.2e-5 seen on torch 2.14), while a wrong gradient moves it by the whole step.
    tolerance = 3e-3 * tiny_args(tmp_path).learning_rate
    for name, value in expected.items():
        torch.testing.assert_close(ddp["state"][name], value, atol=tolerance, rtol=0, msg=name)


@pytest.mark.parametrize("voices", [False, True], ids=["one-voice", "voice-sampled"])
def test_killed_and_resumed_run_reaches_the_uninterrupted_weights(tmp_path, voices):
    # 24 rows, batch 8: 3 steps per epoch; killed at step 4 (mid-epoch 2, right after its checkpoint). With voices,
    # every row draws one of two recordings per step: the resumed run must draw what the straight one drew.
    common = dict(max_steps=6, save_every=2, lr_scheduler="cosine", warmup_steps=1, voices=voices)
    straight, _ = run(tmp_path / "straight", **common)
    _, killed = run(tmp_path / "resumed", stop_after=4, **common)
    assert killed["step"] == 4 and [p.name for p in checkpoints(tmp_path / "resumed")][-1] == "step_00000004"
    resumed, result = run(tmp_path / "resumed", resume_from_checkpoint="latest", **common)
    assert result["step"] == 6
    for name, value in trainable_state(straight).items():
        torch.testing.assert_close(trainable_state(resumed)[name], value, atol=1e-6, rtol=0, msg=name)
    fresh, _ = run(tmp_path / "fresh", **{**common, "max_steps": 2})
    differs = any(not torch.equal(v, trainable_state(fresh)[k]) for k, v in trainable_state(straight).items())
    assert differs  # a run of other length ends elsewhere: the comparison above can fail


def test_interrupted_checkpoint_write_never_replaces_the_good_one(tmp_path, monkeypatch):
    model = tiny_student()
    args = tiny_args(tmp_path)
    accelerator = make_accelerator(args, log=False)
    model = accelerator.prepare(model)
    good = save_checkpoint(accelerator, tmp_path, 2, keep=2)

    def crash(folder, *a, **k):  # dies after writing part of the state
        (Path(folder) / "model.safetensors").write_bytes(b"half a file")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(accelerator, "save_state", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(accelerator, tmp_path, 4, keep=2)
    assert checkpoints(tmp_path) == [good]
    assert resolve_resume(tiny_args(tmp_path, resume_from_checkpoint="latest")) == good
    assert json.loads((good / "progress.json").read_text()) == {"step": 2}


def test_frozen_towers_and_frozen_speech_layers_do_not_change(tmp_path):
    before = {n: p.detach().clone() for n, p in tiny_student().named_parameters()}
    model, _ = run(tmp_path, max_steps=3)
    after = dict(model.named_parameters())
    top = model._speech_layer_stack()[-1]
    top_names = {
        f"speech_model.encoder.layers.{len(model._speech_layer_stack()) - 1}.{n}" for n, _ in top.named_parameters()
    }
    for name, value in before.items():
        if name.startswith(("ct_", "text_", "logit_scale")) or (
            name.startswith("speech_model.") and name not in top_names and "encoder.layer_norm" not in name
        ):
            assert torch.equal(after[name], value), f"{name} changed"
    assert not torch.equal(after["speech_projection.weight"], before["speech_projection.weight"])


def test_lora_adapters_save_reload_and_merge_to_the_same_outputs(tmp_path):
    model = tiny_student()
    rows = tiny_rows(model)
    model = add_speech_lora(model, r=4, alpha=8, dropout=0.0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trainable)
    assert not any(n.startswith("speech_model.") and "lora_" not in n for n in trainable)
    args = tiny_args(tmp_path / "run", max_steps=3)
    accelerator = make_accelerator(args, log=False)
    fit(model, RowDataset(rows), FeatureCollator(), args, accelerator)
    model = accelerator.unwrap_model(model).eval()
    batch = FeatureCollator()(rows[:5])
    with torch.no_grad():
        expected = model.get_speech_features_from_prefix(batch["speech_prefix"], batch_size=5)

    base = finalize_lora(model, tmp_path / "run", merge=False)
    base.save_pretrained(tmp_path / "base")
    reloaded = type(base).from_pretrained(tmp_path / "base")
    with torch.no_grad():
        without = reloaded.get_speech_features_from_prefix(batch["speech_prefix"], batch_size=5)
    assert (without - expected).abs().max() > 1e-4  # the adapters matter
    adapted = load_speech_lora(reloaded, tmp_path / "run" / "adapter").eval()
    merged = load_speech_lora(type(base).from_pretrained(tmp_path / "base"), tmp_path / "run" / "adapter", merge=True)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        for other in (adapted, merged.eval()):
            got = other.get_speech_features_from_prefix(batch["speech_prefix"], batch_size=5)
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"distill_weight": -0.5}, "distill_weight=-0.5 must be ≥ 0"),
        ({"speech_tower": "no-such-tower"}, "speech_tower='no-such-tower' is neither"),
        ({"lr_scheduler": "sometimes"}, "lr_scheduler='sometimes' is not one of"),
        ({"per_device_batch_size": 0}, "per_device_batch_size=0 must be ≥ 1"),
    ],
)
def test_bad_configuration_is_refused_before_training(tmp_path, overrides, message):
    with pytest.raises(ValueError, match="bad training configuration") as err:
        validate(tiny_args(tmp_path / "out", **overrides))
    assert message in str(err.value)


def test_unknown_teacher_and_foreign_output_dir_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"teacher=.* is not a folder"):
        validate(tiny_args(tmp_path / "out", teacher=str(tmp_path / "missing")))
    run(tmp_path / "taken")  # a finished run owns this folder now
    with pytest.raises(ValueError, match=r"holds another run .*distill_weight"):
        validate(tiny_args(tmp_path / "taken", teacher=str(tmp_path / "taken"), distill_weight=0.0))
    validate(tiny_args(tmp_path / "taken", resume_from_checkpoint="latest"))  # the same run may resume
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no run of ours"):
        validate(tiny_args(tmp_path / "junk", teacher=str(tmp_path)))


def test_batch_larger_than_the_dataset_is_refused(tmp_path):
    model = tiny_student()
    rows = tiny_rows(model)[:5]
    args = tiny_args(tmp_path, per_device_batch_size=8)
    with pytest.raises(ValueError, match="larger than the training set"):
        fit(model, RowDataset(rows), FeatureCollator(), args, make_accelerator(args, log=False))


@pytest.mark.parametrize(
    ("name", "cls_name"),
    [
        ("distill_benchmark", "DistillArguments"),
        ("distill_ctrate", "DistillArguments"),
        ("teacher_ctrate", "TeacherArguments"),
    ],
)
def test_shipped_run_configs_parse_into_their_arguments(name, cls_name):
    import yaml

    from modeling_speechct.training import arguments as training_args
    from modeling_speechct.training.arguments import parse_arguments

    path = Path(__file__).parents[1] / "train" / "configs" / f"{name}.yaml"
    args = parse_arguments(getattr(training_args, cls_name), [str(path)])
    for key, value in yaml.safe_load(path.read_text()).items():
        assert getattr(args, key) == value, key
    assert args.problems() == [] or all("teacher=" in p or "ct_tower=" in p for p in args.problems())


def test_teacher_extra_train_dirs_must_hold_a_train_split(tmp_path):
    from modeling_speechct.training.arguments import TeacherArguments

    (tmp_path / "pool" / "dataset" / "train").mkdir(parents=True)
    validate(TeacherArguments(output_dir=str(tmp_path / "a"), extra_train_dirs=[str(tmp_path / "pool")]))
    with pytest.raises(ValueError, match=r"extra_train_dirs: .*nowhere.* has no CT-RATE-layout train split"):
        validate(TeacherArguments(output_dir=str(tmp_path / "b"), extra_train_dirs=[str(tmp_path / "nowhere")]))
