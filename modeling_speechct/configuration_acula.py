"""Configuration of AcuLa: an audio encoder aligned to a frozen language-model teacher, its own SSL term kept."""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import AutoConfig, PreTrainedConfig

from .configuration_spectrogram_mae import SpectrogramMAEConfig
from .sub_configs import as_sub_config

ALIGN_LOSSES = ("cka", "infonce")
# Offline defaults: the package's spectrogram MAE (ViT-small) and MiniLM-sized BERT (the registries' teacher).
DEFAULT_AUDIO = {"model_type": "spectrogram_mae"}
DEFAULT_TEXT = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                "intermediate_size": 1536}  # fmt: skip


def objective_problems(align_loss: str, align_weight: float, ssl_weight: float) -> list[str]:
    """What is wrong with an objective (shared by the config and the training arguments, which check it early)."""
    problems = []
    if align_loss not in ALIGN_LOSSES:
        problems.append(f"align_loss={align_loss!r} is not one of {ALIGN_LOSSES}")
    if align_weight < 0 or ssl_weight < 0 or align_weight + ssl_weight == 0:
        problems.append(f"align_weight={align_weight}, ssl_weight={ssl_weight}: ≥ 0 and not both 0")
    return problems


class AcuLaConfig(PreTrainedConfig):
    r"""
    Configuration of [`AcuLaModel`].

    Args:
        audio_config: the audio tower — `SpectrogramMAEConfig` (default; its masked-patch reconstruction is the
            self-supervised term) or any transformers audio encoder config (AST, Whisper, HuBERT, wav2vec 2.0),
            for which the self-supervised term is off (they bring no decoder).
        text_config: the frozen teacher — any `AutoModel` config, encoder or causal LM (MiniLM offline,
            `google/medgemma-4b-pt` online); its width is read from it, never assumed.
        text_layer: which hidden state of the teacher is mean-pooled over the report's tokens (-1: the last).
        text_max_length: report tokens kept (the paper: 128).
        projection_hidden_size / projection_dim / projection_dropout: both heads, audio → 1024 → 512 and
            text → 1024 → 512 with ReLU and dropout 0.2 (the paper's code).
        align_loss: `"cka"` (1 − linear CKA between the heads' outputs, the code's objective) or `"infonce"` (the
            family's gathered contrastive loss, the paper's wording).
        align_weight / ssl_weight: λ_align, λ_ssl (both 1.0).
    """

    model_type = "acula"
    sub_configs: ClassVar[dict[str, Any]] = {"audio_config": AutoConfig, "text_config": AutoConfig}

    audio_config: PreTrainedConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None
    text_layer: int = -1
    text_max_length: int = 128
    projection_hidden_size: int = 1024
    projection_dim: int = 512
    projection_dropout: float = 0.2
    align_loss: str = "cka"
    align_weight: float = 1.0
    ssl_weight: float = 1.0
    logit_scale_init_value: float = 2.6592
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if isinstance(self.audio_config, dict) and self.audio_config.get("model_type") == "spectrogram_mae":
            options = {k: v for k, v in self.audio_config.items() if k not in ("model_type", "transformers_version")}
            self.audio_config = SpectrogramMAEConfig(**options)  # built here: remote code has no AutoConfig entry
        elif self.audio_config is None:
            self.audio_config = SpectrogramMAEConfig()
        self.audio_config = as_sub_config(self.audio_config, DEFAULT_AUDIO, "audio_config")
        self.text_config = as_sub_config(self.text_config, DEFAULT_TEXT, "text_config")
        super().__post_init__(**kwargs)
        problems = objective_problems(self.align_loss, self.align_weight, self.ssl_weight)
        layers = self.text_config.num_hidden_layers
        if not -(layers + 1) <= self.text_layer <= layers:
            problems.append(f"text_layer={self.text_layer} is outside the teacher's {layers + 1} hidden states")
        if problems:
            raise ValueError("AcuLaConfig: " + "; ".join(problems))

    @property
    def has_ssl_term(self) -> bool:
        """The self-supervised term runs only for a tower with a decoder (the spectrogram MAE) and λ_ssl > 0."""
        return self.audio_config.model_type == "spectrogram_mae" and self.ssl_weight > 0
