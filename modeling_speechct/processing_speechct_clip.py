"""SpeechCTClipProcessor: CT volumes, recordings and reports → the exact keyword arguments of the model, one call."""

from __future__ import annotations

import json
from typing import Any

from transformers import AutoFeatureExtractor, AutoTokenizer, BatchFeature, ProcessorMixin
from transformers.utils import cached_file

from .audio_io import audio_features
from .feature_extraction_ct import CTFeatureExtractor

PROCESSOR_FILE = "processor_config.json"
LOADER_KWARGS = ("_from_auto", "_from_pipeline", "_commit_hash", "code_revision", "dtype", "torch_dtype", "device_map")


class SpeechCTClipProcessor(ProcessorMixin):
    r"""
    Wraps a [`CTFeatureExtractor`], the speech tower's own feature extractor (Whisper log-mel, wav2vec 2.0 / HuBERT
    waveform normalisation, …) and the text tower's tokenizer.

    `processor(ct=..., audio=..., text=..., sampling_rate=..., return_tensors="pt")` accepts any subset of the three
    modalities, one item or a list; the returned keys (`ct_values`, `speech_values`, `speech_attention_mask`,
    `input_ids`, `attention_mask`) go straight into [`SpeechCTClipModel`]. Audio is read (paths via soundfile), mixed
    to mono, resampled to the speech tower's rate and kept whole: the model cuts long audio into windows itself.
    """

    def __init__(
        self,
        ct_feature_extractor: CTFeatureExtractor,
        feature_extractor: Any,
        tokenizer: Any,
        max_text_length: int = 512,
        **kwargs: Any,
    ):
        self.max_text_length = max_text_length
        super().__init__(ct_feature_extractor, feature_extractor, tokenizer, **kwargs)

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def __call__(
        self,
        ct: Any = None,
        audio: Any = None,
        text: str | list[str] | None = None,
        sampling_rate: int | list[int] | None = None,
        return_tensors: str | None = "pt",
        ct_kwargs: dict[str, Any] | None = None,
        **text_kwargs: Any,
    ) -> BatchFeature:
        """`ct_kwargs` go to the CT feature extractor (spacing, affine, rescale_slope, series_uid, num_workers, …);
        further keyword arguments go to the tokenizer (defaults: pad to the longest, truncate at `max_text_length`)."""
        if ct is None and audio is None and text is None:
            raise ValueError("Give at least one of `ct`, `audio` or `text`.")
        data: dict[str, Any] = {}
        if ct is not None:
            data.update(self.ct_feature_extractor(ct, return_tensors=return_tensors, **(ct_kwargs or {})))
        if audio is not None:
            data.update(self.process_audio(audio, sampling_rate, return_tensors))
        if text is not None:
            options = {"padding": True, "truncation": True, "max_length": self.max_text_length, **text_kwargs}
            encoded = self.tokenizer(text, return_tensors=return_tensors, **options)
            data.update({k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")})
        return BatchFeature(data)

    def process_audio(self, audio: Any, sampling_rate: int | list[int] | None, return_tensors: str | None) -> dict:
        """Recordings → mono at the tower's rate → the tower's feature extractor, padded to the longest, untruncated."""
        return audio_features(self.feature_extractor, audio, sampling_rate, return_tensors)

    # ------------------------------------------------------------------------------------------------ building

    @classmethod
    def from_tower_pretrained(
        cls, *, speech: str, text: str, ct: str | None = None, **kwargs: Any
    ) -> SpeechCTClipProcessor:
        """The processor for `SpeechCTClipModel.from_tower_pretrained` with the same checkpoints (a `ct` folder with
        a CT feature extractor, or CT-CLIP's defaults)."""
        ct_extractor = CTFeatureExtractor.from_pretrained(ct) if ct else CTFeatureExtractor()
        return cls(
            ct_extractor, AutoFeatureExtractor.from_pretrained(speech), AutoTokenizer.from_pretrained(text), **kwargs
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs: Any) -> SpeechCTClipProcessor:
        """Read `processor_config.json` (the two feature extractors and our settings) and the tokenizer files.

        Done here rather than by `ProcessorMixin`'s generic loader so that the secondary CT extractor resolves to this
        module's class in every supported transformers release, installed or loaded as remote code."""
        hub_kwargs = {
            k: kwargs.pop(k) for k in ("cache_dir", "revision", "token", "local_files_only", "subfolder") if k in kwargs
        }
        trust_remote_code = kwargs.pop("trust_remote_code", None)
        for key in LOADER_KWARGS:  # what AutoProcessor and `pipeline()` pass to every processor: not settings of ours
            kwargs.pop(key, None)
        config_path = cached_file(pretrained_model_name_or_path, PROCESSOR_FILE, **hub_kwargs)
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        ct_config = dict(config.pop("ct_feature_extractor"))
        speech_config = dict(config.pop("feature_extractor"))
        speech_class = getattr(__import__("transformers"), speech_config.pop("feature_extractor_type"))
        for key in ("feature_extractor_type", "processor_class", "auto_map"):
            ct_config.pop(key, None)
        # The folder's config.json maps to remote code: pass the caller's consent on, or the tokenizer's own config
        # lookup asks for it again (an interactive prompt under `trust_remote_code=True`).
        tokenizer = AutoTokenizer.from_pretrained(
            pretrained_model_name_or_path, trust_remote_code=trust_remote_code, **hub_kwargs
        )
        settings = {k: v for k, v in config.items() if k in ("max_text_length",)}
        return cls(CTFeatureExtractor(**ct_config), speech_class(**speech_config), tokenizer, **settings, **kwargs)


__all__ = ["SpeechCTClipProcessor"]
