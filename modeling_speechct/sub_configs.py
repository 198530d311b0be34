"""Sub-configs of the family's composite configs: a tower config given as a config, a dict (as `config.json`
stores it) or None (the default tower)."""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedConfig


def as_sub_config(value: PreTrainedConfig | dict | None, default: dict, name: str) -> PreTrainedConfig:
    """`value` as a `PreTrainedConfig`: a dict needs its `model_type` (the error names the argument)."""
    if isinstance(value, PreTrainedConfig):
        return value
    value = dict(default if value is None else value)
    model_type = value.pop("model_type", None)
    if model_type is None:
        raise ValueError(f"`{name}` needs a `model_type` (e.g. 'whisper', 'hubert', 'bert'); got keys {sorted(value)}.")
    value.pop("transformers_version", None)
    return AutoConfig.for_model(model_type, **value)
