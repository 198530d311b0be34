"""SpeechCLIP and SpeechCLIP+: speech ↔ images through a frozen CLIP, with spoken keywords.

A frozen speech tower's hidden layers are mixed by learnt softmax weights; one post-LN transformer layer over the
frames, with learnable tokens prepended, feeds the branches:
- parallel: a CLS token → linear → CLIP's joint space, contrasted with CLIP's image embeddings;
- cascaded: K CLS tokens (or, SpeechCLIP+, CIF tokens) → linear to CLIP's token-embedding width → BatchNorm →
  vector quantisation onto CLIP's subwords (the spoken keywords) → `[SOT] kw₁ … kw_K [EOT]` through CLIP's frozen
  text encoder → its text projection, contrasted with the image;
- hybrid: both from one shared layer, loss `w_c · L_cascaded + w_p · L_parallel` (+ `0.25 · L_quantity` for CIF).
Captions of the same image are masked out as each other's negatives (`losses.contrastive_loss(item_ids=…)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, CLIPModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .cif import CIFWeights, integrate_and_fire, scale_to_target
from .configuration_speechclip import SpeechClipConfig
from .losses import contrastive_loss, quantity_loss
from .pooling import LayerWeightedSum, PrefixTransformer, stride_frames
from .projection import init_projection_head, projection_head
from .quantization import KeywordQuantizer, allowed_vocabulary
from .towers import (
    build_audio_encoder,
    check_audio_input,
    encode_frames,
    keep_frozen_in_eval,
    layer_stack,
    load_matching,
    load_tower,
)
from .validation import require_finite, require_same_batch


@dataclass
class SpeechClipSpeechOutput(ModelOutput):
    """
    What the speech side computes.

    Args:
        parallel_embeds: `(batch, projection_dim)` the parallel branch's embedding (None without one).
        cascaded_embeds: `(batch, projection_dim)` CLIP's text embedding of the spoken keywords (None without).
        keyword_ids: `(batch, keywords)` the chosen subword ids (padding −1 for CIF rows with fewer tokens).
        keyword_scores: `(batch, keywords)` the cosine of each keyword query with its subword.
        keyword_mask: `(batch, keywords)` True for real keywords.
        cif_alpha_sum: `(batch,)` Σα of the CIF weights (before any scaling), for the quantity loss.
        cif_target: `(batch,)` the target token count the quantity loss compares it with.
    """

    parallel_embeds: torch.Tensor | None = None
    cascaded_embeds: torch.Tensor | None = None
    keyword_ids: torch.Tensor | None = None
    keyword_scores: torch.Tensor | None = None
    keyword_mask: torch.Tensor | None = None
    cif_alpha_sum: torch.Tensor | None = None
    cif_target: torch.Tensor | None = None


@dataclass
class SpeechClipOutput(ModelOutput):
    """
    Args:
        loss: `w_c · L_cascaded + w_p · L_parallel + w_q · L_quantity` (the terms the mode has), with `return_loss`.
        parallel_loss / cascaded_loss / quantity_loss: the terms.
        image_embeds: `(batch, projection_dim)` CLIP's image embeddings, L2-normalised.
        parallel_embeds / cascaded_embeds: the speech embeddings, L2-normalised.
        speech_outputs: the [`SpeechClipSpeechOutput`].
    """

    loss: torch.Tensor | None = None
    parallel_loss: torch.Tensor | None = None
    cascaded_loss: torch.Tensor | None = None
    quantity_loss: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    parallel_embeds: torch.Tensor | None = None
    cascaded_embeds: torch.Tensor | None = None
    speech_outputs: SpeechClipSpeechOutput | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in self.values())


def clip_special_ids(text_config: Any) -> tuple[int, int, int]:
    """CLIP's `([SOT], [EOT], pad)` ids. Configs saved before transformers' PR #24773 say `eos_token_id = 2`
    (and bos 0, pad 1) while CLIP's tokenizer uses the last two ids of its vocabulary; `CLIPTextModel` then pools
    at the largest id, so here too the last two ids are [SOT] and [EOT] (and padding is [EOT], as the tokenizer
    pads)."""
    if text_config.eos_token_id == 2:
        return text_config.vocab_size - 2, text_config.vocab_size - 1, text_config.vocab_size - 1
    pad = text_config.pad_token_id if text_config.pad_token_id is not None else text_config.eos_token_id
    return text_config.bos_token_id, text_config.eos_token_id, pad


class SpeechClipPreTrainedModel(PreTrainedModel):
    config: SpeechClipConfig
    config_class = SpeechClipConfig
    base_model_prefix = "speechclip"
    main_input_name = "speech_values"
    input_modalities = ("audio", "image", "text")
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SpeechClipModel):
            if module.parallel_projection is not None:
                init_projection_head(module.parallel_projection)
            if module.keyword_projection is not None:
                init_projection_head(module.keyword_projection)
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)
        elif isinstance(module, LayerWeightedSum):
            init.zeros_(module.weights)
        elif isinstance(module, PrefixTransformer) and module.num_prefix:
            init.normal_(module.cls_token, std=self.config.initializer_range)


class SpeechClipModel(SpeechClipPreTrainedModel):
    r"""
    SpeechCLIP / SpeechCLIP+ over any transformers audio encoder and any [`CLIPModel`], both frozen.

    Example:

    ```python
    >>> from modeling_speechct import SpeechClipModel
    >>> model = SpeechClipModel.from_tower_pretrained(
    ...     speech="facebook/hubert-base-ls960", clip="openai/clip-vit-base-patch32", config_kwargs={"mode": "hybrid"})
    >>> out = model(speech_values=waves, speech_attention_mask=mask, pixel_values=images, item_ids=ids,
    ...             return_loss=True)
    ```
    """

    def __init__(self, config: SpeechClipConfig):
        super().__init__(config)
        speech = config.speech_config
        text = config.clip_config.text_config
        hidden = speech.hidden_size
        self.speech_model = build_audio_encoder(speech)
        self.clip = CLIPModel(config.clip_config)
        self.speech_layer_weights = LayerWeightedSum(speech.num_hidden_layers + 1, layer_norm=config.speech_layer_norm)
        keyword_tokens = config.num_keywords if config.uses_cascaded and not config.uses_cif else 0
        self.branch = PrefixTransformer(
            int(config.uses_parallel) + keyword_tokens,
            hidden,
            config.num_heads,
            config.intermediate_size or 4 * hidden,
            dropout=config.branch_dropout,
        )
        projection_dim = config.clip_config.projection_dim
        self.parallel_projection = projection_head(hidden, projection_dim) if config.uses_parallel else None
        self.cif = CIFWeights(hidden) if config.uses_cif else None
        self.keyword_projection = self.keyword_norm = self.quantizer = None
        if config.uses_cascaded:
            self.keyword_projection = projection_head(hidden, text.hidden_size, bias=True)
            self.keyword_norm = nn.BatchNorm1d(text.hidden_size)
            vocabulary = allowed_vocabulary(text.vocab_size, list(clip_special_ids(text)), config.keyword_vocabulary)
            self.quantizer = KeywordQuantizer(vocabulary, config.vq_temperature)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
        self.register_buffer("cif_steps", torch.zeros((), dtype=torch.long))  # training steps seen (CIF scaling)
        self.post_init()
        self.init_keyword_norm()
        self.apply_freezing()

    # ----------------------------------------------------------------------------------------------- frozen parts

    def _frozen(self) -> list[nn.Module]:
        return [self.speech_model, self.clip]

    def _speech_layer_stack(self) -> nn.ModuleList | None:
        """The speech tower's transformer layers (`towers.layer_stack`): where LoRA adapters go."""
        return layer_stack(self.speech_model)

    def apply_freezing(self) -> None:
        """The speech tower and CLIP are frozen (no gradient, eval mode); everything between them trains."""
        for module in self._frozen():
            module.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> SpeechClipModel:
        super().train(mode)
        keep_frozen_in_eval(self._frozen())
        return self

    @torch.no_grad()
    def init_keyword_norm(self) -> None:
        """BatchNorm's affine set to the per-dimension std / mean of CLIP's allowed token embeddings, so normalised
        keyword queries start where the subwords are (call again after loading other CLIP weights)."""
        if self.keyword_norm is None or self.token_embeddings.is_meta:  # meta: the checkpoint brings the values
            return
        table = self.token_embeddings[self.quantizer.vocabulary.to(self.token_embeddings.device)].float()
        self.keyword_norm.weight.copy_(table.std(dim=0))
        self.keyword_norm.bias.copy_(table.mean(dim=0))

    @property
    def token_embeddings(self) -> torch.Tensor:
        """CLIP's subword embedding table `(vocab, width)`: the codebook of the spoken keywords."""
        return self.clip.text_model.embeddings.token_embedding.weight

    # ----------------------------------------------------------------------------------------------- features

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs: Any) -> BaseModelOutputWithPooling:
        """CLIP's projected image embedding (`pooler_output`, not normalised), as `CLIPModel.get_image_features`."""
        require_finite("pixel_values", pixel_values)
        return self.clip.get_image_features(pixel_values=pixel_values, **kwargs)

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> BaseModelOutputWithPooling:
        """CLIP's projected text embedding (`pooler_output`), as `CLIPModel.get_text_features`."""
        return self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    def keyword_text_features(self, keyword_embeds: torch.Tensor, keyword_mask: torch.Tensor) -> torch.Tensor:
        """CLIP's projected text embedding of `[SOT] kw₁ … kw_n [EOT]` given the keywords' *embeddings* `(batch,
        keywords, width)` (n per row from `keyword_mask`): CLIP's own text forward runs on placeholder ids whose
        token embeddings are replaced by these, so positions, the causal mask and pooling at [EOT] are CLIP's."""
        text = self.config.clip_config.text_config
        sot_id, eot_id, pad_id = clip_special_ids(text)
        batch, slots, _ = keyword_embeds.shape
        lengths = keyword_mask.sum(dim=1)
        width = slots + 2
        position = torch.arange(width, device=keyword_embeds.device)[None, :]
        eot_at = lengths[:, None] + 1
        table = self.token_embeddings
        ids = torch.full((batch, width), pad_id, dtype=torch.long, device=keyword_embeds.device)
        ids[:, 0] = sot_id
        ids = torch.where(position == eot_at, torch.full_like(ids, eot_id), ids)
        inside = (position >= 1) & (position < eot_at)
        # CLIP pools at the first [EOT] id (or, legacy configs with eos_token_id = 2, at the largest id): the
        # placeholders are [SOT] ids, never the [EOT] one, and [SOT] < [EOT] in CLIP's vocabulary.
        ids = torch.where(inside, torch.full_like(ids, sot_id), ids)
        embeds = table[ids].to(keyword_embeds.dtype)
        keywords = F.pad(keyword_embeds, (0, 0, 1, 1))  # align keyword k with position k + 1
        embeds = torch.where(inside[..., None], keywords, embeds)
        attention_mask = (position <= eot_at).long()
        embedding = self.clip.text_model.embeddings.token_embedding
        handle = embedding.register_forward_hook(lambda _module, _args, _output: embeds)
        try:
            return self.clip.get_text_features(input_ids=ids, attention_mask=attention_mask).pooler_output
        finally:
            handle.remove()

    def _cif_target(self, frame_mask: torch.Tensor, target_lengths: torch.Tensor | None) -> torch.Tensor | None:
        """Each utterance's target token count, or None when `cif_target="subwords"` and no lengths were given
        (embedding without a loss needs none)."""
        if self.config.cif_target == "subwords":
            if target_lengths is None:
                return None
            return target_lengths.to(frame_mask.device).float()
        tower_frames = frame_mask.sum(dim=1).float() * self.config.frame_stride  # ≤ stride − 1 frames over
        return tower_frames / self.config.cif_frames_per_token

    @torch.no_grad()
    def encode_speech_layers(
        self, speech_values: torch.Tensor, speech_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every hidden layer of the frozen speech tower, `(batch, layers + 1, frames, hidden)`, and the frame mask
        `(batch, frames)`: the frozen work, which a training run computes once and caches
        (`training.embedding_cache.SpeechLayersCache`) and passes back as `speech_layers` / `speech_frame_mask`."""
        return self._speech_hidden_layers(speech_values, speech_attention_mask)

    def _speech_hidden_layers(
        self, speech_values: torch.Tensor, speech_attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode_speech_layers` with gradients where the tower has trainable weights (LoRA adapters on its
        attention: `training.lora.add_speech_lora`); the tower's dropout stays off either way."""
        check_audio_input(self.speech_model, self.config.speech_config, speech_values, speech_attention_mask)
        if speech_attention_mask is None:
            speech_attention_mask = torch.ones(speech_values.shape[0], speech_values.shape[-1], dtype=torch.long,
                                               device=speech_values.device)  # fmt: skip
        was_training = self.speech_model.training
        self.speech_model.eval()
        try:
            _, frames, outputs = encode_frames(self.speech_model, speech_values, speech_attention_mask, all_layers=True)
        finally:
            self.speech_model.train(was_training)
        return torch.stack(outputs.hidden_states, dim=1), frames

    def _branch_sequence(
        self,
        speech_values: torch.Tensor | None,
        speech_attention_mask: torch.Tensor | None,
        speech_layers: torch.Tensor | None = None,
        speech_frame_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The branch layer's output over `[prefix tokens; frames]` and the frame mask, from audio or from its
        cached layers."""
        if speech_layers is None:
            if speech_values is None:
                raise ValueError("Give `speech_values` (audio) or `speech_layers` + `speech_frame_mask` (cached).")
            adapted = any(p.requires_grad for p in self.speech_model.parameters())
            with torch.set_grad_enabled(torch.is_grad_enabled() and adapted):
                speech_layers, speech_frame_mask = self._speech_hidden_layers(speech_values, speech_attention_mask)
        elif speech_frame_mask is None or speech_frame_mask.shape != (speech_layers.shape[0], speech_layers.shape[2]):
            raise ValueError(
                f"`speech_frame_mask` must be (batch, frames) = {(speech_layers.shape[0], speech_layers.shape[2])} "
                "for `speech_layers` (batch, layers, frames, hidden)."
            )
        mixed = self.speech_layer_weights(tuple(speech_layers.to(self.logit_scale.dtype).unbind(dim=1)))
        frames = speech_frame_mask.bool()
        if self.config.frame_stride > 1:
            mixed, frames = stride_frames(mixed, frames, self.config.frame_stride)
        return self.branch(mixed, frames), frames

    def _keyword_slots(
        self, sequence: torch.Tensor, frames: torch.Tensor, out: SpeechClipSpeechOutput, target_lengths: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The keyword queries `(batch, slots, hidden)` and their mask: the K CLS outputs, or the CIF tokens fired
        over the frames (recording Σα and its target in `out`; scaled to the target in the first training steps;
        the tail fires at evaluation)."""
        cfg = self.config
        prefix = int(cfg.uses_parallel)
        if not cfg.uses_cif:
            queries = sequence[:, prefix : prefix + cfg.num_keywords]
            return queries, torch.ones(queries.shape[:2], dtype=torch.bool, device=queries.device)
        frame_states = sequence[:, prefix:]
        alpha = self.cif(frame_states, frames)
        out.cif_alpha_sum = alpha.sum(dim=1)
        out.cif_target = self._cif_target(frames, target_lengths)
        if self.training and int(self.cif_steps) < cfg.cif_scaling_steps and out.cif_target is not None:
            alpha = scale_to_target(alpha, out.cif_target.round().clamp(min=1))
        tail = None if self.training else cfg.cif_tail_threshold
        fired = integrate_and_fire(frame_states, alpha, cfg.cif_threshold, cfg.cif_max_tokens, tail)
        return fired.tokens, fired.token_mask

    def get_speech_features(
        self,
        speech_values: torch.Tensor | None = None,
        speech_attention_mask: torch.Tensor | None = None,
        cif_target_lengths: torch.Tensor | None = None,
        speech_layers: torch.Tensor | None = None,
        speech_frame_mask: torch.Tensor | None = None,
    ) -> SpeechClipSpeechOutput:
        """Every branch's speech embedding (projected, not normalised) and the spoken keywords, from audio or from
        its cached frozen layers (`encode_speech_layers`)."""
        sequence, frames = self._branch_sequence(speech_values, speech_attention_mask, speech_layers, speech_frame_mask)
        out = SpeechClipSpeechOutput()
        if self.config.uses_parallel:
            out.parallel_embeds = self.parallel_projection(sequence[:, 0])
        if not self.config.uses_cascaded:
            return out
        queries, keyword_mask = self._keyword_slots(sequence, frames, out, cif_target_lengths)
        quantized = self.quantizer(self._keyword_queries(queries, keyword_mask), self.token_embeddings)
        out.cascaded_embeds = self.keyword_text_features(quantized.embeds, keyword_mask)
        out.keyword_ids = quantized.ids.masked_fill(~keyword_mask, -1)
        out.keyword_scores = quantized.scores.masked_fill(~keyword_mask, 0.0)
        out.keyword_mask = keyword_mask
        return out

    def _keyword_queries(self, queries: torch.Tensor, keyword_mask: torch.Tensor) -> torch.Tensor:
        """Linear to CLIP's token width, then BatchNorm over the real keywords only (CIF padding excluded)."""
        projected = self.keyword_projection(queries)
        normed = torch.zeros_like(projected)
        if keyword_mask.any():
            normed[keyword_mask] = self.keyword_norm(projected[keyword_mask])
        return normed

    @torch.no_grad()
    def get_keywords(
        self,
        speech_values: torch.Tensor | None = None,
        speech_attention_mask: torch.Tensor | None = None,
        top_k: int = 5,
        *,
        speech_layers: torch.Tensor | None = None,
        speech_frame_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each utterance's keyword slots' `top_k` nearest subwords: `(ids (batch, slots, k), cosines (batch,
        slots, k), slot mask (batch, slots))`; `ids[..., 0]` is the keyword the cascaded path reads. From audio or
        from its cached frozen layers, as `get_speech_features`."""
        if self.quantizer is None:
            raise ValueError(f"mode={self.config.mode!r} has no keywords; use a cascaded or hybrid mode.")
        was_training = self.training
        self.eval()
        try:
            sequence, frames = self._branch_sequence(speech_values, speech_attention_mask, speech_layers,
                                                     speech_frame_mask)  # fmt: skip
            queries, mask = self._keyword_slots(sequence, frames, SpeechClipSpeechOutput())
            ids, scores = self.quantizer.top_k(self._keyword_queries(queries, mask), self.token_embeddings, top_k)
            return ids.masked_fill(~mask[..., None], -1), scores.masked_fill(~mask[..., None], 0.0), mask
        finally:
            self.train(was_training)

    # ----------------------------------------------------------------------------------------------- forward

    def forward(
        self,
        speech_values: torch.Tensor | None = None,
        speech_attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        item_ids: torch.Tensor | None = None,
        cif_target_lengths: torch.Tensor | None = None,
        return_loss: bool | None = None,
        speech_layers: torch.Tensor | None = None,
        speech_frame_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SpeechClipOutput:
        """Speech ↔ image contrast against CLIP's image embeddings (`pixel_values`, or precomputed `image_embeds`
        from a cache of the frozen image tower). `item_ids` `(batch,)`: rows with the same id are captions of one
        image and are not each other's negatives."""
        if image_embeds is None and pixel_values is not None:
            with torch.no_grad():
                image_embeds = self.get_image_features(pixel_values).pooler_output
        require_same_batch(speech_values=speech_values, speech_layers=speech_layers, image_embeds=image_embeds,
                           item_ids=item_ids)  # fmt: skip
        speech = self.get_speech_features(speech_values, speech_attention_mask, cif_target_lengths, speech_layers,
                                          speech_frame_mask)  # fmt: skip
        cfg = self.config
        out = SpeechClipOutput(speech_outputs=speech)
        out.parallel_embeds = None if speech.parallel_embeds is None else F.normalize(speech.parallel_embeds, dim=-1)
        out.cascaded_embeds = None if speech.cascaded_embeds is None else F.normalize(speech.cascaded_embeds, dim=-1)
        if image_embeds is not None:
            out.image_embeds = F.normalize(image_embeds, dim=-1)
        if return_loss:
            if out.image_embeds is None:
                raise ValueError("return_loss=True needs `pixel_values` or `image_embeds`.")
            scale = self.logit_scale.exp()
            total = out.image_embeds.new_zeros(())
            if out.parallel_embeds is not None:
                out.parallel_loss = contrastive_loss(out.parallel_embeds, out.image_embeds, scale, item_ids)
                total = total + cfg.parallel_loss_weight * out.parallel_loss
            if out.cascaded_embeds is not None:
                out.cascaded_loss = contrastive_loss(out.cascaded_embeds, out.image_embeds, scale, item_ids)
                total = total + cfg.cascaded_loss_weight * out.cascaded_loss
            if speech.cif_alpha_sum is not None:
                if speech.cif_target is None:
                    raise ValueError("cif_target='subwords' needs `cif_target_lengths` (each caption's subword count).")
                out.quantity_loss = quantity_loss(speech.cif_alpha_sum, speech.cif_target)
                total = total + cfg.quantity_loss_weight * out.quantity_loss
            out.loss = total
            if self.training:
                self.cif_steps += 1
        return out

    # ----------------------------------------------------------------------------------------------- building

    @classmethod
    def from_tower_pretrained(
        cls,
        *,
        speech: str,
        clip: str,
        config_kwargs: dict[str, Any] | None = None,
        **from_pretrained_kwargs: Any,
    ) -> SpeechClipModel:
        """Build from one pretrained audio checkpoint (HuBERT, wav2vec 2.0, Whisper → its encoder) and one
        `CLIPModel` checkpoint, like `VisionTextDualEncoderModel.from_vision_text_pretrained`."""
        speech_tower = load_tower(speech, **from_pretrained_kwargs)
        if speech_tower.config.is_encoder_decoder:
            speech_tower = speech_tower.get_encoder()
        clip_model = CLIPModel.from_pretrained(clip, **from_pretrained_kwargs)
        config = SpeechClipConfig(
            speech_config=AutoConfig.from_pretrained(speech), clip_config=clip_model.config, **(config_kwargs or {})
        )
        model = cls(config)
        load_matching(model.speech_model, speech_tower.state_dict(), type(speech_tower).__name__)
        model.clip.load_state_dict(clip_model.state_dict())
        model.init_keyword_norm()
        return model


__all__ = ["SpeechClipModel", "SpeechClipOutput", "SpeechClipPreTrainedModel", "SpeechClipSpeechOutput"]
