"""Load a command-line script of the repository (`eval/…`, `train/…`, `model_cards/…`) as a module, by its path.

The scripts are not a package and must not be made importable by editing the import path; a test that calls their
functions loads the file under a private name instead."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> ModuleType:
    """`load_script("eval/linear_probe.py")`: the script's module, executed once (its `main` not called)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(f"script_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
