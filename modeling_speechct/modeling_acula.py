"""AcuLa (medical audio ↔ a language-model teacher): an audio tower aligned to a frozen text teacher's embeddings
of clinical reports through two projection heads, while the tower's own masked-spectrogram loss keeps acoustic
detail.

The teacher is frozen work: `encode_reports` gives its pooled hidden state once (cache it), and `forward` /
`get_text_features` take it back as `teacher_embeds`. What a linear probe reads is `get_audio_embeddings` (the
tower's pooled output, before the head), as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .configuration_acula import AcuLaConfig
from .configuration_spectrogram_mae import SpectrogramMAEConfig
from .losses import cka_loss, contrastive_loss
from .modeling_spectrogram_mae import SpectrogramMAEModel
from .pooling import masked_mean
from .projection import init_projection_head, projection_head
from .towers import build_audio_encoder, keep_frozen_in_eval, load_matching, load_tower
from .validation import require_finite, require_same_batch


@dataclass
class AcuLaOutput(ModelOutput):
    """`loss` = λ_align · `align_loss` + λ_ssl · `ssl_loss`; the heads' outputs `audio_embeds`, `text_embeds`."""

    loss: torch.Tensor | None = None
    align_loss: torch.Tensor | None = None
    ssl_loss: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None


class AcuLaPreTrainedModel(PreTrainedModel):
    config: AcuLaConfig
    config_class = AcuLaConfig
    base_model_prefix = "acula"
    main_input_name = "input_features"
    input_modalities = ("audio", "text")

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, AcuLaModel):
            init_projection_head(module.audio_projection)
            init_projection_head(module.text_projection)
            module.logit_scale.fill_(self.config.logit_scale_init_value)


class AcuLaModel(AcuLaPreTrainedModel):
    def __init__(self, config: AcuLaConfig):
        super().__init__(config)
        audio = config.audio_config
        mae = audio.model_type == "spectrogram_mae"  # built directly: remote code has no AutoModel entry for it
        self.audio_model = SpectrogramMAEModel(audio) if mae else build_audio_encoder(audio)
        self.text_model = AutoModel.from_config(config.text_config)
        head = {"hidden_features": config.projection_hidden_size, "bias": True, "activation": "relu",
                "dropout": config.projection_dropout}  # fmt: skip
        self.audio_projection = projection_head(audio.hidden_size, config.projection_dim, **head)
        self.text_projection = projection_head(config.text_config.hidden_size, config.projection_dim, **head)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
        self.post_init()
        self.text_model.requires_grad_(False)

    def train(self, mode: bool = True) -> AcuLaModel:
        super().train(mode)
        keep_frozen_in_eval([self.text_model])
        return self

    @torch.no_grad()
    def encode_reports(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The frozen teacher's `text_layer` hidden state mean-pooled over the report's tokens `(batch, width)`: the
        frozen work a run computes once and passes back as `teacher_embeds`."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return masked_mean(out.hidden_states[self.config.text_layer], attention_mask.bool()).float()

    def get_audio_embeddings(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None,
                             ) -> torch.Tensor:  # fmt: skip
        """The tower's pooled output `(batch, hidden)`: what the linear probe reads."""
        require_finite("input_features", input_features)
        if isinstance(self.audio_model, SpectrogramMAEModel):
            return self.audio_model(input_features).pooler_output
        kwargs = {self.audio_model.main_input_name: input_features}
        out = self.audio_model(**kwargs)
        return out.last_hidden_state.mean(dim=1)

    def get_audio_features(self, input_features: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        """The audio head's output in the shared space (`pooler_output`, `(batch, projection_dim)`)."""
        pooled = self.get_audio_embeddings(input_features)
        return BaseModelOutputWithPooling(last_hidden_state=pooled, pooler_output=self.audio_projection(pooled))

    def get_text_features(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                          teacher_embeds: torch.Tensor | None = None) -> BaseModelOutputWithPooling:  # fmt: skip
        """The text head's output for reports (tokens, or their cached `teacher_embeds`)."""
        if teacher_embeds is None:
            if input_ids is None:
                raise ValueError("Give `input_ids` (reports) or `teacher_embeds` (their cached teacher embeddings).")
            teacher_embeds = self.encode_reports(input_ids, attention_mask)
        width = self.config.text_config.hidden_size
        if teacher_embeds.ndim != 2 or teacher_embeds.shape[1] != width:
            raise ValueError(f"teacher_embeds: expected (batch, {width}), got {tuple(teacher_embeds.shape)}")
        return BaseModelOutputWithPooling(last_hidden_state=teacher_embeds,
                                          pooler_output=self.text_projection(teacher_embeds))  # fmt: skip

    def forward(self, input_features: torch.Tensor, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, teacher_embeds: torch.Tensor | None = None,
                return_loss: bool = True, **kwargs) -> AcuLaOutput:  # fmt: skip
        cfg = self.config
        require_same_batch(input_features=input_features, input_ids=input_ids, teacher_embeds=teacher_embeds)
        audio = self.get_audio_features(input_features).pooler_output
        has_text = input_ids is not None or teacher_embeds is not None
        text = self.get_text_features(input_ids, attention_mask, teacher_embeds).pooler_output if has_text else None
        out = AcuLaOutput(audio_embeds=audio, text_embeds=text)
        if not return_loss:
            return out
        terms = []
        if cfg.align_weight > 0:
            if text is None:
                raise ValueError("The alignment term needs the reports: `input_ids` or `teacher_embeds`.")
            if cfg.align_loss == "cka":
                out.align_loss = cka_loss(audio, text)
            else:
                out.align_loss = contrastive_loss(F.normalize(audio, dim=-1), F.normalize(text, dim=-1),
                                                  self.logit_scale.exp().clamp(max=100))  # fmt: skip
            terms.append(cfg.align_weight * out.align_loss)
        if cfg.has_ssl_term:
            out.ssl_loss = self.audio_model.reconstruction_loss(input_features).loss
            terms.append(cfg.ssl_weight * out.ssl_loss)
        out.loss = torch.stack(terms).sum() if terms else None
        return out

    @classmethod
    def from_tower_pretrained(cls, *, audio: str | SpectrogramMAEConfig, text: str,
                              config_kwargs: dict[str, Any] | None = None, **from_pretrained_kwargs: Any,
                              ) -> AcuLaModel:  # fmt: skip
        """Build from a pretrained audio checkpoint (a spectrogram MAE folder, AST, Whisper → its encoder, HuBERT,
        …) or a fresh `SpectrogramMAEConfig`, and a text teacher checkpoint (any `AutoModel`; of an image-text model
        such as MedGemma-4B, its language model)."""
        teacher = load_tower(text, **from_pretrained_kwargs)
        # A multimodal checkpoint (MedGemma-4B is a Gemma 3 image-text model) teaches through its language model
        # alone: reports are text, and its vision tower would only cost memory.
        if hasattr(teacher.config, "text_config") and hasattr(teacher, "language_model"):
            teacher = teacher.language_model
        if isinstance(audio, SpectrogramMAEConfig):
            tower, audio_config = None, audio
        else:
            tower = load_tower(audio, **from_pretrained_kwargs)
            tower = tower.get_encoder() if tower.config.is_encoder_decoder else tower
            audio_config = tower.config
        model = cls(AcuLaConfig(audio_config=audio_config, text_config=teacher.config, **(config_kwargs or {})))
        if tower is not None:
            load_matching(model.audio_model, tower.state_dict(), type(tower).__name__)
        load_matching(model.text_model, teacher.state_dict(), type(teacher).__name__)
        return model


__all__ = ["AcuLaModel", "AcuLaOutput", "AcuLaPreTrainedModel"]
