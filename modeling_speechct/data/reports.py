"""CT-RATE-style report text from rendered findings, and a checker of what a report text asserts.

`write_report(findings, rng)` returns `(findings_text, impressions_text)` for a non-contrast chest CT, in
CT-RATE's order of anatomy: trachea and main bronchi, mediastinum / heart / great vessels, lymph nodes,
esophagus / hiatus, lungs and pleura, bones and upper abdomen. Every `Finding` is described with all of its
details (side, location, size, severity, count, kind); a random subset of the absent labels is negated explicitly;
normal-anatomy sentences fill the sections. Phrasing, sentence order inside a section and number formatting vary,
and everything is drawn from the given `numpy.random.Generator`, so the same generator state gives the same text.

`describes(text)` returns the labels a text asserts as present and `negates(text)` the labels it explicitly
rules out. Both work clause by clause: a clause carrying a negation or normality cue ("no", "not", "without",
"normal", "unremarkable", ...) asserts nothing, and only contributes to `negates`. They are exact on the
sentences this module writes (the tests hold them to that) and are keyword heuristics elsewhere.

The wording (word lists, nouns per finding, negative and normal-anatomy sentences) lives in `report_vocabulary`,
phrase building (articles, plurals, sizes, sites, noun phrases) in `report_phrases`, and the sentence of each present
finding in `report_findings`; this module assembles them into sections and impressions, and reads reports back.
"""

from __future__ import annotations

import re

import numpy as np

from ..labels import CT_RATE_LABELS, Finding
from .report_findings import _positive
from .report_phrases import _cap, _in, _join_words, _low, _pick, _site, _size_text
from .report_vocabulary import (
    _ARTERY_ANCHOR,
    _COMBINED_NEGATIVES,
    _FILLERS,
    _MATERIAL_ANCHOR,
    _NEGATIVE_SECTION,
    _NEGATIVES,
    _NORMAL_IMPRESSIONS,
    _SECTION_OF,
    SECTIONS,
    SIDE_WORDS,
)

__all__ = ["describes", "negates", "write_report"]

# ----------------------------------------------------------------------------------------------------------------
# sections


def _section_of(f: Finding) -> str:
    if f.label == "Medical material" and f.kind and "sternotomy" in f.kind.lower():
        return "bones"
    return _SECTION_OF.get(f.label, "lungs")


# ----------------------------------------------------------------------------------------------------------------
# impressions


def _impression_phrase(f: Finding, rng: np.random.Generator) -> str:
    label = f.label
    sev = f.severity or ""
    kind = f.kind or ""
    size = f" ({_size_text(f.size_mm, rng)})" if f.size_mm is not None else ""
    site = _site(f, rng)
    in_site = _in(site)
    if label == "Medical material":
        what = (
            kind
            if kind and _MATERIAL_ANCHOR.search(kind)
            else f"medical material ({kind})"
            if kind
            else "medical material"
        )
        return what + _in(_site(f, rng, default_noun="hemithorax"))
    if label == "Arterial wall calcification":
        location = f.location or "thoracic aorta"
        noun = "atherosclerotic calcification" if _ARTERY_ANCHOR.search(location) else "arterial wall calcification"
        return _join_words(sev, noun) + f" of the {location}" + size
    if label == "Coronary artery wall calcification":
        return _join_words(sev, "coronary artery calcification") + _in(_site(f, rng, default_noun="coronary system"))
    if label == "Cardiomegaly":
        return _join_words(sev, "cardiomegaly")
    if label == "Pericardial effusion":
        return _join_words(sev, "pericardial effusion") + size
    if label == "Hiatal hernia":
        return _join_words(sev, kind, "hiatal hernia") + size
    if label == "Lymphadenopathy":
        nodes = f"{f.count} enlarged lymph nodes" if f.count and f.count > 1 else "lymphadenopathy"
        return _join_words(sev, kind, nodes) + _in(_site(f, rng, default_noun="hemithorax")) + size
    if label == "Lung nodule":
        if f.count and f.count > 1:
            return f"{f.count} {_join_words(kind, 'pulmonary nodules')}{in_site}" + (
                f", the largest {_size_text(f.size_mm, rng)}" if f.size_mm is not None else ""
            )
        return (
            _join_words(_size_text(f.size_mm, rng, adjectival=True) if f.size_mm is not None else "", kind, "nodule")
            + in_site
        )
    if label == "Pleural effusion":
        return _join_words(sev, f.side if f.side in SIDE_WORDS else "", "pleural effusion") + size
    noun = {
        "Emphysema": "emphysema",
        "Atelectasis": "atelectasis",
        "Lung opacity": "opacities",
        "Pulmonary fibrotic sequela": "fibrotic sequelae",
        "Mosaic attenuation pattern": "mosaic attenuation pattern",
        "Peribronchial thickening": "peribronchial thickening",
        "Consolidation": "consolidation",
        "Bronchiectasis": "bronchiectasis",
        "Interlobular septal thickening": "interlobular septal thickening",
    }[label]
    return _join_words(sev, kind, noun) + in_site + size


def _impressions(findings: list[Finding], rng: np.random.Generator) -> str:
    if not findings:
        return _pick(rng, _NORMAL_IMPRESSIONS)
    order = rng.permutation(len(findings))
    phrases = [_impression_phrase(findings[int(i)], rng) for i in order]
    style = int(rng.integers(3))
    if style == 0 or len(phrases) > 4:
        return " ".join(_cap(p) + "." for p in phrases)
    if style == 1:
        return " ".join(f"{i}) {_cap(p)}." for i, p in enumerate(phrases, 1))
    if len(phrases) == 1:
        return _cap(phrases[0]) + "."
    return _cap("; ".join(phrases[:-1]) + "; " + phrases[-1]) + "."


# ----------------------------------------------------------------------------------------------------------------
# the report


def write_report(
    findings: list[Finding],
    rng: np.random.Generator,
    negation_share: tuple[float, float] = (0.35, 0.9),
    max_fillers: int = 2,
) -> tuple[str, str]:
    """A CT-RATE-style `(findings_text, impressions_text)` for these findings; deterministic given `rng`'s state.

    Each report negates a share of the absent labels drawn from `negation_share` and adds up to `max_fillers`
    normal-anatomy sentences per section: lower both for shorter reports (less audio to synthesise and encode)."""
    findings = list(findings)
    present = {f.label for f in findings}
    absent = [label for label in CT_RATE_LABELS if label not in present]
    sections: dict[str, list[tuple[str, str]]] = {s: [] for s in SECTIONS}

    for f in findings:
        sections[_section_of(f)].append(("pos", _positive(f, rng)))

    p_negate = rng.uniform(*negation_share)
    chosen = [label for label in absent if rng.random() < p_negate]
    done: set[str] = set()
    for labels, section, variants in _COMBINED_NEGATIVES:
        if all(lab in chosen and lab not in done for lab in labels) and rng.random() < 0.5:
            sections[section].append(("neg", _pick(rng, variants)))
            done.update(labels)
    for label in chosen:
        if label not in done:
            sections[_NEGATIVE_SECTION[label]].append(("neg", _pick(rng, _NEGATIVES[label])))

    for section in SECTIONS:
        eligible = [v for s, needs, v in _FILLERS if s == section and all(n not in present for n in needs)]
        if not eligible:
            continue
        low = 1 if section == "airways" else 0
        k = int(rng.integers(min(low, max_fillers), min(len(eligible), max_fillers) + 1))
        for i in sorted(rng.choice(len(eligible), size=k, replace=False)):
            sections[section].append(("fill", _pick(rng, eligible[int(i)])))

    sentences: list[str] = []
    for section in SECTIONS:
        items = [sections[section][int(i)] for i in rng.permutation(len(sections[section]))]
        i = 0
        while i < len(items):
            kind, text = items[i]
            follower = items[i + 1][0] if i + 1 < len(items) else None
            # a finding may be followed by a negative ("..., but no pleural effusion"); negatives and normal
            # anatomy may be chained with ", and"
            joinable = follower == "neg" or (follower == "fill" and kind != "pos")
            if joinable and rng.random() < 0.2:
                joiner = ", but " if kind == "pos" else ", and "
                text = text.rstrip(".") + joiner + _low(items[i + 1][1])
                i += 1
            sentences.append(text)
            i += 1
    return " ".join(sentences), _impressions(findings, rng)


# ----------------------------------------------------------------------------------------------------------------
# what a text asserts

_NEGATION = re.compile(
    r"\b(?:no|not|without|neither|nor|normal|normally|unremarkable|free of|absent|natural|none|negative)\b|"
    r"within (?:normal|physiological) limits",
    re.I,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_SPLIT = re.compile(r";|,\s*(?:and|but|while|whereas|although)\s+|\s+(?:but|whereas)\s+", re.I)
_CALCIFIC = r"(?:calcif|atherom|atheroscl|plaque)"
_VESSEL = r"(?:aort|arter|vascular|vessel)"
_NOT_VESSEL = r"(?:lymph|adenopath|nodul)"  # calcified nodes or nodules near the aorta are not arterial

# label -> (pattern asserting it in an affirmative clause, pattern naming its topic in a negated clause)
_PATTERNS: dict[str, tuple[str, str]] = {
    "Medical material": (_MATERIAL_ANCHOR.pattern, _MATERIAL_ANCHOR.pattern + r"|foreign"),
    "Arterial wall calcification": (
        rf"^(?!.*{_NOT_VESSEL})(?=.*{_CALCIFIC})(?=.*{_VESSEL})(?:(?!.*coronary)|(?=.*aort))",
        rf"^(?!.*{_NOT_VESSEL})(?=.*{_CALCIFIC})(?=.*(?:aort|arterial|vascular|vessel))(?:(?!.*coronary)|(?=.*aort))",
    ),
    "Cardiomegaly": (
        r"cardiomegaly|cardiac enlargement|enlarged heart"
        r"|heart (?:size )?(?:is|appears) (?:\w+ )?(?:enlarged|increased)"
        r"|(?:heart|cardiac) size is (?:\w+ )?increased|cardiothoracic ratio (?:is )?increased"
        r"|enlargement of the heart",
        r"cardiomegaly|\bheart\b|\bcardiac\b|cardiothoracic",
    ),
    "Pericardial effusion": (
        r"pericardial (?:effusion|fluid)|fluid (?:\w+ ){0,4}(?:in|within) the pericardi",
        r"pericardi",
    ),
    "Coronary artery wall calcification": (r"coronary", r"coronary"),
    "Hiatal hernia": (r"hernia|herniat", r"hernia|herniat|hiat"),
    "Lymphadenopathy": (
        r"adenopath|(?:enlarged|patholog)[\w ,-]*\blymph nodes?|lymph nodes?\b.*\b(?:enlarged|patholog)",
        r"lymph|adenopath",
    ),
    "Emphysema": (r"emphysem", r"emphysem"),
    "Atelectasis": (r"atelecta", r"atelecta"),
    "Lung nodule": (r"\bnodules?\b|\bnodular lesions?\b", r"\bnodul|\bmass\b"),
    "Lung opacity": (r"opacit|\bdensit(?:y|ies)\b", r"opacit|ground[- ]glass|\bdensit"),
    "Pulmonary fibrotic sequela": (
        r"fibro(?:tic|sis)|sequela|scarring|\bscars?\b|parenchymal bands?",
        r"fibro(?:tic|sis)|sequela|scarring|\bscars?\b|parenchymal bands?",
    ),
    "Pleural effusion": (
        r"pleural (?:effusion|fluid)|fluid (?:\w+ ){0,4}(?:in|within) (?:the |both )?(?:\w+ ){0,2}pleural",
        r"\bpleural",
    ),
    "Mosaic attenuation pattern": (r"mosaic", r"mosaic"),
    "Peribronchial thickening": (
        r"peribronchial|bronchial walls? thickening|thickening of the bronchial wall|thickened bronchial wall"
        r"|bronchial walls? (?:is|are) thickened",
        r"peribronchial|bronchial wall",
    ),
    "Consolidation": (r"consolidat|air bronchogram", r"consolidat|air bronchogram"),
    "Bronchiectasis": (
        r"bronchiecta|dilated bronch|bronchial dilat|dilatation of the bronch|dilation of the bronch",
        r"bronchiecta|dilated bronch|bronchial dilat",
    ),
    "Interlobular septal thickening": (
        r"interlobular|\bseptal thickening|thickened (?:interlobular )?septa|thickening of the (?:interlobular )?septa",
        r"interlobular|\bseptal\b|\bsepta\b",
    ),
}
_ASSERT = {label: re.compile(a, re.I) for label, (a, _) in _PATTERNS.items()}
_TOPIC = {label: re.compile(t, re.I) for label, (_, t) in _PATTERNS.items()}


def _clauses(text: str):
    for sentence in _SENTENCE_SPLIT.split(text.strip()):
        for clause in _CLAUSE_SPLIT.split(sentence):
            clause = clause.strip()
            if clause:
                yield clause


def describes(findings_text: str) -> set[str]:
    """Labels the text asserts as present (clauses with a negation or normality cue assert nothing)."""
    found: set[str] = set()
    for clause in _clauses(findings_text):
        if _NEGATION.search(clause):
            continue
        found.update(label for label, pattern in _ASSERT.items() if pattern.search(clause))
    return found


def negates(findings_text: str) -> set[str]:
    """Labels the text explicitly rules out (their topic appears in a clause carrying a negation or normality cue)."""
    found: set[str] = set()
    for clause in _clauses(findings_text):
        if _NEGATION.search(clause):
            found.update(label for label, pattern in _TOPIC.items() if pattern.search(clause))
    return found
