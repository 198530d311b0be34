"""How a dataset's metadata reads as a short clinical report: an opening line and one sentence per field, in order.

Each dataset module (the adapters, the embedded benchmark) defines its `TEMPLATE`; `reports.py` renders with it and
guards against leaking an excluded field.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportTemplate:
    """`sentences` are `(metadata field, sentence containing "{value}")`; a field a recording lacks, or one that is
    excluded, is skipped."""

    dataset: str
    opening: str
    sentences: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        for name, sentence in self.sentences:
            if "{value}" not in sentence:
                raise ValueError(f"template {self.dataset!r}: the sentence for {name!r} has no {{value}}.")

    def render(self, metadata: dict[str, str], excluded: frozenset[str] | set[str] = frozenset()) -> str:
        parts = [self.opening] if self.opening else []
        parts += [s.format(value=metadata[f]) for f, s in self.sentences if f in metadata and f not in excluded]
        return " ".join(parts)
