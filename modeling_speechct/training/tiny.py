"""Tiny tower configs: a whole SpeechCT-CLIP or SpeechCLIP in ~100k parameters for tests, smoke runs and benchmarks."""

from __future__ import annotations

from typing import Any

from transformers import BertConfig, CLIPConfig, HubertConfig, PreTrainedConfig, Wav2Vec2Config, WhisperConfig

from ..configuration_ct_vit import CTViTConfig
from ..configuration_speechclip import SpeechClipConfig
from ..configuration_speechct_clip import SpeechCTClipConfig


def tiny_ct_config(**overrides: Any) -> CTViTConfig:
    """32 × 32 in-plane, 8 slices, 8 × 8 × 4 tubelets → a 2 × 4 × 4 token grid."""
    values = dict(
        image_size=32,
        num_slices=8,
        patch_size=8,
        tubelet_size=4,
        hidden_size=32,
        num_attention_heads=4,
        head_dim=8,
        intermediate_size=48,
        num_spatial_layers=1,
        num_temporal_layers=1,
    )
    return CTViTConfig(**{**values, **overrides})


def tiny_speech_config(kind: str = "hubert", **overrides: Any) -> PreTrainedConfig:
    """A two-layer audio encoder: `hubert` / `wav2vec2` take 16 kHz waveforms (10× downsampling), `whisper` 16-bin
    log-mel frames (a fixed 40-frame window)."""
    if kind == "whisper":
        values = dict(
            d_model=32,
            encoder_layers=2,
            encoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_layers=1,
            decoder_attention_heads=4,
            decoder_ffn_dim=64,
            num_mel_bins=16,
            max_source_positions=20,
        )
        return WhisperConfig(**{**values, **overrides})
    waveform = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer",
        vocab_size=32,
    )
    classes = {"hubert": HubertConfig, "wav2vec2": Wav2Vec2Config}
    if kind not in classes:
        raise ValueError(f"tiny_speech_config: kind {kind!r} is not one of {['whisper', *classes]}")
    return classes[kind](**{**waveform, **overrides})


def tiny_text_config(**overrides: Any) -> BertConfig:
    values = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    return BertConfig(**{**values, **overrides})


def tiny_speechct_config(speech: str = "hubert", **overrides: Any) -> SpeechCTClipConfig:
    """A full tiny model; waveform towers get 20 ms windows with 5 ms overlap so window logic runs on short clips."""
    values: dict[str, Any] = dict(
        ct_config=tiny_ct_config(),
        speech_config=tiny_speech_config(speech),
        text_config=tiny_text_config(),
        projection_dim=16,
        speech_pooling_heads=4,
        speech_window_seconds=0.02,
        speech_window_overlap_seconds=0.005,
    )
    return SpeechCTClipConfig(**{**values, **overrides})


def tiny_clip_config(**overrides: Any) -> CLIPConfig:
    """A one-layer CLIP over 32 × 32 images (8 × 8 patches) and a 60-subword vocabulary ([SOT] 58, [EOT] 59)."""
    text = dict(vocab_size=60, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                max_position_embeddings=16, bos_token_id=58, eos_token_id=59, pad_token_id=0)  # fmt: skip
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=32,
                  patch_size=8)  # fmt: skip
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16, **overrides)


def tiny_speechclip_config(mode: str = "parallel", speech: str = "hubert", **overrides: Any) -> SpeechClipConfig:
    """A whole tiny SpeechCLIP in `mode`, 4 keywords, CIF firing every 2 frames' worth of target."""
    values: dict[str, Any] = dict(
        speech_config=tiny_speech_config(speech),
        clip_config=tiny_clip_config(),
        mode=mode,
        num_heads=4,
        num_keywords=4,
        cif_max_tokens=10,
        cif_frames_per_token=2.0,
    )
    return SpeechClipConfig(**{**values, **overrides})


def tiny_clip_tokenizer():
    """A CLIP BPE tokenizer over `tiny_clip_config`'s 60 ids: single letters (0–25), word-final letters (26–51), six
    merges ("re", "red</w>", "bl", "blu", "blue</w>", "on"), [SOT] 58, [EOT] 59 (also padding)."""
    from transformers import CLIPTokenizer

    letters = [chr(ord("a") + i) for i in range(26)]
    vocab = {c: i for i, c in enumerate(letters)} | {f"{c}</w>": 26 + i for i, c in enumerate(letters)}
    merges = [("r", "e"), ("re", "d</w>"), ("b", "l"), ("bl", "u"), ("blu", "e</w>"), ("o", "n")]
    vocab |= {"".join(pair): 52 + i for i, pair in enumerate(merges)}
    vocab |= {"<|startoftext|>": 58, "<|endoftext|>": 59}
    return CLIPTokenizer(vocab=vocab, merges=merges)


def tiny_speechclip_processor():
    """Feature extractor for the tiny waveform towers, a 32-pixel CLIP image processor, `tiny_clip_tokenizer`."""
    from transformers import Wav2Vec2FeatureExtractor

    from ..processing_speechclip import SpeechClipProcessor
    from .scenes_clip import clip_image_processor

    images = clip_image_processor(32)
    speech = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    return SpeechClipProcessor(speech, images, tiny_clip_tokenizer())
