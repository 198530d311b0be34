"""Configuration of SpeechCT-CLIP: a CT tower, a speech tower and a text tower in one 512-d space."""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import AutoConfig, PreTrainedConfig

from .configuration_ct_vit import CTViTConfig
from .sub_configs import as_sub_config

SPEECH_POOLING_MODES = ("mean", "attention", "cls_transformer")
DISTILL_LOSSES = ("cosine", "similarity")
SPEECH_LAYER_MODES = ("last", "weighted_sum")
TEXT_POOLING_MODES = ("cls", "mean")

# Tiny towers for tests and smoke runs; real runs pass real configs (or use `from_tower_pretrained`).
_DEFAULT_SPEECH = {"model_type": "whisper"}
_DEFAULT_TEXT = {"model_type": "bert"}


class SpeechCTClipConfig(PreTrainedConfig):
    r"""
    Configuration of [`SpeechCTClipModel`].

    Args:
        ct_config: a [`CTViTConfig`] (or its dict).
        speech_config: any transformers audio encoder config (Whisper — encoder only —, HuBERT, wav2vec 2.0, WavLM,
            …) or its dict with `model_type`.
        text_config: any transformers bidirectional text encoder config (BERT, CXR-BERT, RoBERTa, …).
        projection_dim: width of the shared space (CT-CLIP: 512).
        logit_scale_init_value: initial log inverse temperature of the text↔CT contrast (CT-CLIP: 1.0, used as exp).
        speech_logit_scale_init_value: the same for speech↔CT and speech↔text.
        distill_weight: λ in `InfoNCE(speech, CT) + λ · (1 − cos(speech, text))`; 0 is the paper's "nKD" baseline.
        distill_loss: `"cosine"` (the paper: 1 − cos(speech, text)) or `"similarity"` (KL between the teacher's
            text → CT and the student's speech → CT softmax over the batch, both directions: the teacher's ranking
            of the volumes rather than its text embedding; `losses.similarity_distillation_loss`).
        speech_layers: `"last"` hidden state or a learnt softmax-`"weighted_sum"` of all hidden layers (SpeechCLIP).
        speech_pooling: how frames become one vector: masked `"mean"`, learnt-query `"attention"`, or a learnable
            CLS token through a one-layer post-LN transformer (`"cls_transformer"`, SpeechCLIP's parallel branch).
        speech_pooling_heads / speech_pooling_intermediate_size: heads and FFN width of the pooling modules.
        speech_pooling_stride: average this many consecutive frames (masked) before pooling: a 50 fps tower over
            30 s windows gives 1,500 frames, and a transformer pooling costs far less on 4× fewer.
        speech_sampling_rate: sample rate of `speech_values` for waveform towers (`input_values`).
        speech_feature_rate: frames per second of `speech_values` for spectrogram towers (`input_features`;
            100 for Whisper's 10 ms hop).
        speech_window_seconds / speech_window_overlap_seconds: audio longer than a window is cut into overlapping
            windows that are encoded separately and whose embeddings are averaged (paper: 30 s / 2 s). An encoder
            with a fixed input length (Whisper: 30 s) sets the window itself; the overlap keeps its share of it.
        text_pooling: `"cls"` (CT-CLIP: the first token) or masked `"mean"`.
        freeze_ct / freeze_text / freeze_speech: frozen towers (and their projections) get no gradient and stay in
            eval mode. Defaults: the distillation setting, CT and text teachers frozen.
        speech_trainable_layers: with the speech tower not frozen, train only its top k layers (None: all).
        text_trainable_layers: with the text tower not frozen, train only its top k layers (None: all); the layers
            below are frozen work whose output can be cached (`get_text_prefix`), as for the speech tower.
        train_text_projection: train the text projection although the text tower is frozen (a teacher over a
            locked pretrained language model, as LiT locks one tower): its input can then be cached once.
    """

    model_type = "speechct_clip"
    sub_configs: ClassVar[dict[str, type]] = {
        "ct_config": CTViTConfig,
        "speech_config": AutoConfig,
        "text_config": AutoConfig,
    }

    ct_config: CTViTConfig | dict | None = None
    speech_config: PreTrainedConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None
    projection_dim: int = 512
    logit_scale_init_value: float = 1.0
    speech_logit_scale_init_value: float = 1.0
    distill_weight: float = 1.0
    distill_loss: str = "cosine"
    speech_layers: str = "last"
    speech_pooling: str = "mean"
    speech_pooling_heads: int = 8
    speech_pooling_intermediate_size: int | None = None
    speech_pooling_stride: int = 1
    speech_sampling_rate: int = 16000
    speech_feature_rate: float = 100.0
    speech_window_seconds: float = 30.0
    speech_window_overlap_seconds: float = 2.0
    text_pooling: str = "cls"
    freeze_ct: bool = True
    freeze_text: bool = True
    freeze_speech: bool = False
    speech_trainable_layers: int | None = None
    text_trainable_layers: int | None = None
    train_text_projection: bool = False
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs: Any):
        if isinstance(self.ct_config, dict):
            ct = {k: v for k, v in self.ct_config.items() if k not in ("model_type", "transformers_version")}
            self.ct_config = CTViTConfig(**ct)
        elif self.ct_config is None:
            self.ct_config = CTViTConfig()
        self.speech_config = as_sub_config(self.speech_config, _DEFAULT_SPEECH, "speech_config")
        self.text_config = as_sub_config(self.text_config, _DEFAULT_TEXT, "text_config")
        super().__post_init__(**kwargs)
        self._validate_choices()

    def _validate_choices(self) -> None:
        problems = []
        for name, value, allowed in (
            ("speech_layers", self.speech_layers, SPEECH_LAYER_MODES),
            ("speech_pooling", self.speech_pooling, SPEECH_POOLING_MODES),
            ("text_pooling", self.text_pooling, TEXT_POOLING_MODES),
            ("distill_loss", self.distill_loss, DISTILL_LOSSES),
        ):
            if value not in allowed:
                problems.append(f"{name}={value!r} is not one of {allowed}")
        if self.speech_pooling_stride < 1:
            problems.append(f"speech_pooling_stride={self.speech_pooling_stride} must be at least 1")
        if self.distill_weight < 0:
            problems.append(f"distill_weight={self.distill_weight} is negative")
        if not 0 <= self.speech_window_overlap_seconds < self.speech_window_seconds:
            problems.append(
                f"speech_window_overlap_seconds={self.speech_window_overlap_seconds} must lie in "
                f"[0, speech_window_seconds={self.speech_window_seconds})"
            )
        for name in ("speech_trainable_layers", "text_trainable_layers"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} is negative")
        if problems:
            raise ValueError("SpeechCTClipConfig: " + "; ".join(problems))

    @classmethod
    def from_tower_configs(
        cls,
        ct_config: CTViTConfig,
        speech_config: PreTrainedConfig,
        text_config: PreTrainedConfig,
        **kwargs: Any,
    ) -> SpeechCTClipConfig:
        return cls(ct_config=ct_config, speech_config=speech_config, text_config=text_config, **kwargs)


__all__ = ["SpeechCTClipConfig"]
