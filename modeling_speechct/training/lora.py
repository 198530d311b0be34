"""LoRA on the speech tower (PEFT): low-rank adapters on the attention projections of its trainable layers.

SpeechCT-CLIP adapts its trainable top layers (the layers below stay frozen and cached); SpeechCLIP, whose tower is
frozen whole, adapts every layer (its speech then runs each step, uncached). The adapted layers' own weights freeze;
the pooling, branches, projections and temperature keep training. At the end the adapters are either merged into
the weights (one plain checkpoint) or saved beside the model (`<final>/adapter`, loaded with `load_speech_lora` or
`from_pretrained_with_adapter`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")
ADAPTER_DIR = "adapter"


def lora_targets(model: Any) -> list[str]:
    """Names of the attention projections in the speech tower's trainable top layers (every layer of a model
    without `speech_trainable_layers`, e.g. `SpeechClipModel`)."""
    stack = model._speech_layer_stack()
    top_only = getattr(model.config, "speech_trainable_layers", None) is not None
    first = model.speech_prefix_layer if top_only else 0
    prefixes = [n for n, m in model.named_modules() if m is stack]
    targets = []
    for name, _ in model.named_modules():
        match = re.match(rf"^{re.escape(prefixes[0])}\.(\d+)\..*\.({'|'.join(ATTENTION_PROJECTIONS)})$", name)
        if match and int(match.group(1)) >= first:
            targets.append(name)
    if not targets:
        raise ValueError("LoRA found no attention projection (q/k/v/out_proj) in the speech tower's trainable layers.")
    return targets


def add_speech_lora(model: Any, r: int, alpha: int, dropout: float) -> Any:
    """Inject LoRA adapters in place (the model keeps its class, so caching and saving are unchanged)."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = lora_targets(model)
    trainable_top = [p for n, p in model.speech_model.named_parameters() if p.requires_grad]
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    model = inject_adapter_in_model(config, model)
    for p in trainable_top:  # the adapted layers' own weights freeze: only the adapters learn there
        p.requires_grad_(False)
    for name, p in model.named_parameters():
        if "lora_" in name:
            p.requires_grad_(True)
    model._speech_lora_config = config
    return model


def finalize_lora(model: Any, output_dir: str | Path, merge: bool) -> Any:
    """Merge the adapters into the base weights, or save them to `<output_dir>/adapter` (the training script moves
    them into the final folder) and return the model without them: the base checkpoint plus that folder."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    config = model._speech_lora_config
    if merge:
        return _merge(model)
    folder = Path(output_dir) / ADAPTER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, folder / "adapter_model.safetensors")
    config.save_pretrained(folder)
    return _strip_lora(model)


def _merge(model: Any) -> Any:
    """Fold every adapter into its base weights, then drop the LoRA wrappers."""
    for module in model.modules():
        if hasattr(module, "merge") and hasattr(module, "lora_A"):
            module.merge()
    return _strip_lora(model)


def _strip_lora(model: Any) -> Any:
    """Replace each LoRA layer by its base layer (after a merge: the merged weights)."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[1], module.get_base_layer())
    return model


def load_speech_lora(model: Any, adapter_dir: str | Path, merge: bool = False) -> Any:
    """Put saved adapters back into a `SpeechCTClipModel` or `SpeechClipModel` (optionally merged)."""
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    config = LoraConfig.from_pretrained(str(adapter_dir))
    model = inject_adapter_in_model(config, model)
    set_peft_model_state_dict(model, load_file(Path(adapter_dir) / "adapter_model.safetensors"))
    model._speech_lora_config = config
    return _merge(model) if merge else model


def place_adapter(output_dir: str | Path, final: Path, is_main_process: bool) -> None:
    """Move the adapters `finalize_lora` saved in `<output_dir>/adapter` beside the final folder's base weights
    (`<final>/adapter`); nothing to do when they were merged."""
    import shutil

    adapter = Path(output_dir) / ADAPTER_DIR
    if is_main_process and adapter.is_dir():
        shutil.rmtree(final / ADAPTER_DIR, ignore_errors=True)
        adapter.rename(final / ADAPTER_DIR)


def from_pretrained_with_adapter(model_class: Any, folder: str | Path) -> Any:
    """`model_class.from_pretrained(folder)`, with the LoRA adapters of `<folder>/adapter` merged in when a run
    saved them there (`--lora_r` without `--merge_lora`): what evaluation and the demo load."""
    model = model_class.from_pretrained(folder)
    adapter = Path(folder) / ADAPTER_DIR
    return load_speech_lora(model, adapter, merge=True) if adapter.is_dir() else model
