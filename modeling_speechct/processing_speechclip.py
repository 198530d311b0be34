"""SpeechClipProcessor: recordings, images and captions → SpeechClipModel's keyword arguments; keywords → words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from transformers import BatchFeature, ProcessorMixin

from .audio_io import audio_features


class SpeechClipProcessor(ProcessorMixin):
    r"""
    Wraps the speech tower's feature extractor (HuBERT / wav2vec 2.0 waveform normalisation, Whisper log-mel, …),
    CLIP's image processor and CLIP's tokenizer.

    `processor(audio=..., images=..., text=..., sampling_rate=...)` accepts any subset: `speech_values` /
    `speech_attention_mask` (audio read, mixed to mono, checked — empty, silent, NaN or an implausible rate are
    refused by name — and resampled to the tower's rate), `pixel_values`, `input_ids` / `attention_mask`.
    The spoken keywords' ids decode with `decode_keywords`; `keyword_vocabulary` and `subword_counts` give the
    config's limited vocabulary and CIF's subword targets from the training captions.
    """

    def __init__(self, feature_extractor: Any, image_processor: Any, tokenizer: Any, **kwargs: Any):
        super().__init__(feature_extractor, image_processor, tokenizer, **kwargs)

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def __call__(
        self,
        audio: Any = None,
        images: Any = None,
        text: str | list[str] | None = None,
        sampling_rate: int | list[int] | None = None,
        return_tensors: str | None = "pt",
        **text_kwargs: Any,
    ) -> BatchFeature:
        if audio is None and images is None and text is None:
            raise ValueError("Give at least one of `audio`, `images` or `text`.")
        data: dict[str, Any] = {}
        if audio is not None:
            data.update(audio_features(self.feature_extractor, audio, sampling_rate, return_tensors))
        if images is not None:
            data["pixel_values"] = self.image_processor(images, return_tensors=return_tensors)["pixel_values"]
        if text is not None:
            options = {"padding": True, "truncation": True, **text_kwargs}
            encoded = self.tokenizer(text, return_tensors=return_tensors, **options)
            data.update({k: encoded[k] for k in ("input_ids", "attention_mask")})
        return BatchFeature(data)

    # ------------------------------------------------------------------------------------------------ keywords

    def _caption_subwords(self, caption: str) -> list[int]:
        return self.tokenizer(caption, add_special_tokens=False)["input_ids"]

    def keyword_vocabulary(self, captions: Iterable[str]) -> list[int]:
        """The subword ids of the training captions: `SpeechClipConfig(keyword_vocabulary=…)`."""
        return sorted({i for caption in captions for i in self._caption_subwords(caption)})

    def subword_counts(self, captions: Sequence[str], vocabulary: Sequence[int] | None = None) -> list[int]:
        """Each caption's subword count (CIF's `cif_target_lengths` with `cif_target="subwords"`). With the model's
        limited `vocabulary`, only its subwords count, and a caption with none of them is refused by index."""
        allowed = None if vocabulary is None else set(vocabulary)
        counts = []
        for index, caption in enumerate(captions):
            subwords = self._caption_subwords(caption)
            if allowed is not None:
                subwords = [i for i in subwords if i in allowed]
            if not subwords:
                where = "in the keyword vocabulary" if allowed is not None else "at all"
                raise ValueError(f"captions[{index}] {caption!r} has no subword {where}: it cannot be a target.")
            counts.append(len(subwords))
        return counts

    def decode_keywords(self, keyword_ids: Any) -> list[list[str]]:
        """`(batch, slots)` keyword ids (−1 = no keyword) → per utterance the subwords as text ("</w>" dropped)."""
        rows = keyword_ids.tolist() if hasattr(keyword_ids, "tolist") else list(keyword_ids)
        out = []
        for row in rows:
            tokens = self.tokenizer.convert_ids_to_tokens([int(i) for i in row if int(i) >= 0])
            out.append([token.replace("</w>", "") for token in tokens])
        return out


__all__ = ["SpeechClipProcessor"]
