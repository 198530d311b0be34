"""Configuration of SpeechCLIP / SpeechCLIP+: a frozen speech tower and a frozen CLIP, bridged by small branches."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from transformers import AutoConfig, CLIPConfig, PreTrainedConfig

from .sub_configs import as_sub_config

SPEECHCLIP_MODES = ("parallel", "cascaded", "cascaded_plus", "hybrid", "hybrid_plus")
CIF_TARGETS = ("frames", "subwords")

_DEFAULT_SPEECH = {"model_type": "hubert"}


def _clip_config(value: CLIPConfig | dict | None) -> CLIPConfig:
    if isinstance(value, CLIPConfig):
        return value
    value = dict(value or {})
    value.pop("model_type", None)
    value.pop("transformers_version", None)
    return CLIPConfig(**value)


class SpeechClipConfig(PreTrainedConfig):
    r"""
    Configuration of [`SpeechClipModel`] (SpeechCLIP, Shih et al. 2022; SpeechCLIP+, Wang et al. 2024).

    Args:
        speech_config: any transformers audio encoder config (HuBERT as in the papers, wav2vec 2.0, Whisper's
            encoder, the package's CTC tower) or its dict with `model_type`. Frozen.
        clip_config: a [`CLIPConfig`] (or its dict). Frozen, image and text towers both.
        mode: `"parallel"` (a CLS → CLIP's joint space), `"cascaded"` (K CLS → K spoken keywords → CLIP's text
            encoder), `"cascaded_plus"` (CIF tokens instead of K CLS), `"hybrid"` / `"hybrid_plus"` (one shared
            layer feeding the parallel CLS and the cascaded K CLS / CIF path).
        speech_layer_norm: layer-normalise each hidden layer before the learnt weighted sum (the large variant).
        num_heads / intermediate_size: the branch transformer layer (post-LN, GELU); `intermediate_size` None →
            4 × the speech tower's width.
        branch_dropout: dropout of the branch layer (0.1, `nn.TransformerEncoderLayer`'s, as the papers').
        frame_stride: average every `frame_stride` mixed frames before the branch layer (1: the papers' 50 frames a
            second). The branch layer's attention is quadratic in frames, so 2–4 makes a CPU step several times
            cheaper; CIF then fires over strided frames (its frame target still counts tower frames).
        num_keywords: K, the cascaded path's CLS tokens (8).
        vq_temperature: τ of the straight-through softmax over subwords (0.1).
        keyword_vocabulary: token ids the keywords may take (the subwords of the training captions); None → the
            whole CLIP vocabulary. CLIP's special tokens are never allowed.
        cif_threshold / cif_max_tokens / cif_tail_threshold: CIF firing threshold (1.0), cap per utterance (75),
            and the residual weight that fires a last token at inference (0.5).
        cif_target: `"frames"` (target count = audio frames / `cif_frames_per_token`) or `"subwords"` (the
            caption's subword count, passed to `forward` as `cif_target_lengths`).
        cif_frames_per_token: frames per target token (20: 0.4 s at HuBERT's 50 frames per second).
        cif_scaling_steps: training steps during which CIF weights are rescaled to the target count.
        quantity_loss_weight: weight of CIF's quantity loss (0.25).
        cascaded_loss_weight / parallel_loss_weight: w_c and w_p of the hybrid loss (1.0 each).
        logit_scale_init_value: initial log inverse temperature (log(1 / 0.07), CLIP's).
        speech_sampling_rate: sample rate of `speech_values` for waveform towers.
    """

    model_type = "speechclip"
    sub_configs: ClassVar[dict[str, Any]] = {"speech_config": AutoConfig, "clip_config": CLIPConfig}

    speech_config: PreTrainedConfig | dict | None = None
    clip_config: CLIPConfig | dict | None = None
    mode: str = "parallel"
    speech_layer_norm: bool = False
    num_heads: int = 8
    intermediate_size: int | None = None
    branch_dropout: float = 0.1
    frame_stride: int = 1
    num_keywords: int = 8
    vq_temperature: float = 0.1
    keyword_vocabulary: list[int] | None = None
    cif_threshold: float = 1.0
    cif_max_tokens: int = 75
    cif_tail_threshold: float = 0.5
    cif_target: str = "frames"
    cif_frames_per_token: float = 20.0
    cif_scaling_steps: int = 0
    quantity_loss_weight: float = 0.25
    cascaded_loss_weight: float = 1.0
    parallel_loss_weight: float = 1.0
    logit_scale_init_value: float = math.log(1 / 0.07)
    speech_sampling_rate: int = 16000
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs: Any):
        self.speech_config = as_sub_config(self.speech_config, _DEFAULT_SPEECH, "speech_config")
        self.clip_config = _clip_config(self.clip_config)
        if self.keyword_vocabulary is not None:
            self.keyword_vocabulary = [int(i) for i in self.keyword_vocabulary]
        super().__post_init__(**kwargs)
        self.validate()

    def validate(self) -> None:
        """Refuse settings no model can be built from, naming each."""
        problems = []
        if self.mode not in SPEECHCLIP_MODES:
            problems.append(f"mode={self.mode!r} is not one of {SPEECHCLIP_MODES}")
        if self.cif_target not in CIF_TARGETS:
            problems.append(f"cif_target={self.cif_target!r} is not one of {CIF_TARGETS}")
        if self.frame_stride < 1:
            problems.append(f"frame_stride={self.frame_stride} must be ≥ 1")
        if not 0 <= self.branch_dropout < 1:
            problems.append(f"branch_dropout={self.branch_dropout} must be in [0, 1)")
        if self.num_keywords < 1:
            problems.append(f"num_keywords={self.num_keywords} must be ≥ 1")
        positions = self.clip_config.text_config.max_position_embeddings
        if self.uses_cascaded and not self.uses_cif and self.num_keywords + 2 > positions:
            problems.append(
                f"num_keywords={self.num_keywords} + [SOT] and [EOT] exceeds CLIP's "
                f"{self.clip_config.text_config.max_position_embeddings} text positions"
            )
        if self.uses_cif and self.cif_max_tokens + 2 > positions:
            problems.append(f"cif_max_tokens={self.cif_max_tokens} + 2 exceeds CLIP's {positions} text positions")
        if self.vq_temperature <= 0:
            problems.append(f"vq_temperature={self.vq_temperature} must be > 0")
        if self.cif_threshold <= 0 or self.cif_frames_per_token <= 0:
            problems.append("cif_threshold and cif_frames_per_token must be > 0")
        if self.speech_config.hidden_size % self.num_heads:
            problems.append(f"the speech tower's width {self.speech_config.hidden_size} is not divisible by "
                            f"num_heads={self.num_heads}")  # fmt: skip
        if problems:
            raise ValueError("SpeechClipConfig: " + "; ".join(problems) + ".")

    @property
    def uses_parallel(self) -> bool:
        return self.mode in ("parallel", "hybrid", "hybrid_plus")

    @property
    def uses_cascaded(self) -> bool:
        return self.mode != "parallel"

    @property
    def uses_cif(self) -> bool:
        return self.mode in ("cascaded_plus", "hybrid_plus")


__all__ = ["SpeechClipConfig"]
