"""What an evaluation leaves behind: where its numbers came from, and files written atomically.

Provenance answers "which weights, which data, which code": the model folder's revision (the commit of a Hub
snapshot, else a SHA-256 of its weights), the data revision (a SHA-256 over the split's tables — reports, labels,
metadata — which define what is evaluated; volumes and audio are too large to hash on every run and are named by
those tables), and the package version (plus the git commit of a source checkout). Files go through a temporary
file in the target folder and `os.replace`, so an interrupted run never leaves half a JSON for a reader.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from ..data.ctrate import labels_csv, metadata_csv, reports_csv, resolve_root

__all__ = [
    "data_revision",
    "evaluation_provenance",
    "hub_snapshot",
    "jsonable",
    "model_revision",
    "package_provenance",
    "refuse_other_build",
    "require_pinned_weights",
    "sha256_file",
    "write_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

PACKAGE = "speechct-clip"
WEIGHTS = "model.safetensors"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hub_snapshot(path: str | os.PathLike) -> dict[str, str] | None:
    """Repo type, id and commit when `path` lies in the Hub cache (`<cache>/models--org--name/snapshots/<commit>/…`),
    else None. The commit names the exact files the Hub served, so no hashing is needed."""
    path = Path(path)
    for candidate in dict.fromkeys((path.absolute(), path.resolve())):
        parts = candidate.parts
        for i in range(len(parts) - 2, 0, -1):
            kind, _, name = parts[i - 1].partition("--")
            if parts[i] == "snapshots" and kind in ("models", "datasets", "spaces") and name:
                return {
                    "source": "hub",
                    "repo_type": kind[:-1],
                    "repo_id": name.replace("--", "/"),
                    "commit": parts[i + 1],
                }
    return None


def model_revision(model: str | os.PathLike) -> dict[str, Any]:
    """The model's revision: a Hub snapshot's commit, else the SHA-256 of the folder's weights.

    A Hub id that is not a local folder is looked up in the local Hub cache (no network). Sharded weights are
    hashed as the index plus every shard it names, in order."""
    path = Path(model)
    if not path.exists():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(str(model), "config.json")
        found = hub_snapshot(Path(cached).parent) if isinstance(cached, str) else None
        return found or {"source": "hub", "repo_type": "model", "repo_id": str(model), "commit": None}
    if (found := hub_snapshot(path)) is not None:
        return found
    files = [WEIGHTS] if (path / WEIGHTS).is_file() else []
    index = path / f"{WEIGHTS}.index.json"
    if not files and index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        files = [index.name, *shards]
    record: dict[str, Any] = {"source": "local", "path": str(path.absolute()), "weights": files}
    if not files:
        return {**record, "sha256": None, "note": f"no {WEIGHTS} (or sharded index) in the folder"}
    if len(files) == 1:
        return {**record, "sha256": sha256_file(path / files[0])}
    digest = hashlib.sha256()
    for name in files:
        digest.update(f"{name}\0{sha256_file(path / name)}\n".encode())
    return {**record, "sha256": digest.hexdigest()}


def data_revision(data_dir: str | os.PathLike, splits: Sequence[str]) -> dict[str, Any]:
    """SHA-256 over the tables that define the splits (`load_ct_rate`'s reports, labels and, when present,
    metadata CSVs), each file's relative path and bytes; plus the Hub commit when the data is a Hub snapshot."""
    root = resolve_root(data_dir, splits[0])
    files: list[Path] = []
    for split in splits:
        for table in (reports_csv(root, split), labels_csv(root, split), metadata_csv(root, split)):
            if table.is_file() and table not in files:
                files.append(table)
    if not files:
        raise FileNotFoundError(f"{root} has no CT-RATE tables for {list(splits)}")
    return tables_revision(root, files, {"data_dir": str(data_dir), "splits": list(splits)})


def tables_revision(root: str | os.PathLike, files: Sequence[Path], record: dict[str, Any]) -> dict[str, Any]:
    """`record` plus the SHA-256 over `files` (each one's path relative to `root`, and its bytes, in sorted order)
    and the Hub commit when `root` is a Hub snapshot: the revision of any dataset its tables define."""
    root = Path(root)
    digest = hashlib.sha256()
    names = []
    for table in sorted(files):
        name = table.relative_to(root).as_posix()
        names.append(name)
        digest.update(f"{name}\0{sha256_file(table)}\n".encode())
    record = {**record, "files": names, "sha256": digest.hexdigest()}
    if (snapshot := hub_snapshot(root)) is not None:
        record["hub"] = snapshot
    return record


def package_provenance() -> dict[str, Any]:
    """This package's installed version, and the commit (and whether the work tree differs from it) when it runs
    from a git checkout — the version alone does not change between development commits."""
    try:
        installed = version(PACKAGE)
    except PackageNotFoundError:
        installed = None
    record: dict[str, Any] = {"name": PACKAGE, "version": installed}
    source = Path(__file__).resolve().parents[1]
    try:
        _git(source, "ls-files", "--error-unmatch", "__init__.py")  # this package's checkout, not a repo around a venv
        commit = _git(source, "rev-parse", "HEAD")
        dirty = _git(source, "status", "--porcelain", "--untracked-files=no") != ""
    except (OSError, subprocess.SubprocessError):
        return record
    return {**record, "git_commit": commit, "git_dirty": dirty}


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()


def evaluation_provenance(
    model: str | os.PathLike, data_dir: str | os.PathLike, splits: Sequence[str], data: dict[str, Any] | None = None
) -> dict:
    """`{"model": model_revision, "data": data_revision, "package": package_provenance}` of one evaluation run
    (`data`: the dataset's revision when it is not a CT-RATE folder, e.g. `flickr8k.flickr8k_revision`)."""
    return {
        "model": model_revision(model),
        "data": data if data is not None else data_revision(data_dir, splits),
        "package": package_provenance(),
    }


def this_machine() -> str:
    """CPU cores, CPU model and GPU of this machine, for the cards of what was trained on it."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}"


def jsonable(value: Any) -> Any:
    """NumPy → plain Python, NaN → None (JSON has no NaN; `null` reads as 'undefined')."""
    import numpy as np

    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def write_atomic(path: str | os.PathLike, write: Callable[[IO], Any], binary: bool = False) -> Path:
    """Call `write(file)` on a temporary file in the target folder, then `os.replace` it into place, so a reader
    never sees half a file and an interrupted run leaves the previous one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode, encoding = ("wb", None) if binary else ("w", "utf-8")
    with tempfile.NamedTemporaryFile(
        mode, encoding=encoding, dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as tmp:
        try:
            write(tmp)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    os.chmod(tmp.name, 0o644)  # a temporary file is private (0600); the result is for everyone to read
    os.replace(tmp.name, path)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """`text` at `path`, atomically (`write_atomic`)."""
    write_atomic(path, lambda f: f.write(text))


def write_json_atomic(path: str | os.PathLike, record: Any) -> None:
    write_text_atomic(path, json.dumps(record, indent=1))


def refuse_other_build(stamp: Path, content: dict[str, Any], what: str) -> None:
    """Refuse to build into a folder whose `stamp` (a JSON record with a "config" entry) names another build: the
    files already there are kept (that is how an interrupted build resumes), so a second build with another seed
    or size would mix two benchmarks. `content` holds the settings that decide the files."""
    if not stamp.is_file():
        return
    try:
        old = json.loads(stamp.read_text())["config"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{stamp} is not a build record ({what}: {error}); remove {stamp.parent}.") from None
    differ = [f"{k}={old.get(k)!r} there, {v!r} asked" for k, v in content.items() if old.get(k) != v]
    if differ:
        raise ValueError(f"{stamp.parent} holds another {what} build ({'; '.join(differ)}): pass the same arguments "
                         "to resume it, or another --out.")  # fmt: skip


def require_pinned_weights(folder: str | os.PathLike, recipe_file: str, weights_file: str = WEIGHTS) -> Path:
    """`folder` after checking `weights_file` against the sha256 its `recipe_file` pins (`"weights_sha256"`): a
    shipped tower that was changed or truncated is refused rather than loaded."""
    folder = Path(folder)
    recipe_path = folder / recipe_file
    if not recipe_path.is_file():
        raise FileNotFoundError(f"{recipe_path} is missing: {folder} is not a shipped, pinned model folder.")
    pinned = json.loads(recipe_path.read_text(encoding="utf-8"))["weights_sha256"]
    found = sha256_file(folder / weights_file)
    if found != pinned:
        raise ValueError(f"{folder / weights_file}: sha256 {found} is not the pinned {pinned}.")
    return folder
