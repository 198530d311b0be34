"""The card's evaluations: figures of the evaluation JSON → `EvalSection`s, i.e. the `model-index` and its tables.

An `EvalSection` is one evaluation (zero-shot classification or retrieval, from `eval/zero_shot.py`,
`eval/retrieval.py` or one model of `train/run_benchmark.py`'s results.json) on one data set (`DatasetInfo`,
`describe_dataset`): its figures become the `huggingface_hub.EvalResult`s of the metadata's `model-index`, and the
same figures fill the card's evaluation tables (per label, all benchmark models compared), so both are built here.
`evaluation_sections` is the entry: loaded `results_files` in, sections out, each evaluation indexed once.

Every number of the `model-index` is also in the card's tables; undefined figures (NaN / null: a mean over no
defined label) are shown as "undefined" and left out of the `model-index`, which takes numbers only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..labels import CT_RATE_LABELS
from .results_files import ResultsFile, load_results

# The Hub validates `pipeline_tag` against its fixed task list, so a custom task name cannot go there. The closest
# Hub task is zero-shot image classification: an image (here a 3D CT volume) scored against free-form candidate
# labels by a CLIP-style model, with the same output format as our `zero-shot-ct-classification` pipeline. The
# custom task names go into `tags`.
PIPELINE_TAG = "zero-shot-image-classification"
RETRIEVAL_TASK_TYPE = "feature-extraction"  # model-index task of retrieval: ranking by embedding similarity
CT_RATE_ID = "ibrahimhamamci/CT-RATE"
SPEECH_RATE_ID = "lbuess/Speech-RATE"
BENCHMARK_ENTRIES = {"teacher": "text teacher", "naive": "speech, naive (λ=0)", "distilled": "speech, distilled"}


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


__all__ = [
    "BENCHMARK",
    "CT_RATE",
    "PIPELINE_TAG",
    "DatasetInfo",
    "EvalSection",
    "benchmark_sections",
    "describe_dataset",
    "evaluation_sections",
    "retrieval_section",
    "zero_shot_section",
]
