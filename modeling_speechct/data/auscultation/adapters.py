"""Registry of the real-dataset adapters: each reads a dataset from its distributed layout into the AcuLa manifest
(see `manifest`), so the benchmark code never knows a dataset's own file format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import benchmark, circor, coswara, coughvid, icbhi, kauh
from .circor import read_circor
from .coswara import read_coswara
from .coughvid import read_coughvid
from .icbhi import read_icbhi
from .kauh import read_kauh
from .manifest import ProbeTask, Recording, write_manifest
from .report_template import ReportTemplate

Adapter = Callable[[Path, int], tuple[list[Recording], list[ProbeTask], list[str]]]
ADAPTERS: dict[str, Adapter] = {"icbhi": read_icbhi, "circor": read_circor, "coswara": read_coswara,
                                "coughvid": read_coughvid, "kauh": read_kauh}  # fmt: skip
# Each dataset's report template, by the `dataset` its manifest rows carry (the embedded benchmark's included).
TEMPLATES: dict[str, ReportTemplate] = {m.TEMPLATE.dataset: m.TEMPLATE
                                        for m in (benchmark, circor, coswara, coughvid, icbhi, kauh)}  # fmt: skip


def write_dataset_manifest(name: str, root: str | Path, seed: int = 0) -> Path:
    """Read dataset `name` at `root` and write its manifest there (the adapter's recordings, tasks, exclusions)."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(ADAPTERS)}.")
    recordings, tasks, excluded = ADAPTERS[name](Path(root), seed)
    return write_manifest(root, recordings, tasks, excluded)
