"""AcuLaProcessor: recordings and clinical reports → AcuLaModel's keyword arguments."""

from __future__ import annotations

import json
from typing import Any

from transformers import AutoTokenizer, BatchFeature, ProcessorMixin
from transformers.utils import cached_file

from .audio_io import load_recordings
from .feature_extraction_acula import AcuLaFeatureExtractor
from .processing_speechct_clip import LOADER_KWARGS, PROCESSOR_FILE


class AcuLaProcessor(ProcessorMixin):
    r"""
    Wraps an [`AcuLaFeatureExtractor`] (8 s, 16 kHz, 64-bin log-mel) and the teacher's tokenizer.

    `processor(audio=..., text=..., sampling_rate=...)`: audio (paths via soundfile, or arrays with their rate) is
    read, mixed to mono, checked (empty, silent, NaN, implausible rate; then too short or clipped) and resampled to
    16 kHz → `input_features`; reports → `input_ids` / `attention_mask`, truncated at `max_text_length` (the
    paper's 128 tokens).
    """

    def __init__(self, feature_extractor: AcuLaFeatureExtractor, tokenizer: Any, max_text_length: int = 128,
                 **kwargs: Any):  # fmt: skip
        self.max_text_length = max_text_length
        super().__init__(feature_extractor, tokenizer, **kwargs)

    def __call__(self, audio: Any = None, text: str | list[str] | None = None,
                 sampling_rate: int | list[int] | None = None, return_tensors: str | None = "pt",
                 **text_kwargs: Any) -> BatchFeature:  # fmt: skip
        if audio is None and text is None:
            raise ValueError("Give at least one of `audio` or `text`.")
        data: dict[str, Any] = {}
        if audio is not None:
            target = int(self.feature_extractor.sampling_rate)
            waves = load_recordings(audio, sampling_rate, target)
            data.update(self.feature_extractor(waves, sampling_rate=target, return_tensors=return_tensors))
        if text is not None:
            options = {"padding": True, "truncation": True, "max_length": self.max_text_length, **text_kwargs}
            encoded = self.tokenizer(text, return_tensors=return_tensors, **options)
            data.update({k: encoded[k] for k in ("input_ids", "attention_mask")})
        return BatchFeature(data)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs: Any) -> AcuLaProcessor:
        """Read `processor_config.json` and the tokenizer files; the extractor resolves to this module's class
        installed or as remote code."""
        hub_kwargs = {k: kwargs.pop(k) for k in ("cache_dir", "revision", "token", "local_files_only", "subfolder")
                      if k in kwargs}  # fmt: skip
        trust_remote_code = kwargs.pop("trust_remote_code", None)
        for key in LOADER_KWARGS:
            kwargs.pop(key, None)
        with open(cached_file(pretrained_model_name_or_path, PROCESSOR_FILE, **hub_kwargs), encoding="utf-8") as f:
            config = json.load(f)
        extractor = dict(config.pop("feature_extractor"))
        for key in ("feature_extractor_type", "processor_class", "auto_map"):
            extractor.pop(key, None)
        tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path, trust_remote_code=trust_remote_code,
                                                  **hub_kwargs)  # fmt: skip
        settings = {k: v for k, v in config.items() if k == "max_text_length"}
        return cls(AcuLaFeatureExtractor(**extractor), tokenizer, **settings, **kwargs)


__all__ = ["AcuLaProcessor"]
