"""train/train_acula.py end to end on a few built recordings: reports written once without the excluded fields, the
teacher stays MiniLM as installed, the folder reloads through AutoModel with the last step's weights."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from modeling_speechct import AcuLaModel, AcuLaProcessor
from modeling_speechct.data.auscultation.benchmark import AuscultationConfig, build_auscultation
from modeling_speechct.data.auscultation.manifest import read_manifest, read_tasks
from modeling_speechct.data.auscultation.reports import read_reports
from modeling_speechct.training.acula_training import acula_rows, audio_report_scores
from modeling_speechct.training.teacher import text_tower_path
from scripts import load_script


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("acula")
    build_auscultation(AuscultationConfig(out=root / "data", num_patients=16, recordings_per_patient=2), progress=False)
    argv = ["--output_dir", str(root / "out"), "--data_dir", str(root / "data"), "--max_steps", "4",
            "--per_device_batch_size", "8", "--eval_every", "4", "--save_every", "2", "--log_every", "2"]  # fmt: skip
    return root, load_script("train/train_acula.py").main(argv)


def test_reports_leave_the_targets_out(run):
    root, _ = run
    recordings = read_manifest(root / "data")
    _, excluded = read_tasks(root / "data")
    reports = read_reports(root / "data")
    assert len(reports) == len(recordings) and "diagnosis" in excluded
    for r in recordings:
        text = reports[str(r.path.relative_to((root / "data").resolve()))]
        assert r.metadata["diagnosis"].lower() not in text.lower() or r.metadata["diagnosis"] == "healthy"


def test_the_folder_reloads_with_the_teacher_as_installed_and_the_last_steps_weights(run):
    root, result = run
    final = root / "out" / "final"
    model = AutoModel.from_pretrained(final).eval()
    assert type(model) is AcuLaModel
    teacher = AutoModel.from_pretrained(text_tower_path("minilm")).state_dict()
    mine = model.text_model.state_dict()
    assert all(torch.equal(v, mine[k]) for k, v in teacher.items())
    # the saved weights are the last step's (exact); recall itself is not compared: after 4 steps the embeddings of
    # a few recordings nearly tie, and a thread count changes which of two near-equal reports ranks first
    last = load_file(root / "out" / "checkpoints" / "step_00000004" / "model.safetensors")
    saved = model.state_dict()
    assert last.keys() <= saved.keys() and all(torch.equal(saved[k], v) for k, v in last.items())
    assert any(not torch.equal(last[k], v) for k, v in load_file(root / "out" / "checkpoints" / "step_00000002" /
                                                                  "model.safetensors").items())  # fmt: skip
    processor = AcuLaProcessor.from_pretrained(final)
    scores = audio_report_scores(model, acula_rows(model, processor, root / "data", "valid"))
    assert scores.keys() == {k[len("eval_") :] for k in result if k.startswith("eval_")}
    assert result["step"] == 4 and result["loss"] > 0


def test_fresh_heads_are_the_same_in_every_run(tmp_path):
    """make_accelerator seeds torch before the model is built: two runs of the same arguments start from the same
    heads (they once did not, and two main-job runs of one commit trained different models)."""
    from modeling_speechct.training.acula_training import AcuLaArguments, build_acula
    from modeling_speechct.training.loop import make_accelerator

    heads = []
    for seed in (0, 0, 1):
        args = AcuLaArguments(output_dir=str(tmp_path), seed=seed)
        torch.manual_seed(1234 + len(heads))  # whatever the global state was before the run
        make_accelerator(args, log=False)
        model, _ = build_acula(args)
        heads.append(model.audio_projection[0].weight.detach().clone())
    assert torch.equal(heads[0], heads[1]) and not torch.equal(heads[0], heads[2])
