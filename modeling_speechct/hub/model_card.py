"""The model card of a SpeechCT-CLIP folder: `write_model_card` renders it into the folder's README.md.

One implementation for every card of the full model: `training_outputs.write_card` (end of a training run) and
`publish.export_folder` (the folder uploaded to the Hub) both call `write_model_card`. The body is the Jinja
template `templates/speechct_clip_card.md.j2` (package data), filled with `card_sections`' prose and
`model_index`'s evaluation sections (read by `results_files`); the metadata is `huggingface_hub.ModelCardData`, whose
`eval_results` become the `model-index`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .card_sections import (
    BIBTEX,
    base_models,
    limitations,
    model_rows,
    parameter_count,
    recipe_rows,
    run_kind,
    training_summary,
)
from .model_index import CT_RATE_ID, PIPELINE_TAG, SPEECH_RATE_ID, EvalSection, describe_dataset, evaluation_sections
from .results_files import ResultsFile

TEMPLATE = Path(__file__).parent / "templates" / "speechct_clip_card.md.j2"

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
    "find_run_args",
    "render_model_card",
    "write_model_card",
]
