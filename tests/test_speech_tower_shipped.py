"""The speech tower shipped inside the package (`SHIPPED_SPEECH_TOWER`, written by `train/ship_speech_tower.py`):
its files and card, loading it alone and as `SpeechCTClipModel`'s speech tower, and how well it hears sentences it
never trained on, against the error rate its own card reports."""

import hashlib
import json
import tomllib
from importlib.metadata import version as version_of
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open
from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.data.speech_corpus import CTC_VOCAB, sentence_pool, transcript
from modeling_speechct.training.speech_tower import (
    HELD_OUT,
    MAX_SHIPPED_MB,
    SAMPLING_RATE,
    SHIPPED_SPEECH_TOWER,
    character_error_rate,
    load_speech_tower,
    speak,
    training_voices,
    transcribe,
)
from modeling_speechct.training.tiny import tiny_ct_config, tiny_text_config

FRESH_SEED = 20261122  # the sentences and voice draws of the listening test
FRESH_SENTENCES = 12
# Allowed excess of the measured CER over the card's seen-voice CER. The card's figure is over 200 sentences spoken by
# espeak-ng and flite; here 12 espeak-ng sentences are heard, so sampling alone moves the CER by a few points (blocks
# of 12 such sentences ranged over ±0.05 around their mean for a tower with CER 0.45). An untrained or broken tower
# (CER near 1) is far beyond it.
CER_TOLERANCE = 0.10
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGE = SHIPPED_SPEECH_TOWER.parents[1]


def _metrics() -> dict:
    return json.loads((SHIPPED_SPEECH_TOWER / "metrics.json").read_text())


@pytest.fixture(scope="module")
def tower():
    return load_speech_tower()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@pytest.fixture(scope="module")
def training_pool(request) -> set[str]:
    """Digests of the transcripts of every sentence in the run's pool (training and evaluation), from its recorded
    arguments. Drawing the pool renders a phantom per radiology report (tens of seconds), so the digests are kept in
    pytest's cache, keyed by the arguments, the package's source and the generators' library versions."""
    args = json.loads((SHIPPED_SPEECH_TOWER / "training_args.json").read_text())
    count, seed = args["num_sentences"] + args["eval_sentences"], args["seed"]
    source = hashlib.sha256()
    for path in sorted(PACKAGE.glob("*.py")):
        source.update(path.read_bytes())
    for library in ("faker", "num2words", "numpy"):
        source.update(version_of(library).encode())
    key = f"speechct/training_pool/{count}_{seed}_{source.hexdigest()[:16]}"
    cache = getattr(request.config, "cache", None)
    digests = cache.get(key, None) if cache is not None else None
    if digests is None:
        digests = sorted({_digest(transcript(text)) for text, _ in sentence_pool(count, seed)})
        if cache is not None:
            cache.set(key, digests)
    return set(digests)


def test_the_folder_holds_only_small_safetensors_weights_and_inference_files():
    weights = SHIPPED_SPEECH_TOWER / "model.safetensors"
    assert weights.is_file() and weights.stat().st_size <= MAX_SHIPPED_MB * 1e6
    files = [p for p in SHIPPED_SPEECH_TOWER.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= MAX_SHIPPED_MB * 1e6
    assert not [p.name for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
    assert {"config.json", "README.md", "metrics.json", "vocab.json", "tokenizer_config.json"} <= {
        p.name for p in files
    }
    with safe_open(str(weights), framework="pt") as f:
        names = list(f.keys())
        assert all(f.get_slice(n).get_dtype() == "F32" for n in names)
    assert "lm_head.weight" in names and any(n.startswith("wav2vec2.encoder.layers.") for n in names)


def test_the_package_installs_the_shipped_folder():
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["modeling_speechct"]
    matched = {p for pattern in patterns for p in PACKAGE.glob(pattern) if p.is_file()}
    assert {p for p in SHIPPED_SPEECH_TOWER.rglob("*") if p.is_file()} <= matched


def test_the_card_reports_the_run_metrics():
    metrics = _metrics()
    card = ModelCard.load(SHIPPED_SPEECH_TOWER / "README.md")
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "automatic-speech-recognition"
    assert card.data.license == "apache-2.0"
    reported = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert reported == {
        (voices, metric): metrics[voices][metric]
        for voices in ("seen_voices", "unseen_voices")
        for metric in ("cer", "wer")
    }
    for title in ("## Model", "## How it was made", "## Error rates", "## How to use", "## Limitations"):
        assert f"\n{title}\n" in card.text
    table = card.text.split("## Error rates")[1].split("## How to use")[0]
    assert f"| {metrics['seen_voices']['cer']:.1%} |" in table and f"| {metrics['unseen_voices']['cer']:.1%} |" in table
    assert f"**Steps**: {metrics['steps']:,}." in card.text
    assert "from_tower_pretrained(" in card.text and "speech=str(SHIPPED_SPEECH_TOWER)" in card.text


def test_the_card_reports_the_fresh_sentence_evaluation_of_these_weights():
    """`train/eval_speech_tower.py --output` scores ship as fresh_eval.json; the card's fresh table must be those
    scores, of exactly the shipped weights."""
    fresh = json.loads((SHIPPED_SPEECH_TOWER / "fresh_eval.json").read_text())
    weights = (SHIPPED_SPEECH_TOWER / "model.safetensors").read_bytes()
    assert fresh["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    card = ModelCard.load(SHIPPED_SPEECH_TOWER / "README.md").text
    table = card.split("On sentences synthesised afresh")[1].split("## How to use")[0]
    for key in ("training_voices", "held_out_voices"):
        assert f"| {fresh['sentences']:,} | {fresh[key]['cer']:.2%} | {fresh[key]['wer']:.2%} |" in table
    assert fresh["command"] in table


def test_load_speech_tower_reads_the_shipped_folder_by_default(tower, tmp_path):
    model, processor = tower
    assert isinstance(model, Wav2Vec2ForCTC) and isinstance(processor, Wav2Vec2Processor)
    vocab = processor.tokenizer.get_vocab()
    assert [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])][: len(CTC_VOCAB)] == list(CTC_VOCAB)
    assert model.config.vocab_size == len(CTC_VOCAB) and model.config.pad_token_id == 0
    assert processor.feature_extractor.sampling_rate == SAMPLING_RATE
    explicit, _ = load_speech_tower(str(SHIPPED_SPEECH_TOWER))
    direct = Wav2Vec2ForCTC.from_pretrained(SHIPPED_SPEECH_TOWER).state_dict()
    for state in (model.state_dict(), explicit.state_dict()):
        assert state.keys() == direct.keys() and all(torch.equal(state[k], direct[k]) for k in direct)
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_speech_tower(tmp_path)


def test_it_is_the_speech_tower_of_speechct_clip(tower):
    ctc, _ = tower
    top = 2
    model = SpeechCTClipModel.from_tower_pretrained(
        speech=str(SHIPPED_SPEECH_TOWER),
        config_kwargs=dict(
            ct_config=tiny_ct_config(),
            text_config=tiny_text_config(),
            projection_dim=16,
            speech_pooling_heads=4,
            speech_trainable_layers=top,
        ),
    ).eval()
    state, expected = model.speech_model.state_dict(), ctc.wav2vec2.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in expected)

    layers = ctc.config.num_hidden_layers
    trainable = {n for n, p in model.speech_model.named_parameters() if p.requires_grad}
    assert {n.split(".")[2] for n in trainable if n.startswith("encoder.layers.")} == {
        str(i) for i in range(layers - top, layers)
    }
    assert {n for n in trainable if not n.startswith("encoder.layers.")} == {
        "encoder.layer_norm.weight",
        "encoder.layer_norm.bias",
    }

    wave = torch.randn(1, SAMPLING_RATE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hidden = model.speech_model(wave).last_hidden_state
        torch.testing.assert_close(hidden, ctc.eval().wav2vec2(wave).last_hidden_state, rtol=0, atol=0)
        features = model.get_speech_features(wave).pooler_output
    assert features.shape == (1, 16) and torch.isfinite(features).all()


def test_greedy_decoding_of_fresh_sentences_matches_the_card(tower, training_pool, tmp_path):
    candidates = [text for text, _ in sentence_pool(3 * FRESH_SENTENCES, FRESH_SEED)]
    fresh = [text for text in candidates if _digest(transcript(text)) not in training_pool][:FRESH_SENTENCES]
    assert len(fresh) == FRESH_SENTENCES
    assert not set(training_voices()["espeak"]) & set(HELD_OUT["espeak"])  # the voices below are training voices
    waves = speak(fresh, tmp_path, FRESH_SEED, held_out=False, workers=1, backends=("espeak",))
    model, processor = tower
    hypotheses = transcribe(model, processor, waves)
    cer, _ = character_error_rate([transcript(text) for text in fresh], hypotheses)
    reported = _metrics()["seen_voices"]["cer"]
    assert cer <= reported + CER_TOLERANCE, (cer, reported, list(zip(fresh, hypotheses, strict=True))[:3])


def test_save_and_load_round_trip_gives_identical_logits(tower, tmp_path):
    model, processor = tower
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    again, again_processor = Wav2Vec2ForCTC.from_pretrained(tmp_path), Wav2Vec2Processor.from_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    audio = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (12000, 20000)]
    inputs = processor(audio, sampling_rate=SAMPLING_RATE, padding=True, return_tensors="pt")
    inputs_again = again_processor(audio, sampling_rate=SAMPLING_RATE, padding=True, return_tensors="pt")
    assert all(torch.equal(inputs[k], inputs_again[k]) for k in ("input_values", "attention_mask"))
    assert again_processor.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    with torch.no_grad():
        logits = model.eval()(**inputs).logits
        logits_again = again.eval()(**inputs_again).logits
    assert torch.equal(logits, logits_again)
