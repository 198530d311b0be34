"""A tiny random SpeechCT-CLIP folder (model + processor) for pipeline and publishing tests: no downloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import BertTokenizerFast, Wav2Vec2FeatureExtractor

from modeling_speechct import CTFeatureExtractor, SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.labels import CT_RATE_LABELS
from modeling_speechct.training.tiny import tiny_speechct_config

# Every word of the 18 labels and of the prompts is in the vocabulary, so each label's prompts differ.
WORDS = sorted({w for label in CT_RATE_LABELS for w in label.lower().split()} | {"is", "not", "present", "no", "."})


def tiny_processor() -> SpeechCTClipProcessor:
    # transformers 5's BertTokenizer takes the vocabulary itself (`vocab_file=` is read by from_pretrained only).
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    speech = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    return SpeechCTClipProcessor(CTFeatureExtractor(target_shape=(8, 32, 32)), speech, tokenizer)


def tiny_model(seed: int = 0) -> SpeechCTClipModel:
    """HuBERT-style waveform speech tower (20 ms windows), BERT text tower, CT-ViT; a logit scale away from 1 so
    the softmax over each prompt pair is not flat."""
    torch.manual_seed(seed)
    model = SpeechCTClipModel(tiny_speechct_config(logit_scale_init_value=2.5, speech_logit_scale_init_value=2.0))
    return model.eval()


def save_tiny_folder(folder: Path) -> tuple[SpeechCTClipModel, SpeechCTClipProcessor]:
    model, processor = tiny_model(), tiny_processor()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor


def wave(seed: int, seconds: float = 0.1, rate: int = 16000) -> np.ndarray:
    """A short deterministic recording (a chirp plus noise) at `rate`."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (200 + 150 * seed) * t * (1 + t)) + 0.05 * rng.normal(size=t.size)).astype(
        np.float32
    )
