"""Zero-shot prompts in the reports' own words: for each label, sentences of the training reports that state the
finding and sentences that rule it out, used as prompt ensembles (CLIP averages its prompts over templates).

CT-CLIP's prompts name the label ("Arterial wall calcification is present."), but a teacher learns the language of
its reports ("calcific atheroma plaques in the thoracic aorta"); a prompt in that language reaches what the CT tower
learnt (measured on the built benchmark: docs/teacher.md). Only report *text* is read, through the report reader
`describes` / `negates` (exact on the sentences `reports` writes, a keyword heuristic on other reports): no volume
and no label of any split takes part, so the classification stays zero-shot.

- positive sentences state the label and nothing else, and rule nothing out;
- negative sentences rule the label out and state nothing (they may rule out other findings too);
- a label without such sentences falls back to CT-CLIP's template sentence.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np

from ..labels import CT_RATE_LABELS
from ..zero_shot import DEFAULT_TEMPLATES
from .reports import describes, negates

PROMPT_SOURCES = ("template", "report_sentences")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def report_sentences(reports: Iterable[str]) -> list[str]:
    """The distinct sentences of `reports`, in order of first appearance."""
    seen: dict[str, None] = {}
    for report in reports:
        for sentence in _SENTENCE_END.split(report.strip()):
            if sentence:
                seen.setdefault(sentence, None)
    return list(seen)


def report_sentence_prompts(
    reports: Iterable[str],
    labels: Sequence[str] = CT_RATE_LABELS,
    per_side: int = 4,
    seed: int = 0,
) -> list[tuple[list[str], list[str]]]:
    """One (positive sentences, negative sentences) ensemble per label, `per_side` sentences each (drawn with
    `seed` when there are more; all of them when fewer)."""
    if per_side < 1:
        raise ValueError(f"per_side={per_side} must be at least 1")
    unknown = [label for label in labels if label not in CT_RATE_LABELS]
    if unknown:
        raise ValueError(f"labels {unknown} are not CT-RATE labels")
    positive: dict[str, list[str]] = {label: [] for label in labels}
    negative: dict[str, list[str]] = {label: [] for label in labels}
    for sentence in report_sentences(reports):
        stated, ruled_out = describes(sentence), negates(sentence)
        if len(stated) == 1 and not ruled_out and next(iter(stated)) in positive:
            positive[next(iter(stated))].append(sentence)
        if ruled_out and not stated:
            for label in ruled_out & negative.keys():
                negative[label].append(sentence)
    rng = np.random.default_rng(seed)
    prompts = []
    for label in labels:
        sides = []
        for pool, template in ((positive[label], DEFAULT_TEMPLATES[0]), (negative[label], DEFAULT_TEMPLATES[1])):
            if not pool:
                sides.append([template.format(label=label)])
                continue
            keep = np.sort(rng.permutation(len(pool))[:per_side])
            sides.append([pool[int(i)] for i in keep])
        prompts.append((sides[0], sides[1]))
    return prompts


def training_report_prompts(
    data_dir: str | os.PathLike, labels: Sequence[str] = CT_RATE_LABELS, per_side: int = 4, seed: int = 0
) -> list[tuple[list[str], list[str]]]:
    """`report_sentence_prompts` over the findings of a CT-RATE-layout dataset's training split (what every
    evaluation mines its prompts from: never the split it scores)."""
    from .ctrate import load_ct_rate

    reports = load_ct_rate(data_dir, "train", require_speech=False)["findings"]
    return report_sentence_prompts(reports, labels, per_side, seed)


def add_prompt_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """`--prompts` / `--prompt_sentences`, the flags of every script that chooses zero-shot prompts."""
    parser.add_argument(
        "--prompts",
        choices=PROMPT_SOURCES,
        default=default,
        help="'template': CT-CLIP's pair per label; 'report_sentences': ensembles of sentences of the training "
        "reports that state / rule out each finding (data.report_prompts; text only, no labels)",
    )
    parser.add_argument("--prompt_sentences", type=int, default=4, help="sentences per side with report_sentences")
