"""Voice-native zero-shot evaluation end to end: a built benchmark, spoken prompts, `eval/zero_shot.py` as users run
it, and every probability it writes recomputed independently (float64, one recording at a time)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark
from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.labels import CT_RATE_LABELS
from modeling_speechct.training.teacher import build_teacher

ROOT = Path(__file__).resolve().parents[1]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_spoken_prompt_zero_shot_runs_on_the_benchmark_and_every_score_recomputes(tmp_path):
    data = tmp_path / "bench"
    build_benchmark(
        BuildConfig(out=data, num_volumes=16, seed=5, shape=(24, 48, 48), valid_fraction=0.25, test_fraction=0.25),
        progress=False,
    )
    torch.manual_seed(0)
    model, processor = build_teacher("benchmark", "minilm", "projection", 64, 128, "shipped")
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    out = tmp_path / "eval"
    command = [sys.executable, str(ROOT / "eval" / "zero_shot.py"), "--model", str(tmp_path / "model"),
               "--data_dir", str(data), "--cache_dir", str(tmp_path / "cache"), "--modality", "speech",
               "--num_voices", "2", "--n_resamples", "50", "--output_dir", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp_path)

    result = json.loads((out / "zero_shot.json").read_text())
    rows = list(load_ct_rate(data, "test", require_speech=False))
    truth = np.array([r["labels"] for r in rows])
    assert result["modality"] == "speech" and result["data"]["volumes"] == len(rows) == 4
    defined = [j for j in range(18) if 0 < truth[:, j].sum() < len(rows)]
    assert sorted(result["auroc"]["excluded"]) == sorted(CT_RATE_LABELS[j] for j in range(18) if j not in defined)
    assert all(result["auroc"]["per_label"][j] is None for j in range(18) if j not in defined)
    assert "note" in result["auroc"]

    # The prompts were spoken: 18 labels × 2 sides × 2 voices, audible, and the two voices differ.
    wavs = sorted((out / "spoken_prompts").glob("*.wav"))
    assert len(wavs) == 18 * 2 * 2
    first, second = (sf.read(out / "spoken_prompts" / f"000_present_{v}.wav")[0] for v in (0, 1))
    assert np.abs(first).max() > 0.05 and (len(first) != len(second) or not np.allclose(first, second))

    # Independent recomputation: each recording encoded alone, voices averaged, softmax over the pair in float64.
    model = SpeechCTClipModel.from_pretrained(tmp_path / "model").eval()
    processor = SpeechCTClipProcessor.from_pretrained(tmp_path / "model")
    with torch.no_grad():

        def spoken(label: int, side: str) -> np.ndarray:
            voices = []
            for v in range(2):
                audio, rate = sf.read(out / "spoken_prompts" / f"{label:03d}_{side}_{v}.wav", dtype="float32")
                inputs = processor(audio=[audio], sampling_rate=rate)
                embed = model.get_speech_features(inputs["speech_values"], inputs.get("speech_attention_mask"))
                voices.append(embed.pooler_output[0].double().numpy())
            return _unit(np.mean(_unit(np.stack(voices)), axis=0))

        prompts = np.stack([[spoken(j, "present"), spoken(j, "absent")] for j in range(18)])  # (18, 2, dim)
        volumes = [processor(ct=[r["volume"]], ct_kwargs={"is_hu": True})["ct_values"] for r in rows]
        ct = np.stack([model.get_ct_features(v).pooler_output[0].double().numpy() for v in volumes])
        scale = model.speech_logit_scale.exp().double().item()
    logits = scale * np.einsum("vd,lsd->vls", _unit(ct), prompts)
    expected = np.exp(logits[..., 0]) / np.exp(logits).sum(-1)

    with open(out / "zero_shot_scores.csv") as f:
        scores = list(csv.DictReader(f))
    assert len(scores) == len(rows) * 18
    names = [r["volume_name"] for r in rows]
    written = np.zeros_like(expected)
    for s in scores:
        written[names.index(s["VolumeName"]), CT_RATE_LABELS.index(s["label"])] = float(s["p_present"])
        assert int(s["truth"]) == truth[names.index(s["VolumeName"]), CT_RATE_LABELS.index(s["label"])]
    # The evaluation reads volumes from the float16 cache of preprocessed values, hence the tolerance.
    np.testing.assert_allclose(written, expected, atol=2e-3)
    assert (out / "roc_curves.png").stat().st_size > 1000
