"""SpeechCT-CLIP: CT, speech and text towers projected into one L2-normalised space.

The CT and text towers are CT-CLIP's teacher; the speech tower is the student, trained with
`InfoNCE(speech, CT) + λ · (1 − cos(speech, text))`. With no speech in the batch the same model trains the teacher
(`InfoNCE(text, CT)`).

One model class and its output dataclasses, as transformers keeps `CLIPModel` in `modeling_clip.py`: ~700 lines,
most of them the speech side's long-recording windows and the cached frozen prefix, which only this class's
`forward` and `get_speech_features*` use. The tower blocks the family shares live in `towers.py`, `pooling.py`
and `losses.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput
from transformers.utils import logging as hf_logging

from .configuration_speechct_clip import SpeechCTClipConfig
from .losses import contrastive_loss, cosine_distillation_loss, similarity_distillation_loss
from .modeling_ct_vit import CTViTModel
from .pooling import LayerWeightedSum, build_frame_pooler, masked_mean, stride_frames
from .projection import init_projection_head, projection_head
from .towers import (
    SpeechPrefix,
    TextPrefix,
    accepts,
    build_audio_encoder,
    build_text_encoder,
    check_audio_input,
    encode_frames,
    final_norm,
    keep_frozen_in_eval,
    layer_stack,
    load_matching,
    load_tower,
    run_until,
    train_top_layers,
)
from .towers import (
    frame_mask as audio_frame_mask,
)
from .validation import require_finite, require_ndim, require_same_batch

logger = hf_logging.get_logger(__name__)


@dataclass
class SpeechCTClipSpeechOutput(BaseModelOutputWithPooling):
    """
    Args:
        pooler_output: `(batch, projection_dim)` projected speech embedding (mean over the audio's windows).
        last_hidden_state: `(batch, num_windows, frames, hidden)` speech-tower output of every window.
        window_embeds: `(batch, num_windows, projection_dim)` projected embedding of every window.
        window_mask: `(batch, num_windows)` which windows hold audio (padding-only windows are left out of the mean).
    """

    window_embeds: torch.FloatTensor | None = None
    window_mask: torch.BoolTensor | None = None


@dataclass
class SpeechCTClipOutput(ModelOutput):
    """
    Args:
        loss: total loss (`return_loss=True`): `contrastive_loss + distill_weight · distill_loss` with speech,
            `contrastive_loss` = InfoNCE(text, CT) without.
        contrastive_loss: the InfoNCE part.
        distill_loss: mean `1 − cos(speech, text)` (present when speech and text are), or with
            `distill_loss="similarity"` the KL of the student's speech → CT ranking to the teacher's text → CT one
            (present when speech, text and CT are).
        logits_speech_ct / logits_ct_speech / logits_text_ct / logits_ct_text / logits_speech_text /
        logits_text_speech: scaled cosine similarities of every pair of modalities given (rows: first modality).
        ct_embeds / speech_embeds / text_embeds: L2-normalised embeddings, `(batch, projection_dim)`.
        ct_model_output / speech_model_output / text_model_output: the towers' outputs.
    """

    loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    distill_loss: torch.FloatTensor | None = None
    logits_speech_ct: torch.FloatTensor | None = None
    logits_ct_speech: torch.FloatTensor | None = None
    logits_text_ct: torch.FloatTensor | None = None
    logits_ct_text: torch.FloatTensor | None = None
    logits_speech_text: torch.FloatTensor | None = None
    logits_text_speech: torch.FloatTensor | None = None
    ct_embeds: torch.FloatTensor | None = None
    speech_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    ct_model_output: ModelOutput | None = None
    speech_model_output: ModelOutput | None = None
    text_model_output: ModelOutput | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in self.values())


class SpeechCTClipPreTrainedModel(PreTrainedModel):
    config: SpeechCTClipConfig
    config_class = SpeechCTClipConfig
    base_model_prefix = "speechct_clip"
    main_input_name = "ct_values"
    input_modalities = ("image", "audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SpeechCTClipModel):
            for projection in (module.ct_projection, module.speech_projection, module.text_projection):
                init_projection_head(projection)
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)
            init.constant_(module.speech_logit_scale, self.config.speech_logit_scale_init_value)
        elif isinstance(module, LayerWeightedSum):
            init.zeros_(module.weights)
        elif hasattr(module, "cls_token"):
            init.normal_(module.cls_token, std=self.config.initializer_range)
        elif hasattr(module, "query"):
            init.normal_(module.query, std=self.config.initializer_range)


class SpeechCTClipModel(SpeechCTClipPreTrainedModel):
    r"""
    Tri-encoder: `ct_model` (CT-ViT), `speech_model` (any transformers audio encoder), `text_model` (any BERT-family
    encoder), each with a bias-free projection into `projection_dim`.

    Example:

    ```python
    >>> from modeling_speechct import SpeechCTClipModel
    >>> model = SpeechCTClipModel.from_tower_pretrained(
    ...     speech="openai/whisper-base", text="microsoft/BiomedVLP-CXR-BERT-specialized", ct="path/to/ct-tower")
    >>> out = model(ct_values=ct, speech_values=feats, input_ids=ids, attention_mask=mask, return_loss=True)
    ```
    """

    def __init__(self, config: SpeechCTClipConfig):
        super().__init__(config)
        self.ct_model = CTViTModel(config.ct_config)
        self.speech_model = build_audio_encoder(config.speech_config)
        self.text_model = build_text_encoder(config.text_config)

        speech_hidden = config.speech_config.hidden_size
        self.speech_layer_weights = (
            LayerWeightedSum(config.speech_config.num_hidden_layers + 1)
            if config.speech_layers == "weighted_sum"
            else None
        )
        self.speech_pooler = build_frame_pooler(
            config.speech_pooling,
            speech_hidden,
            config.speech_pooling_heads,
            config.speech_pooling_intermediate_size or 4 * speech_hidden,
        )
        self.ct_projection = projection_head(config.ct_config.pooled_size, config.projection_dim)
        self.speech_projection = projection_head(speech_hidden, config.projection_dim)
        self.text_projection = projection_head(config.text_config.hidden_size, config.projection_dim)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
        self.speech_logit_scale = nn.Parameter(torch.tensor(config.speech_logit_scale_init_value))
        self.post_init()
        self.apply_freezing()

    # ----------------------------------------------------------------------------------------------- freezing

    def _tower_modules(self) -> dict[str, list[nn.Module]]:
        speech = [self.speech_model, self.speech_projection, self.speech_layer_weights, self.speech_pooler]
        return {
            "ct": [self.ct_model, self.ct_projection],
            "text": [self.text_model, self.text_projection],
            "speech": [m for m in speech if m is not None],
        }

    def _frozen_towers(self) -> list[str]:
        cfg = self.config
        return [
            name
            for name, frozen in (("ct", cfg.freeze_ct), ("text", cfg.freeze_text), ("speech", cfg.freeze_speech))
            if frozen
        ]

    def _speech_layer_stack(self) -> nn.ModuleList | None:
        """The speech tower's transformer layers (`towers.layer_stack`)."""
        return layer_stack(self.speech_model)

    def apply_freezing(self) -> None:
        """Set `requires_grad` from the config's freeze flags (call again after changing them)."""
        cfg = self.config
        frozen = set(self._frozen_towers())
        for name, modules in self._tower_modules().items():
            for module in modules:
                module.requires_grad_(name not in frozen)
        if cfg.train_text_projection:
            self.text_projection.requires_grad_(True)
        self.logit_scale.requires_grad_(not (cfg.freeze_ct and cfg.freeze_text and not cfg.train_text_projection))
        self.speech_logit_scale.requires_grad_(not cfg.freeze_speech)
        if not cfg.freeze_speech and cfg.speech_trainable_layers is not None:
            self._train_top_speech_layers(cfg.speech_trainable_layers)
        if not cfg.freeze_text and cfg.text_trainable_layers is not None:
            train_top_layers(
                self.text_model, cfg.text_config, cfg.text_trainable_layers, "text_trainable_layers", "the text tower"
            )
        self.train(self.training)

    def _train_top_speech_layers(self, k: int) -> None:
        """Freeze the speech tower but its top `k` layers and the norm that follows them (the paper's recipe)."""
        train_top_layers(self.speech_model, self.config.speech_config, k, "speech_trainable_layers", "the speech tower")

    def train(self, mode: bool = True) -> SpeechCTClipModel:
        """Frozen towers stay in eval mode (no dropout, no SpecAugment) while the rest trains."""
        super().train(mode)
        keep_frozen_in_eval(m for name in self._frozen_towers() for m in self._tower_modules()[name])
        keep_frozen_in_eval(self._frozen_text_part())
        return self

    def _frozen_text_part(self) -> list[nn.Module]:
        """With `text_trainable_layers=k`, the text tower's frozen part (embeddings, the layers below the top k):
        kept in eval mode, so its output is what `get_text_prefix` caches."""
        if self.config.freeze_text or self.config.text_trainable_layers is None:
            return []
        embeddings = [m for m in (getattr(self.text_model, "embeddings", None),) if m is not None]
        return embeddings + list(layer_stack(self.text_model))[: self.text_prefix_layer]

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> SpeechCTClipModel:
        """`PreTrainedModel.from_pretrained`, then the config's freeze flags (loading builds fresh parameters)."""
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded).apply_freezing()  # tuple with output_loading_info
        return loaded

    # ----------------------------------------------------------------------------------------------- CT

    def get_ct_features(self, ct_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        """Projected (not normalised) CT embedding in `pooler_output`; the token grid in `last_hidden_state`."""
        outputs = self.ct_model(ct_values, return_dict=True, **kwargs)
        return BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=self.ct_projection(outputs.pooler_output),
            hidden_states=outputs.hidden_states,
        )

    # ----------------------------------------------------------------------------------------------- speech

    @property
    def speech_input_name(self) -> str:
        return self.speech_model.main_input_name

    def speech_window(self) -> tuple[int, int, int | None]:
        """(window, overlap, fixed_length) in input units: samples for waveforms, frames for spectrograms."""
        cfg = self.config
        rate = cfg.speech_sampling_rate if self.speech_input_name == "input_values" else cfg.speech_feature_rate
        fixed = None
        max_source = getattr(cfg.speech_config, "max_source_positions", None)
        if self.speech_input_name == "input_features" and max_source is not None:
            fixed = 2 * max_source  # Whisper's encoder takes exactly 30 s of 10 ms frames (stride-2 conv).
        window = fixed or round(cfg.speech_window_seconds * rate)
        # A fixed-length encoder dictates the window; the overlap keeps the configured share of it (2 s of 30 s).
        overlap = round(window * cfg.speech_window_overlap_seconds / cfg.speech_window_seconds)
        if not 0 <= overlap < window:
            raise ValueError(f"speech window overlap {overlap} must lie in [0, window {window}) input units.")
        return window, overlap, fixed

    def _check_speech(self, speech_values: torch.Tensor, mask: torch.Tensor | None) -> None:
        check_audio_input(self.speech_model, self.config.speech_config, speech_values, mask)

    def _frame_mask(self, input_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Which encoder output frames carry audio, from the input-unit mask."""
        return audio_frame_mask(self.speech_model, input_mask, num_frames)

    def _encode_speech_frames(self, values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ModelOutput]:
        """Run the speech tower on same-length inputs and pool each row into one vector."""
        hidden, frames, outputs = encode_frames(self.speech_model, values, mask, self.speech_layer_weights)
        return self._pool_frames(hidden, frames), outputs

    def _pool_frames(self, hidden: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """One vector per window: optional masked striding, then the configured pooling."""
        if self.config.speech_pooling_stride > 1:
            hidden, frame_mask = stride_frames(hidden, frame_mask, self.config.speech_pooling_stride)
        return masked_mean(hidden, frame_mask) if self.speech_pooler is None else self.speech_pooler(hidden, frame_mask)

    def _speech_windows(
        self, speech_values: torch.Tensor, speech_attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cut each recording into the tower's windows (paper: 30 s, 2 s overlap).

        Returns the windows `(windows · batch, ..., span)` (window-major), their input masks `(windows · batch, span)`
        and which windows each recording owns `(batch, windows)`: a recording owns the windows it would get on its
        own (from its length), so that its embedding does not depend on what it is batched with."""
        self._check_speech(speech_values, speech_attention_mask)
        batch, length = speech_values.shape[0], speech_values.shape[-1]
        mask = (
            torch.ones(batch, length, dtype=torch.bool, device=speech_values.device)
            if speech_attention_mask is None
            else speech_attention_mask.bool()
        )
        window, overlap, fixed = self.speech_window()
        step = window - overlap
        num_windows = 1 + math.ceil(max(length - window, 0) / step)
        span = window if (num_windows > 1 or fixed) else length
        pad = (num_windows - 1) * step + span - length
        values = speech_values.to(self.speech_model.dtype)
        if pad:
            # Waveforms pad with silence (0); spectrograms with each recording's quietest value (Whisper's silence).
            fill = values.amin(dim=(1, 2), keepdim=True) if values.ndim == 3 else torch.zeros_like(values[:, :1])
            values = torch.cat((values, fill.expand(*values.shape[:-1], pad)), dim=-1)
            mask = F.pad(mask, (0, pad), value=False)
        windows = values.unfold(-1, span, step).movedim(-2, 0)
        window_masks = mask.unfold(-1, span, step).movedim(-2, 0)
        lengths = mask.sum(dim=-1)
        own = 1 + torch.div((lengths - window).clamp(min=0) + step - 1, step, rounding_mode="floor")
        owned = torch.arange(num_windows, device=mask.device)[None, :] < own[:, None]
        return windows.reshape(-1, *windows.shape[2:]), window_masks.reshape(-1, span), owned

    def get_speech_features(
        self, speech_values: torch.Tensor, speech_attention_mask: torch.Tensor | None = None
    ) -> SpeechCTClipSpeechOutput:
        """Projected (not normalised) speech embedding. Audio longer than a window is cut into overlapping windows
        (paper: 30 s, 2 s overlap); each is encoded and the window embeddings are averaged."""
        windows, window_masks, owned = self._speech_windows(speech_values, speech_attention_mask)
        batch, num_windows = owned.shape
        pooled, outputs = self._encode_speech_frames(windows, window_masks)
        window_embeds = self.speech_projection(pooled).view(num_windows, batch, -1).transpose(0, 1)
        weights = owned.to(window_embeds.dtype).unsqueeze(-1)
        embeds = (window_embeds * weights).sum(dim=1) / weights.sum(dim=1)
        hidden = outputs.last_hidden_state
        return SpeechCTClipSpeechOutput(
            last_hidden_state=hidden.view(num_windows, batch, *hidden.shape[1:]).transpose(0, 1),
            pooler_output=embeds,
            window_embeds=window_embeds,
            window_mask=owned,
        )

    # ------------------------------------------------------------------- speech: frozen lower layers, computed once

    @property
    def speech_prefix_layer(self) -> int:
        """Index of the first trainable layer of the speech tower: everything below it is frozen, so its output
        (the input of that layer) can be computed once and cached (`get_speech_prefix`)."""
        stack = self._speech_layer_stack()
        if stack is None:
            raise ValueError("the speech tower has no layer stack: its frozen part cannot be cached.")
        cfg = self.config
        if cfg.freeze_speech:
            return len(stack)
        if cfg.speech_trainable_layers is None:
            raise ValueError(
                "the whole speech tower trains (speech_trainable_layers=None): nothing below a trainable layer is "
                "frozen, so there is no prefix to cache. Set speech_trainable_layers=k (or freeze_speech=True)."
            )
        if self.speech_layer_weights is not None:
            raise ValueError(
                "speech_layers='weighted_sum' reads every layer; prefix caching needs speech_layers='last'."
            )
        return len(stack) - cfg.speech_trainable_layers

    def _speech_final_norm(self) -> nn.Module | None:
        return final_norm(self.speech_model, self.config.speech_config)

    @torch.no_grad()
    def get_speech_prefix(
        self, speech_values: torch.Tensor, speech_attention_mask: torch.Tensor | None = None
    ) -> SpeechPrefix:
        """Hidden states entering the first trainable speech layer (`speech_prefix_layer`), for every window a
        recording owns. Frozen work: compute once, cache, and train with `forward(speech_prefix=...)`.
        The frozen part runs in eval mode (no SpecAugment or dropout there), as a cache must be deterministic."""
        windows, window_masks, owned = self._speech_windows(speech_values, speech_attention_mask)
        keep = owned.transpose(0, 1).reshape(-1)  # window-major, as `windows`: windows nobody owns are never encoded
        owner = torch.arange(owned.shape[0], device=owned.device).repeat(owned.shape[1])[keep]
        windows, window_masks = windows[keep], window_masks[keep]
        was_training = self.speech_model.training
        self.speech_model.eval()
        try:
            if self._padding_is_inert():
                hidden, frame_mask = self._prefix_without_padding(windows, window_masks)
            else:  # padding is part of the input (Whisper's fixed log-mel window; GroupNorm over time in wav2vec 2.0)
                hidden = self._prefix_frames(windows, window_masks)
                frame_mask = self._frame_mask(window_masks, hidden.shape[1])
        finally:
            self.speech_model.train(was_training)
        return SpeechPrefix(hidden_states=hidden, frame_mask=frame_mask, owner=owner)

    def _padding_is_inert(self) -> bool:
        """True when trailing padding changes no real output frame: a waveform tower that masks padded frames in
        attention and normalises its convolutions per frame (`feat_extract_norm="layer"`, not GroupNorm over time)."""
        return (
            self.speech_input_name == "input_values"
            and accepts(self.speech_model, "attention_mask")
            and getattr(self.config.speech_config, "feat_extract_norm", None) == "layer"
        )

    def _prefix_frames(self, windows: torch.Tensor, window_masks: torch.Tensor) -> torch.Tensor:
        boundary, stack = self.speech_prefix_layer, self._speech_layer_stack()
        if boundary == len(stack):
            kwargs: dict[str, Any] = {self.speech_input_name: windows}
            if accepts(self.speech_model, "attention_mask"):
                kwargs["attention_mask"] = window_masks.long()
            return self.speech_model(**kwargs, return_dict=True).last_hidden_state
        return run_until(self.speech_model, stack[boundary], self.speech_input_name, windows, window_masks)

    def _prefix_without_padding(
        self, windows: torch.Tensor, window_masks: torch.Tensor, group: int = 4
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`_prefix_frames` for waveform towers that mask padding (wav2vec 2.0, HuBERT), in groups of similar length,
        each cut to its longest recording: a report's last window is mostly padding, and padding costs convolution
        and attention while changing no real frame (it is masked). Frames are padded back to one length after."""
        lengths = window_masks.sum(dim=-1)
        order = torch.argsort(lengths, stable=True)
        parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for start in range(0, len(order), group):
            rows = order[start : start + group]
            span = int(lengths[rows].max())
            hidden = self._prefix_frames(windows[rows, :span], window_masks[rows, :span])
            parts.append((rows, hidden, self._frame_mask(window_masks[rows, :span], hidden.shape[1])))
        frames = max(hidden.shape[1] for _, hidden, _ in parts)
        out = windows.new_zeros(len(order), frames, parts[0][1].shape[-1], dtype=parts[0][1].dtype)
        mask = torch.zeros(len(order), frames, dtype=torch.bool, device=windows.device)
        for rows, hidden, frame_mask in parts:
            out[rows, : hidden.shape[1]] = hidden
            mask[rows, : frame_mask.shape[1]] = frame_mask
        return out, mask

    def get_speech_features_from_prefix(self, prefix: SpeechPrefix, batch_size: int | None = None) -> torch.Tensor:
        """Projected speech embeddings `(batch, projection_dim)` from cached prefixes: the trainable top layers,
        the final norm, pooling and projection, then each recording's window embeddings averaged."""
        hidden, frame_mask, owner = prefix.hidden_states, prefix.frame_mask.bool(), prefix.owner.long()
        stack = self._speech_layer_stack()
        top = list(stack)[self.speech_prefix_layer :]
        hidden = hidden.to(self.speech_projection.weight.dtype)
        if top:
            layer_mask = None
            # Waveform towers (wav2vec 2.0, HuBERT) mask padded frames in attention; Whisper's encoder attends to its
            # fixed 30 s window whole (it accepts `attention_mask` but ignores it), so its layers get no mask.
            if self.speech_input_name == "input_values" and accepts(self.speech_model, "attention_mask"):
                from transformers.masking_utils import create_bidirectional_mask

                layer_mask = create_bidirectional_mask(
                    config=self.config.speech_config, inputs_embeds=hidden, attention_mask=frame_mask
                )
            for layer in top:
                out = layer(hidden, attention_mask=layer_mask)
                hidden = out[0] if isinstance(out, tuple) else out
            norm = self._speech_final_norm()
            if norm is not None:
                hidden = norm(hidden)
        pooled = self._pool_frames(hidden, frame_mask)
        window_embeds = self.speech_projection(pooled)
        batch = batch_size if batch_size is not None else int(owner.max()) + 1
        sums = window_embeds.new_zeros(batch, window_embeds.shape[-1]).index_add(0, owner, window_embeds)
        counts = torch.bincount(owner, minlength=batch).clamp(min=1).to(sums.dtype)
        return sums / counts[:, None]

    # ----------------------------------------------------------------------------------------------- text

    def get_text_pooled(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(last hidden state, pooled text feature before the projection): what a frozen text tower contributes,
        cacheable while its projection trains (`forward(text_pooled=...)`)."""
        require_ndim("input_ids", input_ids, 2, "token ids (batch, tokens)")
        vocab = self.config.text_config.vocab_size
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab):
            raise ValueError(f"`input_ids` holds ids outside [0, {vocab}): was it made by another tokenizer?")
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.text_model(input_ids=input_ids, return_dict=True, **kwargs).last_hidden_state
        if self.config.text_pooling == "cls":
            return hidden, hidden[:, 0]
        return hidden, masked_mean(hidden, attention_mask.bool() if attention_mask is not None else None)

    @property
    def text_prefix_layer(self) -> int:
        """Index of the first trainable text layer: what the layers below make of a report is frozen work,
        computed once (`get_text_prefix`) while the top layers, pooling and projection train."""
        cfg = self.config
        stack = layer_stack(self.text_model)
        if stack is None:
            raise ValueError("the text tower has no layer stack: its frozen part cannot be cached.")
        if cfg.freeze_text:
            return len(stack)
        if cfg.text_trainable_layers is None:
            raise ValueError(
                "the whole text tower trains (text_trainable_layers=None): nothing below a trainable layer is "
                "frozen, so there is no prefix to cache. Set text_trainable_layers=k (or freeze_text=True)."
            )
        return len(stack) - cfg.text_trainable_layers

    @torch.no_grad()
    def get_text_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TextPrefix:
        """Hidden states entering the first trainable text layer (`text_prefix_layer`), in eval mode (a cache must
        be deterministic). Train with `forward(text_prefix=...)`; the reports use the default token types."""
        require_ndim("input_ids", input_ids, 2, "token ids (batch, tokens)")
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        boundary, stack = self.text_prefix_layer, layer_stack(self.text_model)
        was_training = self.text_model.training
        self.text_model.eval()
        try:
            if boundary == len(stack):
                hidden = self.text_model(input_ids=input_ids, attention_mask=mask, return_dict=True).last_hidden_state
            else:
                hidden = run_until(self.text_model, stack[boundary], "input_ids", input_ids, mask)
        finally:
            self.text_model.train(was_training)
        return TextPrefix(hidden_states=hidden, attention_mask=mask.bool())

    def get_text_features_from_prefix(self, prefix: TextPrefix) -> torch.Tensor:
        """Projected text embeddings `(batch, projection_dim)` from cached prefixes: the trainable top layers,
        the pooling and the projection (the same numbers as `get_text_features` on the reports' tokens)."""
        from transformers.masking_utils import create_bidirectional_mask

        mask = prefix.attention_mask.bool()
        hidden = prefix.hidden_states.to(self.text_projection.weight.dtype)
        top = list(layer_stack(self.text_model))[self.text_prefix_layer :]
        if top:
            layer_mask = create_bidirectional_mask(
                config=self.config.text_config, inputs_embeds=hidden, attention_mask=mask
            )
            for layer in top:
                out = layer(hidden, attention_mask=layer_mask)
                hidden = out[0] if isinstance(out, tuple) else out
        pooled = hidden[:, 0] if self.config.text_pooling == "cls" else masked_mean(hidden, mask)
        return self.text_projection(pooled)

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        """Projected (not normalised) text embedding: CT-CLIP reads the first ([CLS]) token."""
        hidden, pooled = self.get_text_pooled(input_ids, attention_mask, token_type_ids)
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=self.text_projection(pooled))

    # ----------------------------------------------------------------------------------------------- forward

    def forward(
        self,
        ct_values: torch.Tensor | None = None,
        speech_values: torch.Tensor | None = None,
        speech_attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        ct_embeds: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        text_pooled: torch.Tensor | None = None,
        text_prefix: TextPrefix | None = None,
        speech_prefix: SpeechPrefix | None = None,
        return_loss: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SpeechCTClipOutput | tuple:
        r"""
        Any subset of modalities may be given. `ct_embeds` / `text_embeds` are precomputed projected embeddings of
        frozen towers (e.g. from a cache) used instead of running those towers; `text_pooled` is the frozen text
        tower's pooled output before the projection (a teacher whose projection trains); `text_prefix` and
        `speech_prefix` are the cached outputs of a tower's frozen lower layers (`get_text_prefix`,
        `get_speech_prefix`), so only its top runs.
        """
        given = [n for n, v in (("input_ids", input_ids), ("text_embeds", text_embeds), ("text_pooled", text_pooled),
                                ("text_prefix", text_prefix)) if v is not None]  # fmt: skip
        if len(given) > 1:
            raise ValueError(f"Give one of `input_ids`, `text_embeds`, `text_pooled`, `text_prefix`; got {given}.")
        if text_prefix is not None:  # the frozen lower text layers' output, cached; the top layers train
            require_ndim("text_prefix.hidden_states", text_prefix.hidden_states, 3, "(batch, tokens, hidden)")
            text_embeds = self.get_text_features_from_prefix(text_prefix)
        if text_pooled is not None:  # the text tower's pooled output, cached; its projection may be training
            require_ndim(
                "text_pooled", text_pooled, 2, f"pooled text features (batch, {self.text_projection.in_features})"
            )
            text_embeds = self.text_projection(text_pooled)
        if speech_values is not None and speech_prefix is not None:
            raise ValueError("Give either `speech_values` or `speech_prefix`, not both.")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        for name, raw, cached in (("ct", ct_values, ct_embeds), ("text", input_ids, text_embeds)):
            if raw is not None and cached is not None:
                raise ValueError(f"Give either the {name} inputs or `{name}_embeds`, not both.")
        require_same_batch(
            ct_values=ct_values,
            speech_values=speech_values,
            input_ids=input_ids,
            ct_embeds=ct_embeds,
            text_embeds=text_embeds,
        )
        for name, cached in (("ct_embeds", ct_embeds), ("text_embeds", text_embeds)):
            if cached is not None:
                require_ndim(name, cached, 2, f"embeddings (batch, {self.config.projection_dim})")
                require_finite(name, cached)

        ct_out = speech_out = text_out = None
        if ct_values is not None:
            ct_out = self.get_ct_features(ct_values)
            ct_embeds = ct_out.pooler_output
        if speech_values is not None:
            speech_out = self.get_speech_features(speech_values, speech_attention_mask)
        elif speech_prefix is not None:
            batch = next((t.shape[0] for t in (ct_embeds, text_embeds, ct_values, input_ids) if t is not None), None)
            speech_out = SpeechCTClipSpeechOutput(
                pooler_output=self.get_speech_features_from_prefix(speech_prefix, batch_size=batch)
            )
        if input_ids is not None:
            text_out = self.get_text_features(input_ids, attention_mask, token_type_ids)
            text_embeds = text_out.pooler_output

        ct = F.normalize(ct_embeds, dim=-1) if ct_embeds is not None else None
        speech = F.normalize(speech_out.pooler_output, dim=-1) if speech_out is not None else None
        text = F.normalize(text_embeds, dim=-1) if text_embeds is not None else None
        speech_scale, text_scale = self.speech_logit_scale.exp(), self.logit_scale.exp()

        logits: dict[str, torch.Tensor | None] = dict.fromkeys(
            ("speech_ct", "ct_speech", "text_ct", "ct_text", "speech_text", "text_speech")
        )
        for a_name, a, b_name, b, scale in (
            ("speech", speech, "ct", ct, speech_scale),
            ("text", text, "ct", ct, text_scale),
            ("speech", speech, "text", text, speech_scale),
        ):
            if a is not None and b is not None:
                logits[f"{a_name}_{b_name}"] = scale * a @ b.T
                logits[f"{b_name}_{a_name}"] = logits[f"{a_name}_{b_name}"].T

        loss = contrastive = distill = None
        if speech is not None and text is not None:
            if self.config.distill_loss == "similarity" and ct is not None:
                distill = similarity_distillation_loss(speech, text, ct, speech_scale, text_scale.detach())
            elif self.config.distill_loss == "cosine":
                distill = cosine_distillation_loss(speech, text)
        if return_loss:
            if speech is not None and ct is not None:
                if self.config.distill_weight > 0 and text is None:
                    raise ValueError(
                        f"distill_weight={self.config.distill_weight} needs the teacher text: pass `input_ids` or "
                        "`text_embeds` (or set distill_weight=0 for the no-distillation baseline)."
                    )
                contrastive = contrastive_loss(speech, ct, speech_scale)
                loss = contrastive + self.config.distill_weight * distill if distill is not None else contrastive
            elif text is not None and ct is not None:
                contrastive = contrastive_loss(text, ct, text_scale)
                loss = contrastive
            else:
                raise ValueError("return_loss=True needs a CT input plus speech (student) or text (teacher).")

        output = SpeechCTClipOutput(
            loss=loss,
            contrastive_loss=contrastive,
            distill_loss=distill,
            **{f"logits_{k}": v for k, v in logits.items()},
            ct_embeds=ct,
            speech_embeds=speech,
            text_embeds=text,
            ct_model_output=ct_out,
            speech_model_output=speech_out,
            text_model_output=text_out,
        )
        return output if return_dict else output.to_tuple()

    # ----------------------------------------------------------------------------------------------- building

    @classmethod
    def from_tower_pretrained(
        cls,
        *,
        speech: str | None = None,
        text: str | None = None,
        ct: str | None = None,
        teacher: str | None = None,
        config_kwargs: dict[str, Any] | None = None,
        **from_pretrained_kwargs: Any,
    ) -> SpeechCTClipModel:
        """Build the model from one pretrained checkpoint per tower, like
        `VisionTextDualEncoderModel.from_vision_text_pretrained`.

        Args:
            speech: a transformers audio checkpoint (`openai/whisper-base`, HuBERT, wav2vec 2.0; Whisper gives its
                encoder).
            text: a BERT-family checkpoint (CT-CLIP: `microsoft/BiomedVLP-CXR-BERT-specialized`).
            ct: a [`CTViTModel`] checkpoint.
            teacher: a SpeechCTClip checkpoint (e.g. converted CT-CLIP) whose CT and text towers, projections and
                text↔CT temperature are taken as the frozen teacher; `ct` / `text` then stay unset.
            config_kwargs: further [`SpeechCTClipConfig`] fields (projection_dim, distill_weight, pooling, …).
        """
        config_kwargs = dict(config_kwargs or {})
        teacher_model = None
        if teacher is not None:
            if ct is not None or text is not None:
                raise ValueError("Give `teacher` or the `ct`/`text` towers, not both.")
            teacher_model = cls.from_pretrained(teacher, **from_pretrained_kwargs)
            config_kwargs.setdefault("ct_config", teacher_model.config.ct_config)
            config_kwargs.setdefault("text_config", teacher_model.config.text_config)
            config_kwargs.setdefault("projection_dim", teacher_model.config.projection_dim)
            config_kwargs.setdefault("text_pooling", teacher_model.config.text_pooling)
        speech_tower = text_tower = ct_tower = None
        if speech is not None:
            speech_tower = load_tower(speech, **from_pretrained_kwargs)
            if speech_tower.config.is_encoder_decoder:
                speech_tower = speech_tower.get_encoder()
            config_kwargs["speech_config"] = AutoConfig.from_pretrained(speech)
        if text is not None:
            text_tower = load_tower(text, **from_pretrained_kwargs)
            config_kwargs["text_config"] = text_tower.config
        if ct is not None:
            ct_tower = CTViTModel.from_pretrained(ct, **from_pretrained_kwargs)
            config_kwargs["ct_config"] = ct_tower.config

        model = cls(SpeechCTClipConfig(**config_kwargs))
        for tower, target in (
            (speech_tower, model.speech_model),
            (text_tower, model.text_model),
            (ct_tower, model.ct_model),
        ):
            if tower is not None:
                load_matching(target, tower.state_dict(), type(tower).__name__)
        if teacher_model is not None:
            for name in ("ct_model", "text_model", "ct_projection", "text_projection"):
                getattr(model, name).load_state_dict(getattr(teacher_model, name).state_dict())
            model.logit_scale.data.copy_(teacher_model.logit_scale.data)
        return model


__all__ = ["SpeechCTClipModel", "SpeechCTClipOutput", "SpeechCTClipPreTrainedModel", "SpeechCTClipSpeechOutput"]
