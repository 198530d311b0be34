"""Does a speech student hear a TTS engine it never heard in training? Voice robustness in one run.

The first N reports of a split are spoken by the held-out engine (Piper, `tts_engines.HELD_OUT_ENGINES`) and in training
voices (`voice_renditions`), and the same figures are measured for both (`voice_robustness_figures`):

- speech → text R@1 / R@5 among the N reports, and the mean cos(speech, text of the same report);
- speech → CT R@5 / R@10 among the N volumes;
- spoken-prompt zero-shot mean AUROC over the whole split's volumes (a label needs both classes, which few of N
  volumes have), prompts spoken by the held-out engine against prompts spoken by the training engines;
- the mean cosine between two voices' embeddings of a report: held-out against training voice, and training voice
  against a second training voice;
- the demo's figure: through the demo's own ranking path (`demo.DemoBackend`: the "ct-retrieval" pipeline, a
  gallery embedded once, `top_k=5`), the share of the first M reports spoken by Piper whose volume is in the top 5
  of a gallery of those M volumes.

Each with its ratio held-out / training against `TARGET_RATIO` (and the cross-voice cosine against
`TARGET_CROSS_VOICE`). Results: `voice_robustness.json` (every figure, interval, voice and timing),
`voice_robustness.md` (the table) and `voice_robustness_embeddings.npz` (what the figures were computed from), all
written atomically into the output folder, which also caches the speech (a rerun reuses it).
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import ctrate
from ..data.voice_renditions import Rendition, make_renditions
from ..training.embedding_cache import caller_shows_progress
from .voice_robustness_figures import TARGET_CROSS_VOICE, compare, cross_voice_cosine, report_vectors, zero_shot_figure

REPORT_FIGURES = ("speech_text_R@1", "speech_text_R@5", "speech_text_cosine", "speech_ct_R@5", "speech_ct_R@10")


@dataclass(frozen=True)
class RobustnessConfig:
    """What to measure. `cache_dir` holds the embedding caches (default `<output_dir>/cache`)."""

    model: Path
    data_dir: Path
    output_dir: Path
    split: str = "test"
    num_reports: int = 40
    demo_reports: int = 20
    cache_dir: Path | None = None
    held_out_engine: str = "piper"
    training_engines: tuple[str, ...] = ("espeak", "flite")
    prompt_voices: int = 4
    prompts: str = "report_sentences"  # the main job's: sentences of the training reports (or "template")
    prompt_sentences: int = 4
    n_resamples: int = 1000
    seed: int = 0
    workers: int = 2
    progress: bool = True


def check_config(config: RobustnessConfig) -> None:
    """Clear errors, naming the argument, before anything is loaded or spoken."""
    if not (Path(config.model) / "config.json").is_file():
        raise FileNotFoundError(f"model {config.model}: not a SpeechCT-CLIP folder (no config.json there).")
    if config.split not in ctrate.SPLITS:
        raise ValueError(f"split {config.split!r} is not one of {ctrate.SPLITS}.")
    from ..data.report_prompts import PROMPT_SOURCES

    if config.prompts not in PROMPT_SOURCES:
        raise ValueError(f"prompts {config.prompts!r} is not one of {PROMPT_SOURCES}.")
    if config.num_reports < 2:
        raise ValueError(f"num_reports must be at least 2 (retrieval needs other reports), got {config.num_reports}.")
    if not 1 <= config.demo_reports <= config.num_reports:
        raise ValueError(f"demo_reports must lie in [1, num_reports={config.num_reports}], got {config.demo_reports}.")
    from ..data.tts_engines import HELD_OUT_ENGINES, get_backend, require_training_engines

    if get_backend(config.held_out_engine).name not in HELD_OUT_ENGINES:
        raise ValueError(
            f"held-out engine {config.held_out_engine!r} is not one of tts_engines.HELD_OUT_ENGINES {HELD_OUT_ENGINES}."
        )
    require_training_engines(config.training_engines, "voice_robustness (training voices)")
    if config.prompt_voices < 1 or config.n_resamples < 1:
        raise ValueError(
            f"prompt_voices and n_resamples must be >= 1, got {config.prompt_voices}, {config.n_resamples}."
        )


def quiet_libraries() -> None:
    """A report, not a log: transformers' load bars and advice, and known harmless warnings, are noise here."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for name in ("piper", "onnxruntime", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*Are the values HU.*")


def _chunked(fn, items: list, desc: str, progress: bool, size: int = 8) -> torch.Tensor:
    """`fn` over `items` in chunks, with a progress bar per stage; the results concatenated."""
    from tqdm.auto import tqdm

    out = []
    with tqdm(total=len(items), desc=desc, disable=not progress) as bar, caller_shows_progress():
        for start in range(0, len(items), size):
            out.append(fn(items[start : start + size]))
            bar.update(len(items[start : start + size]))
    return torch.cat(out)


@torch.no_grad()
def speech_features(model: Any, processor: Any, wavs: list[str], cache_dir: Path) -> torch.Tensor:
    """Speech embeddings as the evaluation computes them (`evaluation.speech_embeddings`: the frozen prefix cached,
    the trained top run here) when the tower has a frozen part; a tower that trains whole has no prefix to cache,
    so it runs on the recordings directly."""
    from .split import speech_embeddings

    if model.config.freeze_speech or model.config.speech_trainable_layers is not None:
        return speech_embeddings(model, processor, [{"speech": w} for w in wavs], cache_dir)
    batch = processor(audio=list(wavs))
    return model.get_speech_features(batch["speech_values"], batch.get("speech_attention_mask")).pooler_output


def embed(
    model: Any,
    processor: Any,
    renditions: dict[str, Rendition],
    rows: list[dict],
    all_rows: list[dict],
    cache_dir: Path,
    progress: bool,
) -> dict[str, np.ndarray]:
    """Speech embeddings of every rendition (the evaluation's path: cached frozen prefix, trained top), text of the
    reports and CT of the whole split, as float64."""
    from .split import ct_embeddings, text_embeddings

    out = {}
    with torch.no_grad():
        for kind, rendition in renditions.items():
            items = [str(p) for p in rendition.paths]
            out[f"speech_{kind}"] = _chunked(
                lambda chunk: speech_features(model, processor, chunk, cache_dir), items, f"embed {kind}", progress
            )
        out["text"] = _chunked(lambda c: text_embeddings(model, processor, c, cache_dir), rows, "embed text", progress)
        out["ct"] = _chunked(lambda c: ct_embeddings(model, processor, c, cache_dir), all_rows, "embed CT", progress)
    return {k: v.double().numpy() for k, v in out.items()}


def prompt_scores(model: Any, processor: Any, ct: np.ndarray, config: RobustnessConfig) -> dict[str, np.ndarray]:
    """P(present) of every volume and label with prompts spoken by the held-out engine and by the training engines
    (CT-CLIP's pair in `prompt_voices` renditions, or each report sentence of `config.prompts` once; averaged), and
    the prompt embeddings `(labels, 2, dim)`."""
    from tqdm.auto import tqdm

    from ..data.spoken_prompts import synthesize_prompts
    from ..labels import CT_RATE_LABELS
    from ..zero_shot import pair_probabilities, prompt_pairs, speech_prompt_embeddings

    pairs = prompt_pairs(CT_RATE_LABELS)
    if config.prompts == "report_sentences":
        from ..data.report_prompts import training_report_prompts

        pairs = training_report_prompts(config.data_dir, CT_RATE_LABELS, config.prompt_sentences, config.seed)
    groups = {"held_out": (config.held_out_engine,), "training": tuple(config.training_engines)}
    scale = float(model.speech_logit_scale.detach().exp())
    out = {}
    for kind, engines in tqdm(groups.items(), desc="spoken prompts", disable=not config.progress):
        folder = Path(config.output_dir) / "prompts" / (kind if config.prompts == "template" else f"{kind}_sentences")
        paths = synthesize_prompts(pairs, folder, config.prompt_voices, engines, config.seed, config.workers)
        with torch.no_grad(), caller_shows_progress():
            present, absent = speech_prompt_embeddings(model, processor, paths)
        out[f"prompts_{kind}"] = torch.stack((present, absent), dim=1).double().numpy()
        out[f"probs_{kind}"] = pair_probabilities(torch.from_numpy(ct), present, absent, scale).double().numpy()
    return out


def demo_ranks(config: RobustnessConfig, rows: list[dict], renditions: dict[str, Rendition]) -> dict[str, list]:
    """Through the demo's own path: `DemoBackend`'s retrieval pipeline embeds the gallery of the first M volumes
    once, and each spoken report is ranked against it with `top_k=5`, exactly as `DemoBackend.analyse` does. The
    1-based position of the report's own volume in that top 5, or None when it is not there."""
    from tqdm.auto import tqdm

    from ..hub.demo import DemoBackend

    gallery = [r["volume"] for r in rows[: config.demo_reports]]
    backend = DemoBackend(config.model, prompts="written", gallery=gallery)
    top_k = min(5, len(backend.gallery))
    out = {}
    for kind in ("held_out", "training"):
        positions = []
        wavs = renditions[kind].paths[: config.demo_reports]
        for target, wav in tqdm(
            list(zip(gallery, wavs, strict=True)), desc=f"demo ({kind})", disable=not config.progress
        ):
            ranked = backend.retrieve(
                str(wav), gallery=backend.gallery_embeds, gallery_ids=backend.gallery, top_k=top_k
            )
            ids = [r["id"] for r in ranked]
            positions.append(ids.index(target) + 1 if target in ids else None)
        out[kind] = positions
    return out


def voices(rendition: Rendition) -> dict[str, Any]:
    """Who spoke a rendition: engine and voice counts, and where the wavs came from."""
    return {
        "source": rendition.source,
        "backends": dict(Counter(row.backend for row in rendition.rows)),
        "voices": dict(Counter(f"{row.backend}:{row.voice}" for row in rendition.rows)),
    }


def figures(
    data: dict[str, np.ndarray], labels: np.ndarray, demo: dict[str, list], n_resamples: int, seed: int
) -> dict[str, dict]:
    """Every figure from the embeddings (`data`: `embed` + `prompt_scores` outputs) and the demo's positions."""
    n = len(data["text"])
    ct = data["ct"][:n]
    vectors = {k: report_vectors(data[f"speech_{k}"], data["text"], ct) for k in ("held_out", "training", "training_2")}
    chance = {
        "speech_text_R@1": 1 / n,
        "speech_text_R@5": min(5, n) / n,
        "speech_text_cosine": None,
        "speech_ct_R@5": min(5, n) / n,
        "speech_ct_R@10": min(10, n) / n,
    }
    out: dict[str, dict] = {}
    for key in REPORT_FIGURES:
        held, trained = (vectors["held_out"][key],), (vectors["training"][key],)
        out[key] = compare(held, trained, chance[key], n_resamples=n_resamples, seed=seed)
        out[key]["training_2"] = {"value": float(np.mean(vectors["training_2"][key]))}
    out["zero_shot_auroc"] = zero_shot_figure(labels, data["probs_held_out"], data["probs_training"], n_resamples, seed)
    held = cross_voice_cosine(data["speech_held_out"], data["speech_training"])
    trained = cross_voice_cosine(data["speech_training"], data["speech_training_2"])
    cosine = compare((held,), (trained,), None, n_resamples=n_resamples, seed=seed)
    cosine["pass_cosine"] = bool(cosine["held_out"]["value"] >= TARGET_CROSS_VOICE)
    out["cross_voice_cosine"] = cosine
    m = len(demo["held_out"])
    hits = {kind: np.array([p is not None for p in demo[kind]], dtype=np.float64) for kind in demo}
    out["demo_top5"] = compare(
        (hits["held_out"],), (hits["training"],), min(5, m) / m, n_resamples=n_resamples, seed=seed
    )
    return out


def save_embeddings(path: Path, data: dict[str, np.ndarray], names: list[str], labels: np.ndarray) -> None:
    """The arrays the figures were computed from, for a reader to recompute any of them."""
    from ..files.provenance import write_atomic

    buffer = io.BytesIO()
    np.savez(buffer, names=np.array(names), labels=labels, **data)
    write_atomic(path, lambda f: f.write(buffer.getvalue()), binary=True)


def run_voice_robustness(config: RobustnessConfig, command: str = "") -> dict[str, Any]:
    """Measure, write `voice_robustness.json` / `.md` / `_embeddings.npz` into `config.output_dir`, return the
    record. Speech and embeddings are cached, so a rerun only recomputes the figures."""
    from .. import SpeechCTClipModel, SpeechCTClipProcessor
    from ..data.ctrate import load_ct_rate
    from ..files.provenance import evaluation_provenance, jsonable, write_json_atomic, write_text_atomic
    from .voice_robustness_report import markdown

    started = time.perf_counter()
    timings: dict[str, float] = {}
    check_config(config)
    all_rows = list(load_ct_rate(config.data_dir, config.split, require_speech=False))
    if config.num_reports > len(all_rows):
        raise ValueError(
            f"num_reports={config.num_reports} is larger than the {config.split} split of {config.data_dir} "
            f"({len(all_rows)} reports)."
        )
    quiet_libraries()
    out = Path(config.output_dir)
    cache = Path(config.cache_dir) if config.cache_dir is not None else out / "cache"
    rows = all_rows[: config.num_reports]

    t = time.perf_counter()
    renditions = make_renditions(rows, Path(config.data_dir), out, config.split, config.held_out_engine,
                                 config.training_engines, config.seed, config.workers, config.progress)  # fmt: skip
    timings["speech"] = time.perf_counter() - t
    t = time.perf_counter()
    model = SpeechCTClipModel.from_pretrained(config.model).eval()
    processor = SpeechCTClipProcessor.from_pretrained(config.model)
    data = embed(model, processor, renditions, rows, all_rows, cache, config.progress)
    timings["embeddings"] = time.perf_counter() - t
    t = time.perf_counter()
    data.update(prompt_scores(model, processor, data["ct"], config))
    timings["zero_shot"] = time.perf_counter() - t
    t = time.perf_counter()
    demo = demo_ranks(config, rows, renditions)
    timings["demo"] = time.perf_counter() - t

    labels = np.array([r["labels"] for r in all_rows])
    t = time.perf_counter()
    results = figures(data, labels, demo, config.n_resamples, config.seed)
    timings["figures"] = time.perf_counter() - t
    names = [r["volume_name"] for r in rows]
    save_embeddings(out / "voice_robustness_embeddings.npz", data, names, labels)
    timings["total"] = time.perf_counter() - started
    record = {
        "command": command,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "reports": names,
        "zero_shot_volumes": len(all_rows),
        "voices": {kind: voices(r) for kind, r in renditions.items()},
        "prompt_engines": {"held_out": [config.held_out_engine], "training": list(config.training_engines)},
        "figures": results,
        "demo_positions": demo,
        "timings_s": timings,
        "provenance": evaluation_provenance(config.model, config.data_dir, [config.split]),
    }
    record = jsonable(record)
    write_json_atomic(out / "voice_robustness.json", record)
    write_text_atomic(out / "voice_robustness.md", markdown(record))
    return record
