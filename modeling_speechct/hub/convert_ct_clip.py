"""Convert a CT-CLIP v2 checkpoint (`CT-CLIP_v2.pt`, a raw `CTCLIP` state dict) into a SpeechCTClip checkpoint.

The CT tower, the CXR-BERT text tower, both projections and the temperature are mapped; the speech tower is left
at its initialisation (CT-CLIP has none; `SpeechCTClipModel.from_tower_pretrained(teacher=…, speech=…)` adds one).
The tower configuration is read off the tensor shapes. Every source key is accounted for: mapped, knowingly
ignored (CT-CLIP's VQ-VAE decoder heads, unused CLOOB projections, EMA book-keeping), or reported as unexpected.

    speechct-convert-ctclip CT-CLIP_v2.pt converted/ [--text-config path/to/cxr-bert] [--speech-config …]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, BertConfig, PreTrainedConfig

from ..configuration_ct_vit import CTViTConfig
from ..configuration_speechct_clip import SpeechCTClipConfig
from ..modeling_speechct_clip import SpeechCTClipModel

VISUAL = "visual_transformer."
TEXT = "text_transformer."

# CT-CLIP layer slots: ModuleList([PEG, self-attention, cross-attention (None), GEGLU feed-forward]).
_LAYER_RULES = [
    (r"0\.dsconv\.(weight|bias)", r"peg.conv.\1"),
    (r"1\.norm\.gamma", "attention.norm.weight"),
    (r"1\.to_q\.weight", "attention.q_proj.weight"),
    (r"1\.to_kv\.weight", "attention.kv_proj.weight"),
    (r"1\.(q_scale|k_scale)", r"attention.\1"),
    (r"1\.to_out\.weight", "attention.out_proj.weight"),
    (r"3\.0\.(weight|bias)", r"feed_forward.norm.\1"),
    (r"3\.1\.weight", "feed_forward.fc_in.weight"),
    (r"3\.4\.weight", "feed_forward.fc_out.weight"),
]
_IGNORED = [
    # Zero LayerNorm biases held as buffers (checked to be zero) and the unused context norm / null key-values.
    r".*\.beta",
    r".*\.context_norm\..*",
    r".*\.null_kv",
    # VQ-VAE pieces that CLIP embeddings never use.
    r"visual_transformer\.(to_patch_emb_first_frame|to_pixels_first_frame|to_pixels)\..*",
    r"visual_transformer\.vq\._codebook\.(initted|cluster_size|embed_avg)",
    # CLOOB's extra projections (extra_latent_projection=False in CT-CLIP v2) and BERT's unused pooler.
    r"to_(text|visual)_latent_extra\..*",
    r"text_transformer\.pooler\..*",
    r"text_transformer\.embeddings\.position_ids",
]


@dataclass
class ConversionReport:
    mapped: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.mapped)} keys mapped, {len(self.ignored)} ignored (unused by CLIP), "
            f"{len(self.unexpected)} unexpected, {len(self.missing)} target keys left unset"
        )


def load_ct_clip_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a CT-CLIP `.pt` safely (`weights_only=True`: tensors only, no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CT-CLIP checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint of tensors: {err}") from err
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not any(k.startswith(VISUAL) for k in state):
        raise ValueError(f"{path} does not hold a CT-CLIP state dict (no '{VISUAL}*' keys).")
    return state


def map_key(key: str, position_bias_layers: int = 2) -> str | None:
    """Our parameter name for a CT-CLIP key, or None when the key has no counterpart."""
    if key.startswith(TEXT):
        return "text_model." + key[len(TEXT) :]
    if key == "temperature":
        return "logit_scale"
    if key == "to_text_latent.weight":
        return "text_projection.weight"
    if key == "to_visual_latent.weight":
        return "ct_projection.weight"
    if not key.startswith(VISUAL):
        return None
    sub = key[len(VISUAL) :]
    patch = re.fullmatch(r"to_patch_emb\.([123])\.(weight|bias)", sub)
    if patch:
        name = {"1": "input_norm", "2": "projection", "3": "output_norm"}[patch.group(1)]
        return f"ct_model.embeddings.{name}.{patch.group(2)}"
    if sub == "vq._codebook.embed":
        return "ct_model.quantizer.codebook"
    bias = re.fullmatch(r"spatial_rel_pos_bias\.net\.(\d+)\.(?:0\.)?(weight|bias)", sub)
    if bias:  # net.0 … net.{n-1} are the hidden layers, net.n the per-head output
        index, leaf = int(bias.group(1)), bias.group(2)
        layer = "output" if index == position_bias_layers else f"layers.{index}"
        return f"ct_model.spatial_position_bias.{layer}.{leaf}"
    stage = re.fullmatch(r"enc_(spatial|temporal)_transformer\.(.*)", sub)
    if stage:
        encoder, rest = f"ct_model.{stage.group(1)}_encoder", stage.group(2)
        if rest == "norm_out.gamma":
            return f"{encoder}.norm.weight"
        layer = re.fullmatch(r"layers\.(\d+)\.(.*)", rest)
        if layer:
            for pattern, target in _LAYER_RULES:
                if re.fullmatch(pattern, layer.group(2)):
                    return f"{encoder}.layers.{layer.group(1)}." + re.sub(pattern, target, layer.group(2))
    return None


def _layer_count(state: dict[str, torch.Tensor], stage: str) -> int:
    found = {int(m.group(1)) for k in state if (m := re.match(rf"{VISUAL}enc_{stage}_transformer\.layers\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def infer_ct_config(state: dict[str, torch.Tensor], patch_size: int = 20, tubelet_size: int = 10) -> CTViTConfig:
    """CTViTConfig from tensor shapes; patch and tubelet sizes are CT-CLIP's unless given (their product is all
    the weights record)."""
    hidden, patch_dim = state[f"{VISUAL}to_patch_emb.2.weight"].shape
    channels = patch_dim // (tubelet_size * patch_size**2)
    if channels * tubelet_size * patch_size**2 != patch_dim:
        raise ValueError(f"patch embedding width {patch_dim} does not fit patch {patch_size} × tubelet {tubelet_size}.")
    bias_layers = sorted(
        {int(m.group(1)) for k in state if (m := re.match(rf"{VISUAL}spatial_rel_pos_bias\.net\.(\d+)\.", k))}
    )
    heads = state[f"{VISUAL}spatial_rel_pos_bias.net.{bias_layers[-1]}.weight"].shape[0]
    inner = state[f"{VISUAL}enc_spatial_transformer.layers.0.1.to_q.weight"].shape[0]
    grid = math.isqrt(state["to_visual_latent.weight"].shape[1] // hidden)
    codebook = state.get(f"{VISUAL}vq._codebook.embed")
    return CTViTConfig(
        image_size=grid * patch_size,
        patch_size=patch_size,
        tubelet_size=tubelet_size,
        num_channels=channels,
        hidden_size=hidden,
        num_attention_heads=heads,
        head_dim=inner // heads,
        intermediate_size=state[f"{VISUAL}enc_spatial_transformer.layers.0.3.4.weight"].shape[1],
        num_spatial_layers=_layer_count(state, "spatial"),
        num_temporal_layers=_layer_count(state, "temporal"),
        position_bias_layers=len(bias_layers) - 1,
        use_codebook=codebook is not None,
        codebook_size=codebook.shape[-2] if codebook is not None else 8192,
        peg_layout="ctclip",
        pooling="depth_mean_flatten",
    )


def infer_text_config(state: dict[str, torch.Tensor]) -> BertConfig:
    """A BERT config from the text tower's shapes (heads assumed 64 wide, as in BERT-base / CXR-BERT)."""
    vocab, hidden = state[f"{TEXT}embeddings.word_embeddings.weight"].shape
    layers = {int(m.group(1)) for k in state if (m := re.match(rf"{TEXT}encoder\.layer\.(\d+)\.", k))}
    return BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=max(layers) + 1,
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=state[f"{TEXT}encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state[f"{TEXT}embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state[f"{TEXT}embeddings.token_type_embeddings.weight"].shape[0],
    )


def convert_ct_clip_state_dict(
    state: dict[str, torch.Tensor],
    *,
    patch_size: int = 20,
    tubelet_size: int = 10,
    text_config: PreTrainedConfig | None = None,
    speech_config: PreTrainedConfig | None = None,
    strict: bool = True,
    **config_kwargs,
) -> tuple[SpeechCTClipModel, ConversionReport]:
    """Build a SpeechCTClipModel holding CT-CLIP's weights. `strict` refuses unexpected keys and unset targets."""
    ct_config = infer_ct_config(state, patch_size, tubelet_size)
    config = SpeechCTClipConfig(
        ct_config=ct_config,
        text_config=text_config or infer_text_config(state),
        speech_config=speech_config,
        projection_dim=state["to_visual_latent.weight"].shape[0],
        logit_scale_init_value=float(state["temperature"]),
        text_pooling="cls",
        **config_kwargs,
    )
    model = SpeechCTClipModel(config)
    target = model.state_dict()
    report = ConversionReport()
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        name = map_key(key, ct_config.position_bias_layers)
        if name is None or name not in target:
            if any(re.fullmatch(p, key) for p in _IGNORED):
                if key.endswith(".beta") and tensor.abs().max() > 0:
                    raise ValueError(f"{key}: CT-CLIP's LayerNorm bias buffer should be zero, found non-zero values.")
                report.ignored.append(key)
            else:
                report.unexpected.append(key)
            continue
        if name == "ct_model.quantizer.codebook":
            tensor = tensor.reshape(tensor.shape[-2], tensor.shape[-1])
        if tuple(tensor.shape) != tuple(target[name].shape):
            raise ValueError(f"{key} → {name}: shape {tuple(tensor.shape)} ≠ expected {tuple(target[name].shape)}.")
        converted[name] = tensor.to(target[name].dtype)
        report.mapped[key] = name
    speech_keys = {k for k in target if k.startswith(("speech_", "speech_model."))}
    report.missing = sorted(set(target) - set(converted) - speech_keys)
    if strict and (report.unexpected or report.missing):
        raise ValueError(
            f"CT-CLIP conversion incomplete: unexpected source keys {report.unexpected[:10]}, "
            f"unset target keys {report.missing[:10]} ({report.summary()})."
        )
    model.load_state_dict(converted, strict=False)
    return model, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="CT-CLIP .pt state dict (e.g. CT-CLIP_v2.pt)")
    parser.add_argument("output_dir", help="folder for the safetensors checkpoint (save_pretrained layout)")
    parser.add_argument(
        "--text-config", help="config of the text tower (CXR-BERT folder or Hub id); default: from shapes"
    )
    parser.add_argument("--speech-config", help="config of the speech tower to attach (default: Whisper's defaults)")
    parser.add_argument("--patch-size", type=int, default=20)
    parser.add_argument("--tubelet-size", type=int, default=10)
    parser.add_argument("--no-strict", action="store_true", help="convert despite unexpected or missing keys")
    args = parser.parse_args(argv)

    state = load_ct_clip_checkpoint(args.checkpoint)
    model, report = convert_ct_clip_state_dict(
        state,
        patch_size=args.patch_size,
        tubelet_size=args.tubelet_size,
        text_config=AutoConfig.from_pretrained(args.text_config) if args.text_config else None,
        speech_config=AutoConfig.from_pretrained(args.speech_config) if args.speech_config else None,
        strict=not args.no_strict,
    )
    out = Path(args.output_dir)
    model.save_pretrained(out)  # safetensors, written through a temporary file by huggingface_hub
    (out / "conversion_report.json").write_text(json.dumps(asdict(report), indent=1))
    print(f"{args.checkpoint} → {out}: {report.summary()}")
    for key in report.unexpected:
        print(f"  unexpected: {key}")


if __name__ == "__main__":
    main()
