"""Blocks every system of the family builds its towers from (SpeechCT-CLIP today; SpeechCLIP and AcuLa reuse them).

A tower is any transformers encoder: an audio encoder (Whisper's encoder, HuBERT, wav2vec 2.0, the package's own
CTC tower) or a bidirectional text encoder (BERT family). Here: building one from its config, loading pretrained
weights quietly (the task heads we drop on purpose are not a warning), finding its layer stack, freezing all but
its top layers (frozen parts stay in eval mode), and running it only up to a layer so its frozen lower part can be
computed once and cached (`SpeechPrefix`).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES
from transformers.utils import ModelOutput
from transformers.utils import logging as hf_logging

from .validation import require_finite, require_ndim

AUDIO_INPUT_NAMES = ("input_values", "input_features")

logger = hf_logging.get_logger(__name__)


def load_tower(name_or_path: Any, **from_pretrained_kwargs: Any) -> PreTrainedModel:
    """`AutoModel.from_pretrained` for a tower, with one line instead of transformers' load-report table.

    A tower is the *base* model of a checkpoint that was often saved with a task head (a CTC `lm_head`, BERT's
    `cls.predictions`); the head's weights are then "unexpected" by design and transformers prints a table for them
    on every load. Here they are reported at INFO when the checkpoint's architecture has a head, at WARNING
    otherwise; missing weights (randomly initialised — the tower would be untrained) are always a WARNING.
    """
    # transformers 5 runs its tensor-parallel plan check only when modeling_utils' logger level is ≥ WARNING (an
    # inverted test), so quietening the load table alone would print a "layers were not sharded" list for every
    # Whisper/BERT tower: quieten both loggers for the load.
    loggers = [
        hf_logging.get_logger(f"transformers.{name}") for name in ("modeling_utils", "distributed.tensor_parallel")
    ]
    levels = [one.level for one in loggers]
    for one in loggers:
        one.setLevel(hf_logging.ERROR)
    try:
        tower, info = AutoModel.from_pretrained(name_or_path, output_loading_info=True, **from_pretrained_kwargs)
    finally:
        for one, level in zip(loggers, levels, strict=True):
            one.setLevel(level)
    unexpected, missing = sorted(info["unexpected_keys"]), sorted(info["missing_keys"])
    if unexpected:
        saved_as = getattr(tower.config, "architectures", None) or []
        with_head = any(arch != type(tower).__name__ for arch in saved_as)
        detail = f"the task head of {', '.join(saved_as)}" if with_head else ", ".join(unexpected[:5])
        report = logger.info if with_head else logger.warning
        report(f"{name_or_path}: {len(unexpected)} weights not used by {type(tower).__name__} ({detail})")
    if missing:
        logger.warning(f"{name_or_path}: {len(missing)} weights missing from the checkpoint and randomly "
                       f"initialised: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")  # fmt: skip
    return tower


@dataclass
class SpeechPrefix:
    """What the frozen lower speech layers produce, one row per window a recording owns: `hidden_states`
    `(windows, frames, hidden)`, `frame_mask` `(windows, frames)`, `owner` `(windows,)` = the recording's index."""

    hidden_states: torch.Tensor
    frame_mask: torch.Tensor
    owner: torch.Tensor

    def to(self, *args: Any, **kwargs: Any) -> SpeechPrefix:
        """Moved like a tensor (so Accelerate's `send_to_device` and DDP move it); only the states change dtype."""
        kwargs.pop("non_blocking", None)
        device = next((a for a in args if isinstance(a, (str, torch.device))), kwargs.get("device"))
        return SpeechPrefix(
            hidden_states=self.hidden_states.to(*args, **kwargs),
            frame_mask=self.frame_mask.to(device) if device is not None else self.frame_mask,
            owner=self.owner.to(device) if device is not None else self.owner,
        )


@dataclass
class TextPrefix:
    """What the frozen lower text layers produce: `hidden_states` `(batch, tokens, hidden)` entering the first
    trainable layer and the token `attention_mask` `(batch, tokens)`."""

    hidden_states: torch.Tensor
    attention_mask: torch.Tensor

    def to(self, *args: Any, **kwargs: Any) -> TextPrefix:
        """Moved like a tensor (Accelerate's `send_to_device`); only the states change dtype."""
        kwargs.pop("non_blocking", None)
        device = next((a for a in args if isinstance(a, (str, torch.device))), kwargs.get("device"))
        mask = self.attention_mask.to(device) if device is not None else self.attention_mask
        return TextPrefix(hidden_states=self.hidden_states.to(*args, **kwargs), attention_mask=mask)


class _StopForward(Exception):
    """Raised by a forward pre-hook once the layer input it waits for has been captured."""


def run_until(
    tower: nn.Module, layer: nn.Module, input_name: str, values: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Run `tower` only up to `layer` and return that layer's input hidden states (architecture-agnostic: a
    pre-hook captures the input and stops the forward pass, so the layers above are never computed)."""
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        captured.append(args[0] if args else kwargs["hidden_states"])
        raise _StopForward

    handle = layer.register_forward_pre_hook(hook, with_kwargs=True)
    kwargs: dict[str, Any] = {input_name: values}
    if accepts(tower, "attention_mask"):
        kwargs["attention_mask"] = mask.long()
    try:
        tower(**kwargs, return_dict=True)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"{type(tower).__name__}: the layer at the prefix boundary never ran.")
    return captured[0]


def build_audio_encoder(config: PreTrainedConfig) -> PreTrainedModel:
    """An audio encoder from any transformers config; encoder–decoder models (Whisper) give their encoder only."""
    try:
        model_class = AutoModel._model_mapping[type(config)]
    except KeyError as err:
        raise ValueError(f"speech_config: model_type {config.model_type!r} has no transformers AutoModel.") from err
    if config.is_encoder_decoder:
        # Build the encoder class directly (WhisperModel → WhisperEncoder) so no decoder is ever allocated.
        module = sys.modules[model_class.__module__]
        encoder_class = getattr(module, model_class.__name__.replace("Model", "Encoder"), None)
        model = encoder_class(config) if encoder_class is not None else AutoModel.from_config(config).get_encoder()
    else:
        model = AutoModel.from_config(config)
    if model.main_input_name not in AUDIO_INPUT_NAMES:
        raise ValueError(
            f"speech_config: model_type {config.model_type!r} is not an audio encoder (its input is "
            f"{model.main_input_name!r}, expected one of {AUDIO_INPUT_NAMES}); use Whisper, HuBERT, wav2vec 2.0, …"
        )
    return model


def build_text_encoder(config: PreTrainedConfig) -> PreTrainedModel:
    """A bidirectional text encoder (BERT family); causal LMs and seq2seq models are refused."""
    if config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES or config.is_encoder_decoder:
        raise ValueError(
            f"text_config: model_type {config.model_type!r} is not a bidirectional text encoder the model can use "
            "(expected a masked-LM family such as 'bert', 'roberta', 'deberta-v2')."
        )
    try:  # CT-CLIP reads the [CLS] hidden state, not BERT's pooler: leave the pooler out when the class allows.
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


def accepts(module: nn.Module, argument: str) -> bool:
    parameters = inspect.signature(module.forward).parameters
    return argument in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def load_matching(target: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a tower's weights, tolerating only heads/poolers the tower does not have."""
    result = target.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise ValueError(f"{source} checkpoint lacks weights the tower needs: {result.missing_keys[:8]} …")


def layer_stack(encoder: nn.Module) -> nn.ModuleList | None:
    """A tower's transformer layers: the longest ModuleList named `layers` / `layer` (Whisper, wav2vec 2.0, HuBERT,
    BERT and the AST/ViT family all name theirs so)."""
    stacks = [
        m
        for n, m in encoder.named_modules()
        if isinstance(m, nn.ModuleList) and n.split(".")[-1] in ("layers", "layer")
    ]
    return max(stacks, key=len, default=None)


def final_norm(encoder: nn.Module, config: PreTrainedConfig) -> nn.Module | None:
    """The norm applied after the layer stack: Whisper's `layer_norm`; wav2vec 2.0 / HuBERT's only in their
    stable-layer-norm variant (the post-norm variant normalises before the stack)."""
    if getattr(config, "do_stable_layer_norm", False):
        return getattr(getattr(encoder, "encoder", None), "layer_norm", None)
    if hasattr(encoder, "encoder"):
        return None
    return getattr(encoder, "layer_norm", None)


def train_top_layers(
    encoder: nn.Module, config: PreTrainedConfig, k: int, name: str = "trainable_layers", what: str = "the tower"
) -> None:
    """Freeze `encoder` but its top `k` layers and the norm that follows them (SpeechCT-CLIP's recipe); `name` and
    `what` say in an error which setting asked for too many layers of which tower."""
    stack = layer_stack(encoder)
    if stack is None or k > len(stack):
        found = 0 if stack is None else len(stack)
        raise ValueError(f"{name}={k}, but {what} has {found} layers.")
    encoder.requires_grad_(False)
    for layer in list(stack)[len(stack) - k :]:
        layer.requires_grad_(True)
    norm = final_norm(encoder, config)
    if k and norm is not None:
        norm.requires_grad_(True)


def keep_frozen_in_eval(modules: Iterable[nn.Module]) -> None:
    """Put frozen modules back in eval mode after `model.train()`: no dropout, no SpecAugment where nothing learns
    (and a cache of their output stays valid)."""
    for module in modules:
        module.eval()


def check_audio_input(
    encoder: nn.Module, config: PreTrainedConfig, values: torch.Tensor, mask: torch.Tensor | None, name: str = "speech"
) -> None:
    """Refuse what an audio encoder cannot read, naming the argument: the wrong rank, the wrong number of mel
    bins, no samples, NaN/inf, a mask of another shape, or recordings whose mask is all zero (empty audio)."""
    if encoder.main_input_name == "input_values":
        require_ndim(f"{name}_values", values, 2, "waveforms (batch, samples)")
    else:
        require_ndim(f"{name}_values", values, 3, "spectrograms (batch, mel_bins, frames)")
        bins = getattr(config, "num_mel_bins", None)
        if bins is not None and values.shape[1] != bins:
            raise ValueError(f"`{name}_values` has {values.shape[1]} mel bins; the {name} tower takes {bins}.")
    if values.shape[-1] == 0:
        raise ValueError(f"`{name}_values` is empty (0 samples/frames).")
    require_finite(f"{name}_values", values)
    if mask is not None:
        if mask.shape != (values.shape[0], values.shape[-1]):
            raise ValueError(
                f"`{name}_attention_mask` has shape {tuple(mask.shape)}; expected (batch, length) = "
                f"{(values.shape[0], values.shape[-1])}."
            )
        empty = (mask.sum(dim=-1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"`{name}_attention_mask` rows {empty} are all zero: those recordings are empty.")


def frame_mask(encoder: nn.Module, input_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Which output frames of an audio encoder carry audio, from the mask over its input samples / feature frames
    (the convolutional front-end's own length formula where it has one, else proportionally)."""
    lengths = input_mask.sum(dim=-1)
    to_frames = getattr(encoder, "_get_feat_extract_output_lengths", None)
    if to_frames is not None:
        frame_lengths = to_frames(lengths).long()
    else:
        frame_lengths = torch.ceil(lengths * num_frames / input_mask.shape[-1]).long()
    return torch.arange(num_frames, device=input_mask.device)[None, :] < frame_lengths[:, None]


def encode_frames(
    encoder: nn.Module,
    values: torch.Tensor,
    mask: torch.Tensor,
    layer_weights: nn.Module | None = None,
    all_layers: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, ModelOutput]:
    """Run an audio encoder: `(frames (batch, T, hidden), frame mask (batch, T), the encoder's output)`; with
    `layer_weights` (a `pooling.LayerWeightedSum`) the frames are its mix of every hidden layer. `all_layers`
    keeps every hidden layer in the output without mixing them (a frozen tower run under `no_grad`, mixed after)."""
    kwargs: dict[str, Any] = {encoder.main_input_name: values}
    if accepts(encoder, "attention_mask"):
        kwargs["attention_mask"] = mask.long()
    if layer_weights is not None or all_layers:
        kwargs["output_hidden_states"] = True
    outputs = encoder(**kwargs, return_dict=True)
    hidden = layer_weights(outputs.hidden_states) if layer_weights is not None else outputs.last_hidden_state
    return hidden, frame_mask(encoder, mask, hidden.shape[1]), outputs
