"""Voice robustness on a tiny model and a tiny benchmark: every figure recomputed independently (float64, sklearn,
the model run one recording at a time), Piper really speaks the held-out wavs, a rerun reuses the cached speech,
and bad input is refused by name before anything is spoken."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.metrics import roc_auc_score
from tiny_folder import tiny_model, tiny_processor

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.data import tts
from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark
from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.data.speech_manifest import read_speech_manifest, write_speech_manifest
from modeling_speechct.data.tts_engines import PiperBackend
from modeling_speechct.evaluation.voice_robustness import RobustnessConfig, run_voice_robustness
from modeling_speechct.training.tiny import tiny_speechct_config
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
N = 7  # of the 8 test reports: zero-shot uses all 8 volumes, the demo's gallery the first 7 (top 5 is not all)


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("voices")
    build = BuildConfig(out=root / "bench", num_volumes=16, seed=5, shape=(24, 48, 48), valid_fraction=0.125,
                        test_fraction=0.5, max_fillers=0)  # fmt: skip
    build_benchmark(build, progress=False)
    # As the benchmark's students: the lower speech layers frozen, so the evaluation's cached-prefix path runs
    # (0.1 s windows: the prefix is computed window by window, and reports last half a minute).
    config = tiny_speechct_config(speech_trainable_layers=1, speech_logit_scale_init_value=2.0,
                                  speech_window_seconds=0.1, speech_window_overlap_seconds=0.02)  # fmt: skip
    model = SpeechCTClipModel(config)
    model.save_pretrained(root / "model")
    tiny_processor().save_pretrained(root / "model")
    config = RobustnessConfig(model=root / "model", data_dir=build.out, output_dir=root / "out", num_reports=N,
                              demo_reports=N, cache_dir=root / "cache", prompt_voices=1, prompts="template",
                              n_resamples=200, seed=3, workers=1, progress=False)  # fmt: skip
    return config, run_voice_robustness(config, command="pytest")


@pytest.fixture(scope="module")
def tiny(run):
    config, _ = run
    return SpeechCTClipModel.from_pretrained(config.model).eval(), SpeechCTClipProcessor.from_pretrained(config.model)


def _ranks(queries, gallery):
    """1-based rank of each query's own item, ties counted against it, by plain loops."""
    sim = _unit(queries) @ _unit(gallery).T
    return np.array([1 + sum(sim[i, j] >= sim[i, i] for j in range(len(gallery)) if j != i) for i in range(len(sim))])


def _bootstrap(values, n_resamples, seed):
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_resamples)]
    return np.percentile(means, [2.5, 97.5])


def test_report_figures_match_an_independent_float64_computation(run):
    config, record = run
    data = np.load(config.output_dir / "voice_robustness_embeddings.npz")
    figures = record["figures"]
    ct = data["ct"][:N]
    for kind in ("held_out", "training", "training_2"):
        speech = data[f"speech_{kind}"]
        text_ranks, ct_ranks = _ranks(speech, data["text"]), _ranks(speech, ct)
        expected = {
            "speech_text_R@1": np.mean(text_ranks <= 1),
            "speech_text_R@5": np.mean(text_ranks <= 5),
            "speech_text_cosine": np.mean([_unit(s) @ _unit(t) for s, t in zip(speech, data["text"], strict=True)]),
            "speech_ct_R@5": np.mean(ct_ranks <= 5),
            "speech_ct_R@10": np.mean(ct_ranks <= 10),
        }
        for key, value in expected.items():
            assert figures[key][kind]["value"] == pytest.approx(value, abs=1e-12), (kind, key)
    for key in expected:
        figure = figures[key]
        held, trained = figure["held_out"]["value"], figure["training"]["value"]
        assert figure["ratio"]["value"] == (pytest.approx(held / trained) if trained else None)
        assert figure["pass_ratio"] == (trained != 0 and held / trained >= 0.9)
    assert figures["speech_text_R@1"]["chance"] == pytest.approx(1 / N)
    assert figures["speech_ct_R@10"]["chance"] == 1.0  # 10 of 7: every volume
    for key, chance in (("speech_text_R@5", 5 / N), ("speech_ct_R@5", 5 / N)):
        held, trained = (figures[key][k]["value"] for k in ("held_out", "training"))
        above = figures[key]["ratio_above_chance"]
        assert above == (pytest.approx((held - chance) / (trained - chance)) if trained != chance else None)

    # Cross-voice cosines, and one bootstrap interval redrawn by hand (same seed, same draws).
    held = np.sum(_unit(data["speech_held_out"]) * _unit(data["speech_training"]), axis=1)
    trained = np.sum(_unit(data["speech_training"]) * _unit(data["speech_training_2"]), axis=1)
    cosine = figures["cross_voice_cosine"]
    assert cosine["held_out"]["value"] == pytest.approx(held.mean(), abs=1e-12)
    assert cosine["training"]["value"] == pytest.approx(trained.mean(), abs=1e-12)
    assert cosine["pass_cosine"] == (held.mean() >= 0.8)
    np.testing.assert_allclose(cosine["held_out"]["ci95"], _bootstrap(held, 200, config.seed), atol=1e-12)
    np.testing.assert_allclose(cosine["training"]["ci95"], _bootstrap(trained, 200, config.seed), atol=1e-12)
    assert json.loads((config.output_dir / "voice_robustness.json").read_text())["figures"] == figures
    table = (config.output_dir / "voice_robustness.md").read_text()
    assert "| speech → text R@1 (among 7 reports) |" in table and ("PASS" in table or "FAIL" in table)


def test_zero_shot_figure_matches_sklearn_and_the_prompts(run, tiny):
    config, record = run
    model, _ = tiny
    data = np.load(config.output_dir / "voice_robustness_embeddings.npz")
    rows = list(load_ct_rate(config.data_dir, "test", require_speech=False))
    labels = np.array([r["labels"] for r in rows])
    np.testing.assert_array_equal(data["labels"], labels)
    assert record["zero_shot_volumes"] == len(rows) == 8
    scale = float(np.exp(model.speech_logit_scale.detach().double().numpy()))
    for kind in ("held_out", "training"):
        prompts = _unit(data[f"prompts_{kind}"])  # (labels, present/absent, dim)
        logits = scale * np.einsum("vd,lsd->vls", _unit(data["ct"]), prompts)
        probs = np.exp(logits[..., 0]) / np.exp(logits).sum(-1)
        np.testing.assert_allclose(data[f"probs_{kind}"], probs, atol=1e-6)
        defined = [j for j in range(labels.shape[1]) if 0 < labels[:, j].sum() < len(labels)]
        assert defined, "the tiny build must leave some labels with both classes"
        auroc = np.mean([roc_auc_score(labels[:, j], data[f"probs_{kind}"][:, j]) for j in defined])
        assert record["figures"]["zero_shot_auroc"][kind]["value"] == pytest.approx(auroc, abs=1e-12)


def test_embeddings_are_those_of_the_right_recordings(run, tiny):
    """Each saved embedding equals the model run on that one recording (or report, or volume) alone."""
    config, record = run
    model, processor = tiny
    data = np.load(config.output_dir / "voice_robustness_embeddings.npz")
    rows = list(load_ct_rate(config.data_dir, "test"))[:N]
    assert list(data["names"]) == [r["volume_name"] for r in rows] == record["reports"]
    with torch.no_grad():
        for kind in ("held_out", "training_2"):
            for i, row in enumerate(rows):
                wav = config.output_dir / "speech" / kind / row["volume_name"].replace(".nii.gz", ".wav")
                audio, rate = sf.read(wav, dtype="float32")
                inputs = processor(audio=[audio], sampling_rate=rate)
                alone = model.get_speech_features(inputs["speech_values"], inputs.get("speech_attention_mask"))
                np.testing.assert_allclose(_unit(data[f"speech_{kind}"][i]), _unit(alone.pooler_output[0]), atol=2e-3)
        text = model.get_text_features(**processor(text=[rows[2]["findings"]])).pooler_output[0]
        np.testing.assert_allclose(_unit(data["text"][2]), _unit(text), atol=1e-5)
        values = processor(ct=[rows[4]["volume"]], ct_kwargs={"is_hu": True})["ct_values"]
        np.testing.assert_allclose(
            _unit(data["ct"][4]), _unit(model.get_ct_features(values).pooler_output[0]), atol=2e-3
        )


def test_demo_figure_is_the_rank_of_each_reports_own_volume(run, tiny):
    config, record = run
    model, processor = tiny
    rows = list(load_ct_rate(config.data_dir, "test"))[:N]
    with torch.no_grad():
        gallery = np.stack([
            model.get_ct_features(processor(ct=[r["volume"]])["ct_values"]).pooler_output[0].double().numpy()
            for r in rows
        ])  # fmt: skip
        for kind in ("held_out", "training"):
            wavs = [
                config.output_dir / "speech" / kind / r["volume_name"].replace(".nii.gz", ".wav")
                if kind == "held_out" else Path(r["speech"]) for r in rows
            ]  # fmt: skip
            positions = []
            for i, wav in enumerate(wavs):
                inputs = processor(audio=[str(wav)])
                query = model.get_speech_features(inputs["speech_values"], inputs.get("speech_attention_mask"))
                scores = _unit(gallery) @ _unit(query.pooler_output[0].double().numpy())
                position = 1 + int(np.sum(scores > scores[i]))
                positions.append(position if position <= 5 else None)
            assert record["demo_positions"][kind] == positions
            hits = np.mean([p is not None for p in positions])
            assert record["figures"]["demo_top5"][kind]["value"] == pytest.approx(hits, abs=1e-12)
    assert record["figures"]["demo_top5"]["chance"] == pytest.approx(5 / N)


def test_held_out_wavs_are_spoken_by_piper_and_training_voices_by_training_engines(run):
    config, record = run
    speech = config.output_dir / "speech"
    held = read_speech_manifest(speech / "held_out" / "speech_manifest.csv")
    assert len(held) == N and {(r.backend, r.voice, r.split) for r in held} == {("piper", "en_US-joe-medium", "test")}
    assert record["voices"]["held_out"]["backends"] == {"piper": N}
    # The cached wav is Piper's: Piper re-speaks it, with the recorded rate, byte for byte.
    row = held[3]
    again = config.output_dir.parent / "again.wav"
    PiperBackend().synthesize(load_ct_rate(config.data_dir, "test")[3]["findings"], again, row.voice, row.rate)
    assert again.read_bytes() == (speech / "held_out" / row.wav).read_bytes()
    assert sf.info(speech / "held_out" / row.wav).samplerate == PiperBackend.sample_rate

    first = {r.name: r for r in read_speech_manifest(config.data_dir / "dataset" / "speech_manifest.csv")}
    assert record["voices"]["training"]["source"].startswith("benchmark build")
    second = read_speech_manifest(speech / "training_2" / "speech_manifest.csv")
    for other in second:  # another training engine, and so another voice, for every report
        assert other.backend in ("espeak", "flite") and first[other.name].backend in ("espeak", "flite")
        assert other.backend != first[other.name].backend and other.voice != first[other.name].voice
    assert record["prompt_engines"]["held_out"] == ["piper"]
    prompts = sorted((config.output_dir / "prompts" / "held_out").glob("*.wav"))
    assert len(prompts) == 18 * 2 and {sf.info(p).samplerate for p in prompts} == {22050}


def test_a_rerun_reuses_the_cached_speech(run, monkeypatch):
    config, record = run
    speech = config.output_dir / "speech"
    wavs = sorted(speech.rglob("*.wav")) + sorted((config.output_dir / "prompts").rglob("*.wav"))
    before = {p: p.stat().st_mtime_ns for p in wavs}
    deleted = speech / "held_out" / f"{record['reports'][1].removesuffix('.nii.gz')}.wav"
    deleted.unlink()
    # A cached wav whose manifest row names another voice is not this plan's: it is spoken again.
    manifest = speech / "training_2" / "speech_manifest.csv"
    rows = read_speech_manifest(manifest)
    write_speech_manifest(manifest, [replace(rows[0], voice="other"), *rows[1:]])
    stale = speech / "training_2" / rows[0].wav

    spoken, original = [], tts._speak
    monkeypatch.setattr(tts, "_speak", lambda job: spoken.append(Path(job.path)) or original(job))
    again = run_voice_robustness(config, command="pytest")
    assert sorted(spoken) == sorted([deleted, stale])
    for path, mtime in before.items():
        if path not in (deleted, stale):
            assert path.stat().st_mtime_ns == mtime, path
    assert again["figures"] == record["figures"]  # the engines are deterministic: the same wavs, the same figures
    assert read_speech_manifest(manifest) == rows


def _config(run, **changes):
    config, _ = run
    return replace(config, output_dir=config.output_dir.parent / "bad", **changes)


@pytest.mark.parametrize(
    ("changes", "error", "pattern"),
    [
        ({"model": Path("/nowhere/model")}, FileNotFoundError, r"model /nowhere/model: not a SpeechCT-CLIP folder"),
        ({"num_reports": 99}, ValueError, r"num_reports=99 is larger than the test split .*\(8 reports\)"),
        ({"split": "tset"}, ValueError, r"split 'tset' is not one of \('train', 'valid', 'test'\)"),
        ({"demo_reports": 9}, ValueError, r"demo_reports must lie in \[1, num_reports=7\]"),
        ({"held_out_engine": "espeak"}, ValueError, r"held-out engine 'espeak' is not one of"),
        ({"training_engines": ("espeak", "piper")}, ValueError, r"training voices.*'piper' is held out"),
    ],
)
def test_bad_input_is_refused_by_name_before_anything_is_spoken(run, changes, error, pattern):
    config = _config(run, **changes)
    with pytest.raises(error, match=pattern):
        run_voice_robustness(config)
    assert not config.output_dir.exists()


def test_command_line_reports_bad_input_as_a_message(run):
    cli = load_script("eval/voice_robustness.py")
    config, _ = run
    with pytest.raises(SystemExit, match=r"voice_robustness: num_reports=50 is larger than the test split"):
        cli.main(["--model", str(config.model), "--data_dir", str(config.data_dir), "--num_reports", "50",
                  "--output_dir", str(config.output_dir.parent / "cli")])  # fmt: skip


def test_a_tower_that_trains_whole_is_embedded_from_the_recordings(run, tmp_path):
    """No frozen prefix to cache: the recordings go through the whole tower, batched, as one at a time would."""
    from modeling_speechct.evaluation.voice_robustness import speech_features

    config, _ = run
    whole, processor = tiny_model(), tiny_processor()
    assert whole.config.speech_trainable_layers is None and not whole.config.freeze_speech
    wavs = [str(p) for p in sorted((config.output_dir / "speech" / "held_out").glob("*.wav"))[:3]]
    with torch.no_grad():
        batched = speech_features(whole, processor, wavs, tmp_path / "cache")
        for i, wav in enumerate(wavs):
            inputs = processor(audio=[wav])
            alone = whole.get_speech_features(inputs["speech_values"], inputs.get("speech_attention_mask"))
            np.testing.assert_allclose(_unit(batched[i]), _unit(alone.pooler_output[0]), atol=1e-4)
    assert not (tmp_path / "cache").exists()
