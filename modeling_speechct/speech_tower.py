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
import torch
from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

from .speech_corpus import CTC_VOCAB

SAMPLING_RATE = 16000


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


__all__ = [
    "SAMPLING_RATE",
    "augment",
    "build_ctc_processor",
    "character_error_rate",
    "ctc_loss_batch",
    "small_ctc_config",
    "transcribe",
]
