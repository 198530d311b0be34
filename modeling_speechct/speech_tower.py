"""A small CTC speech encoder that can be pretrained on a CPU: configuration, processor, augmentation, decoding.

The architecture is transformers' `Wav2Vec2ForCTC` with a lean convolutional front-end (four layers, 320× down to
50 frames per second) and a 6-layer, 192-wide pre-LN transformer: about 3 M parameters (12 MB in float32), so it
trains at roughly 45 seconds of audio per second on 2 cores. Being a plain Wav2Vec2 it is a speech tower of
`SpeechCTClipModel` as it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

from .audio_io import resample
from .speech_corpus import CTC_VOCAB, transcript
from .tts import get_backend, plan_speech, synthesize_all

SAMPLING_RATE = 16000
# The pretrained tower shipped inside the package (see its README for how it was made and how well it hears).
SHIPPED_SPEECH_TOWER = Path(__file__).parent / "pretrained" / "speech-ctc-small"


def small_ctc_config(**overrides) -> Wav2Vec2Config:
    values = dict(
        vocab_size=len(CTC_VOCAB),
        pad_token_id=0,
        hidden_size=192,
        num_hidden_layers=6,
        num_attention_heads=4,
        intermediate_size=768,
        conv_dim=(64, 128, 128),
        conv_stride=(10, 4, 8),
        conv_kernel=(20, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=8,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
        mask_time_prob=0.05,
        mask_time_length=5,
        layerdrop=0.0,
    )
    return Wav2Vec2Config(**{**values, **overrides})


def build_ctc_processor(directory: str | os.PathLike) -> Wav2Vec2Processor:
    """Character tokenizer over `CTC_VOCAB` (blank = pad = 0, "|" between words) + waveform normaliser."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(CTC_VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(directory / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    return Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)


def augment(wave: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random gain (±6 dB), reverberation (a synthetic exponentially decaying room response, RT60 0.1–0.6 s, on
    half the clips) and additive white noise at 10–40 dB SNR: the recordings TTS alone never produces."""

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    if float(torch.rand((), generator=generator)) < 0.5:
        rt60 = uniform(0.1, 0.6)
        length = int(rt60 * SAMPLING_RATE)
        decay = torch.exp(-6.9 * torch.arange(length) / length)
        response = torch.randn(length, generator=generator) * decay
        response[0] = 1.0
        response = response / response.norm()
        import torchaudio.functional as AF

        wave = AF.fftconvolve(wave, response)[: wave.shape[0]]  # FFT: a 0.6 s response has 9,600 taps
    wave = wave * 10 ** (uniform(-6, 6) / 20)
    power = wave.pow(2).mean().clamp(min=1e-10)
    snr = uniform(10, 40)
    return wave + torch.randn(wave.shape, generator=generator) * torch.sqrt(power / 10 ** (snr / 10))


@torch.no_grad()
def transcribe(model, processor: Wav2Vec2Processor, audio: Sequence[np.ndarray], batch_size: int = 16) -> list[str]:
    """Greedy CTC decoding of 16 kHz waveforms (repeats merged, blanks dropped)."""
    was_training = model.training
    model.eval()
    texts: list[str] = []
    for start in range(0, len(audio), batch_size):
        batch = processor(
            list(audio[start : start + batch_size]), sampling_rate=SAMPLING_RATE, padding=True, return_tensors="pt"
        )
        logits = model(batch["input_values"], attention_mask=batch["attention_mask"]).logits
        texts.extend(processor.batch_decode(logits.argmax(dim=-1)))
    model.train(was_training)
    return texts


def ctc_loss_batch(model, waves: list[torch.Tensor], labels: list[list[int]]) -> torch.Tensor:
    """Normalise each clip (zero mean, unit variance, as the feature extractor does), pad, and compute CTC loss."""
    lengths = torch.tensor([w.shape[0] for w in waves])
    values = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        values[i, : w.shape[0]] = (w - w.mean()) / torch.sqrt(w.var() + 1e-7)
    mask = (torch.arange(values.shape[1])[None] < lengths[:, None]).long()
    target = torch.full((len(labels), max(map(len, labels))), -100, dtype=torch.long)
    for i, ids in enumerate(labels):
        target[i, : len(ids)] = torch.tensor(ids)
    return model(values, attention_mask=mask, labels=target).loss


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[float, float]:
    """(CER, WER) over the whole set, with jiwer (Levenshtein over characters / words)."""
    import jiwer

    return float(jiwer.cer(list(references), list(hypotheses))), float(jiwer.wer(list(references), list(hypotheses)))


def load_speech_tower(path: str | os.PathLike | None = None):
    """`(Wav2Vec2ForCTC, Wav2Vec2Processor)` from `path`, by default the tower shipped with the package."""
    from transformers import Wav2Vec2ForCTC

    path = Path(path) if path is not None else SHIPPED_SPEECH_TOWER
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no speech tower (config.json missing).")
    return Wav2Vec2ForCTC.from_pretrained(path), Wav2Vec2Processor.from_pretrained(path)


# Voices never heard in pretraining, to measure how the tower generalises to new speakers.
HELD_OUT = {"espeak": ["en-gb-scotland", "en-us+m7"], "flite": ["rms"]}
FLITE_TRAIN = ["kal16", "slt", "awb"]  # "kal" is kal16 at 8 kHz


def training_voices(held_out: bool = False) -> dict[str, list[str]]:
    espeak = get_backend("espeak").voices()
    if held_out:
        return HELD_OUT
    return {"espeak": [v for v in espeak if v not in HELD_OUT["espeak"]], "flite": FLITE_TRAIN}


def speak(texts: list[str], folder: Path, seed: int, held_out: bool, workers: int = 2) -> list[np.ndarray]:
    """Speak `texts` with espeak-ng and flite in the training (or held-out) voices — cached in `folder`, so a re-run
    only loads — and return 16 kHz float32 waveforms."""
    paths = [folder / f"{i:06d}.wav" for i in range(len(texts))]
    synthesize_all(
        plan_speech(list(zip(texts, paths, strict=True)), ["espeak", "flite"], seed, training_voices(held_out)), workers
    )
    waves = []
    for path in paths:
        audio, rate = sf.read(path, dtype="float32")
        waves.append(resample(audio, rate, SAMPLING_RATE).astype(np.float32))
    return waves


def evaluate(model, processor, waves, texts) -> dict[str, float]:
    """CER and WER of greedy decoding against the texts' transcripts."""
    hypotheses = transcribe(model, processor, waves)
    cer, wer = character_error_rate([transcript(t) for t in texts], hypotheses)
    return {"cer": cer, "wer": wer}


__all__ = [
    "SAMPLING_RATE",
    "augment",
    "build_ctc_processor",
    "character_error_rate",
    "ctc_loss_batch",
    "evaluate",
    "load_speech_tower",
    "small_ctc_config",
    "speak",
    "training_voices",
    "transcribe",
]
