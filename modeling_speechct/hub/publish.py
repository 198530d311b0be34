"""Publish a SpeechCT-CLIP folder to the Hugging Face Hub (the command line is `model_cards/publish.py`).

`export_folder` writes exactly what is uploaded: the model and processor re-saved by the installed package (so the
remote code — `modeling_speechct_clip.py`, `configuration_speechct_clip.py`, `processing_speechct_clip.py`,
`pipeline_speechct_clip.py` and every file they import — is this version's, and `trust_remote_code=True` works
without the package), the pipelines listed in `config.json`'s `custom_pipelines`, the evaluation JSON files under
`eval_results/`, the run's arguments and the model card. The folder is assembled next to its destination and
renamed into place, so a failure leaves nothing behind. `publish` checks Hub access first (offline mode, token,
network), then exports and uploads the folder in one commit (`create_repo(exist_ok=True)` + `upload_folder`), so a
repository never holds half an upload.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .card_sections import hub_id
from .model_card import write_model_card
from .model_index import BENCHMARK_ENTRIES
from .results_files import ResultsFile, load_results

RESULTS_DIR = "eval_results"
RESULTS_FILE = "eval_results.json"  # what the training loop writes beside the final weights
TRAINING_METRICS_FILE = "training_metrics.json"  # its published name: the loop's last monitoring step


class PublishError(RuntimeError):
    """A publishing step failed; the message says which and what to do."""


# ------------------------------------------------------------------------------------------------- remote code


def add_pipelines(folder: str | os.PathLike) -> None:
    """Make a saved model folder serve `pipeline(task, model=folder, trust_remote_code=True)`: copy
    `pipeline_speechct_clip.py` and the package files it imports into it, and list both tasks in its config.json's
    `custom_pipelines` (what `Pipeline.save_pretrained` writes for one task)."""
    from transformers.dynamic_module_utils import custom_object_save

    from ..pipeline_speechct_clip import PIPELINES, custom_pipelines_config

    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: save the model into {folder} first")
    custom_object_save(next(iter(PIPELINES.values())), folder)  # one module holds every pipeline class
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["custom_pipelines"] = custom_pipelines_config()
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def remote_code_problems(folder: str | os.PathLike) -> list[str]:
    """What would stop `trust_remote_code=True` loading the folder without the package: a module named by an
    `auto_map` or `custom_pipelines` entry, or relatively imported by a shipped file, that is not in the folder."""
    from transformers.dynamic_module_utils import get_relative_imports

    folder = Path(folder)
    problems = []
    needed: dict[str, str] = {}
    for name in ("config.json", "processor_config.json"):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        config = json.loads(path.read_text(encoding="utf-8"))
        references = list((config.get("auto_map") or {}).values())
        references += [task["impl"] for task in (config.get("custom_pipelines") or {}).values()]
        for reference in references:
            for ref in reference if isinstance(reference, (list, tuple)) else [reference]:
                if ref:
                    needed[ref.split("--")[-1].rsplit(".", 1)[0]] = name
    for code in folder.glob("*.py"):
        for module in get_relative_imports(code):
            needed.setdefault(module, code.name)
    for module, referrer in sorted(needed.items()):
        if not (folder / f"{module}.py").is_file():
            problems.append(f"{module}.py (needed by {referrer}) is missing")
    return problems


def _public_name(name_or_path: str) -> str:
    """A tower's `_name_or_path` as it may be published: its Hub id, or "" for a local path (it is not needed to
    load the model, and it names folders of the machine that trained it)."""
    return hub_id(name_or_path) or ""


def scrub_local_paths(config_path: Path) -> None:
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for key in ("ct_config", "speech_config", "text_config"):
        sub = config.get(key)
        if isinstance(sub, dict) and sub.get("_name_or_path"):
            sub["_name_or_path"] = _public_name(sub["_name_or_path"])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------- the folder


def discover_results(model_dir: str | os.PathLike) -> list[Path]:
    """The evaluation JSON files that belong to a folder: `eval/zero_shot.json` and `eval/retrieval.json` (the eval
    scripts' default output), and a benchmark run's `results.json` when the folder is `<run>/<stage>/final`."""
    model_dir = Path(model_dir)
    found = [model_dir / "eval" / name for name in ("zero_shot.json", "retrieval.json")]
    if model_dir.name == "final" and model_dir.parent.name in BENCHMARK_ENTRIES:
        found.append(model_dir.parent.parent / "results.json")
    return [path for path in found if path.is_file()]


def replace_folder(source: Path, dest: Path, overwrite: bool = True) -> None:
    """Put the finished `source` at `dest` by renames only (an old `dest` is moved aside and deleted last)."""
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    if dest.exists():
        if not overwrite:
            raise PublishError(f"{dest} already exists; choose another output folder or pass overwrite (--overwrite)")
        dest.rename(old)
    try:
        source.rename(dest)
    except BaseException:
        if old.exists():
            old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_folder(dest: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Build a folder in a temporary sibling of `dest`; when the block ends without error, make everything in it
    readable by all (package data, public uploads: `save_pretrained` may write 0600) and rename it into place.
    Whatever happens, no half-written `dest` is left behind."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        yield staging
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        staging.chmod(0o755)
        replace_folder(staging, dest, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_folder(
    model_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    results: Iterable[str | os.PathLike] = (),
    *,
    repo_id: str | None = None,
    title: str = "SpeechCT-CLIP",
    benchmark_entry: str | None = None,
    dataset: str | None = None,
    discover: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write the folder that `publish` uploads into `output_dir` (atomically) and return it.

    Args:
        model_dir: a saved SpeechCT-CLIP folder (model + processor), e.g. a training run's `<output_dir>/final`.
        results: evaluation JSON files (eval/zero_shot.py, eval/retrieval.py, train/run_benchmark.py); with
            `discover`, those found next to the model are added (`discover_results`).
        repo_id: the Hub repository the card's snippets name.
        benchmark_entry: which model of a run_benchmark results.json this is (default: from the folder layout).
        dataset: "ct-rate" or "benchmark" when the data folder does not tell (`model_index.describe_dataset`).
    """
    from .. import SpeechCTClipModel, SpeechCTClipProcessor

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if not (model_dir / "config.json").is_file():
        raise PublishError(f"{model_dir} holds no config.json: give a saved SpeechCT-CLIP folder")
    if output_dir.resolve() == model_dir.resolve():
        raise PublishError("the output folder must differ from the model folder")
    if output_dir.exists() and not overwrite:
        raise PublishError(f"{output_dir} already exists; choose another output folder or pass overwrite (--overwrite)")
    paths = [Path(p) for p in results]
    if discover:
        paths += [p for p in discover_results(model_dir) if p.resolve() not in {q.resolve() for q in paths}]
    loaded: list[ResultsFile] = [load_results(p) for p in paths]  # fail before anything is written

    with staged_folder(output_dir, overwrite) as staging:
        model = SpeechCTClipModel.from_pretrained(model_dir)
        processor = SpeechCTClipProcessor.from_pretrained(model_dir)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        add_pipelines(staging)
        problems = remote_code_problems(staging)
        if problems:
            raise PublishError("the folder would not load with trust_remote_code: " + "; ".join(problems))

        names: set[str] = set()
        for result in loaded:
            name = result.path.name
            if name in names:  # two files of one name (e.g. the text and the speech zero_shot.json)
                name = f"{result.path.parent.name}-{name}"
            names.add(name)
            (staging / RESULTS_DIR).mkdir(exist_ok=True)
            shutil.copyfile(result.path, staging / RESULTS_DIR / name)
        from .model_card import find_run_args

        run_args = find_run_args(model_dir)
        if run_args is not None:
            (staging / "run_args.json").write_text(json.dumps(run_args, indent=1, default=str) + "\n")
        metrics = _training_metrics(model_dir)
        if metrics is not None:
            (staging / TRAINING_METRICS_FILE).write_text(json.dumps(metrics, indent=1) + "\n")
        write_model_card(
            staging,
            title=title,
            repo_id=repo_id,
            run_args=run_args,
            training_metrics=metrics,
            results=loaded,
            benchmark_entry_name=benchmark_entry,
            model_dir=model_dir,
            dataset=dataset,
        )
        scrub_local_paths(staging / "config.json")  # after the card, which names where the towers came from
    return output_dir


def _training_metrics(model_dir: Path) -> dict[str, Any] | None:
    for name in (TRAINING_METRICS_FILE, RESULTS_FILE):
        path = model_dir / name
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


# ------------------------------------------------------------------------------------------------- the Hub


def check_hub_access(token: str | None = None, endpoint: str | None = None) -> Any:
    """An `HfApi` that can write, or a `PublishError` naming the problem: offline mode, no token, a rejected token
    or an unreachable Hub. Checked before anything is written or created."""
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if constants.is_offline_mode():
        raise PublishError(
            "offline mode is on (HF_HUB_OFFLINE=1): nothing can be uploaded. Unset HF_HUB_OFFLINE, or use --dry-run "
            "to write the folder only."
        )
    token = token or get_token()
    if not token:
        raise PublishError(
            "no Hugging Face token: log in with `hf auth login` or set HF_TOKEN (a token with write access), or use "
            "--dry-run to write the folder only."
        )
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.whoami()
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status == 401:
            raise PublishError("the Hugging Face token was rejected (401): log in again with `hf auth login`") from err
        raise PublishError(f"the Hub at {api.endpoint} answered with an error ({err})") from err
    except Exception as err:  # connection refused, DNS, timeout, proxy: httpx / OSError
        raise PublishError(
            f"cannot reach the Hub at {api.endpoint} ({type(err).__name__}: {err}). Check the network (or "
            "HF_ENDPOINT), or use --dry-run to write the folder only."
        ) from err
    return api


def upload(
    folder: str | os.PathLike,
    repo_id: str,
    api: Any = None,
    *,
    private: bool = False,
    commit_message: str = "Upload SpeechCT-CLIP",
) -> Any:
    """`create_repo(exist_ok=True)` then one `upload_folder` commit: the repository gets all files or none."""
    api = api or check_hub_access()
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        return api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message)
    except Exception as err:
        raise PublishError(
            f"uploading {folder} to {repo_id!r} failed ({type(err).__name__}: {err}); nothing was committed. "
            f"Retry, or upload the folder with `hf upload {repo_id} {folder}`."
        ) from err


def publish(
    model_dir: str | os.PathLike,
    repo_id: str | None = None,
    output_dir: str | os.PathLike | None = None,
    results: Sequence[str | os.PathLike] = (),
    *,
    dry_run: bool = False,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
    **export_kwargs: Any,
) -> Path | None:
    """Export the folder, then (unless `dry_run`) upload it. With `dry_run` the folder is the result (`output_dir`
    is required); otherwise Hub access is checked first, and without `output_dir` the folder lives in a temporary
    directory that is removed after the upload. Returns the folder when it is kept."""
    if dry_run:
        if output_dir is None:
            raise PublishError("--dry-run needs an output folder (--output_dir) to write into")
        return export_folder(model_dir, output_dir, results, repo_id=repo_id, **export_kwargs)
    if not repo_id:
        raise PublishError("give the Hub repository (--repo_id org/name), or use --dry-run")
    api = check_hub_access(token, endpoint)
    message = commit_message or f"Upload SpeechCT-CLIP from {Path(model_dir).name}"
    if output_dir is not None:
        folder = export_folder(model_dir, output_dir, results, repo_id=repo_id, **export_kwargs)
        upload(folder, repo_id, api, private=private, commit_message=message)
        return folder
    with tempfile.TemporaryDirectory(prefix="speechct-publish-") as tmp:
        folder = export_folder(model_dir, Path(tmp) / "folder", results, repo_id=repo_id, **export_kwargs)
        upload(folder, repo_id, api, private=private, commit_message=message)
    return None


__all__ = [
    "PublishError",
    "add_pipelines",
    "check_hub_access",
    "discover_results",
    "export_folder",
    "publish",
    "remote_code_problems",
    "upload",
]
