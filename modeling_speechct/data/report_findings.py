"""The sentence that states each present finding of a report, one writer per kind of label.

`_positive(finding, rng)` dispatches to `_WRITERS` (nodules, lymph nodes, pleural and pericardial effusions,
cardiomegaly, hiatal hernia, arterial and coronary calcification, medical material) or else to `_generic`, the
template family of the lung-parenchyma labels. Every writer renders all of the finding's details (side, location,
size, severity, count, kind), in its template where it can and as trailing phrases (`_unused`) where not. The
templates live here with their writers; the nouns and verbs they are filled with come from `report_vocabulary`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..labels import Finding
from .report_phrases import (
    _be,
    _cap,
    _count_text,
    _finish,
    _has_side,
    _in,
    _is_plural_phrase,
    _join_words,
    _noun_phrase,
    _pick,
    _plural,
    _sev_adj,
    _sev_adv,
    _site,
    _size_text,
    _with_article,
)
from .report_vocabulary import (
    _ARTERY_ANCHOR,
    _LUNG_WINDOW,
    _MATERIAL_ANCHOR,
    _NOUN_HEADS,
    _NOUNS,
    _VERBS,
    SIDE_WORDS,
)

# ----------------------------------------------------------------------------------------------------------------
# positive sentences, one function per kind of label

_GENERIC = (
    "{NP} {be} {verb}{in_site}{size}.",
    "There {be} {np}{in_site}{size}.",
    "In {site}, {np} {be} {verb}{size}.",
    "{Site} {shows} {np}{size}.",
    "{NP}{in_site}{size}.",
    "{LW}, {np} {be} {verb}{in_site}{size}.",
    "{NP} {be} also {verb}{in_site}{size}.",
    "{NP} {be} {verb}{in_site}{size} on the lung window.",
)
_GENERIC_SIZE = (" measuring {s}", " ({s})", " with a maximum extent of {s}", ", measuring up to {s},", " spanning {s}")
_LABEL_EXTRA_TEMPLATES = {
    "Consolidation": ("{NP} with air bronchograms {be} {verb}{in_site}{size}.",),
    "Mosaic attenuation pattern": ("{NP} {be} {verb}{in_site}{size}, suggesting small airway disease.",),
    "Emphysema": ("{NP} {be} {verb} in the lung parenchyma{in_site_along}{size}.",),
    "Bronchiectasis": ("{NP} {be} {verb}{in_site}{size}, with the bronchi wider than their accompanying arteries.",),
}


def _render(templates: Sequence[str], values: dict[str, str], rng: np.random.Generator) -> str:
    has_site = bool(values.get("site"))
    usable = [t for t in templates if has_site or ("{site}" not in t and "{Site}" not in t)]
    return _pick(rng, usable).format(**values)


def _phrase_values(np_text: str, plural: bool, rng: np.random.Generator, site: str = "", size: str = "") -> dict:
    """Template fields shared by the finding writers: the noun phrase, verb agreement, the site, the size clause."""
    site_plural = _is_plural_phrase(site) if site else False
    return {
        "NP": _cap(np_text),
        "np": np_text,
        "be": _be(plural),
        "verb": _pick(rng, _VERBS),
        "in_site": _in(site) if site else "",
        "site": site,
        "Site": _cap(site),
        "shows": "show" if site_plural else "shows",
        "contains": "contain" if site_plural else "contains",
        "size": size,
    }


def _generic(f: Finding, rng: np.random.Generator, nouns, extra_templates=(), size_templates=_GENERIC_SIZE) -> str:
    np_text, plural = _noun_phrase(f, rng, nouns, plural_ok=f.label != "Mosaic attenuation pattern")
    site = _site(f, rng, default_noun="lung")
    size = _pick(rng, size_templates).format(s=_size_text(f.size_mm, rng)) if f.size_mm is not None else ""
    values = _phrase_values(np_text, plural, rng, site, size)
    values["in_site_along"] = f", mainly in {site}" if site else ""
    values["LW"] = _pick(rng, _LUNG_WINDOW)
    return _finish(_render((*_GENERIC, *extra_templates), values, rng), [])


def _nodule(f: Finding, rng: np.random.Generator) -> str:
    many = f.count is not None and f.count > 1
    size_adj = ""
    size = ""
    if f.size_mm is not None:
        if not many and rng.random() < 0.5:
            size_adj = _size_text(f.size_mm, rng, adjectival=True)
        else:
            tails = (
                (", the largest measuring {s}", " measuring up to {s}", " up to {s} in size", " (the largest {s})")
                if many
                else (" measuring {s}", " with a diameter of {s}", " ({s})", " of {s} in diameter")
            )
            size = _pick(rng, tails).format(s=_size_text(f.size_mm, rng))
    np_text, plural = _noun_phrase(f, rng, _NOUNS["Lung nodule"], size_adj=size_adj)
    site = _site(f, rng, default_noun="lung")
    templates = (
        "{NP} {be} {verb}{in_site}{size}.",
        "There {be} {np}{in_site}{size}.",
        "In {site}, {np} {be} {verb}{size}.",
        "{NP}{in_site}{size}.",
        "{LW}, {np} {be} {verb}{in_site}{size}.",
        "{Site} {contains} {np}{size}.",
        "{NP} {be} {verb}{in_site}{size}, with smooth margins.",
    )
    values = _phrase_values(np_text, plural, rng, site, size)
    values["LW"] = _pick(rng, _LUNG_WINDOW)
    return _finish(_render(templates, values, rng), [])


def _lymph(f: Finding, rng: np.random.Generator) -> str:
    many = f.count is not None and f.count > 1
    location = re.sub(r"^the\s+", "", f.location.strip(), flags=re.I) if f.location else None
    adjectival = (
        location is not None
        and location.split()[-1].lower() not in _NOUN_HEADS
        and "," not in location
        and " and " not in location
    )
    prefix = ""
    if adjectival and rng.random() < 0.5:
        prefix = (
            location
            if (f.side is None or _has_side(location) or f.side not in SIDE_WORDS)
            else (f"{f.side} {location}")
        )
        site = ""
    else:
        site = _site(f, rng, default_noun="hemithorax", head=("region", "station", "area"))
    adv = _sev_adv(f.severity, rng)
    if f.severity:
        enlarged = _join_words(adv if adv is not None else _sev_adj(f.severity, rng), "enlarged")
    else:
        enlarged = _pick(rng, ("enlarged", "pathologically enlarged", "enlarged"))
    kind = f.kind or ""
    count = f.count
    style = int(rng.integers(3))
    if style == 0 and count is None:  # mass noun
        np_text = _join_words(_sev_adj(f.severity, rng), kind, prefix, "lymphadenopathy")
        plural = False
    else:
        if style == 2 and not f.severity:
            body_sing = _join_words(kind, prefix, "lymph node of pathological size")
            body_plur = _join_words(kind, prefix, "lymph nodes of pathological size")
        else:
            body_sing = _join_words(enlarged, kind, prefix, "lymph node")
            body_plur = body_sing + "s"
        if many:
            np_text, plural = f"{_count_text(count, rng)} {body_plur}", True
        elif count == 1:
            np_text, plural = (_with_article(body_sing) if rng.random() < 0.6 else f"one {body_sing}"), False
        elif rng.random() < 0.5:
            np_text, plural = _with_article(body_sing), False
        else:
            np_text, plural = body_plur, True
    size = ""
    if f.size_mm is not None:
        tails = (
            (
                ", the largest measuring {s} in short axis",
                " measuring up to {s} in short axis",
                " (up to {s} in short-axis diameter)",
            )
            if plural
            else (" measuring {s} in short axis", ", {s} in short-axis diameter,", " with a short axis of {s}")
        )
        size = _pick(rng, tails).format(s=_size_text(f.size_mm, rng))
    templates = (
        "{NP} {be} {verb}{in_site}{size}.",
        "There {be} {np}{in_site}{size}.",
        "In {site}, {np} {be} {verb}{size}.",
        "{NP}{in_site}{size}.",
        "{NP} {be} {verb}{in_site}{size} on the mediastinal window.",
    )
    values = _phrase_values(np_text, plural, rng, site, size)
    return _finish(_render(templates, values, rng), [])


def _pleural(f: Finding, rng: np.random.Generator) -> str:
    sev = _sev_adj(f.severity, rng)
    side = f.side if f.side in SIDE_WORDS else None
    plural = side == "bilateral" and rng.random() < 0.6
    head = _join_words(sev, side or "", "pleural effusions" if plural else "pleural effusion")
    np_text = head if plural else _with_article(head) if rng.random() < 0.6 else head
    size = ""
    if f.size_mm is not None:
        size = _pick(
            rng, (" measuring {s} in depth", " with a depth of {s}", ", {s} thick,", " reaching {s} in thickness")
        )
        size = size.format(s=_size_text(f.size_mm, rng))
    hemi = {"right": "the right hemithorax", "left": "the left hemithorax", "bilateral": "both hemithoraces"}
    templates = [
        "{NP}{size} {be} {verb}.",
        "There {be} {np}{size}.",
        "{NP}{size}.",
    ]
    if side:
        side_words = "on both sides" if side == "bilateral" else f"on the {side} side"
        space = "both pleural spaces" if side == "bilateral" else f"the {side} pleural space"
        templates += [
            _cap(_join_words(sev, "pleural effusion")) + " {be1} {verb} " + side_words + "{size}.",
            _cap(_join_words(sev, "fluid")) + " {be1} {verb} in " + space + "{size}.",
            "In " + hemi[side] + ", {np} {be} {verb}{size}.",
        ]
    values = {**_phrase_values(np_text, plural, rng, size=size), "be1": "is"}
    extras = [f"in {_site(f, rng)}"] if f.location else []
    return _finish(_render(templates, values, rng), extras + _unused(f, rng, kind=True, count=True))


def _pericardial(f: Finding, rng: np.random.Generator) -> str:
    sev = _sev_adj(f.severity, rng)
    head = _join_words(sev, "pericardial effusion")
    np_text = _with_article(head) if rng.random() < 0.5 else head
    size = ""
    if f.size_mm is not None:
        size = _pick(
            rng, (" measuring {s} in thickness", " up to {s} thick", " with a maximum thickness of {s}", " ({s})")
        )
        size = size.format(s=_size_text(f.size_mm, rng))
    templates = [
        "{NP}{size} {be} {verb}.",
        "There {be} {np}{size}.",
        "{NP}{size}.",
        "Pericardial fluid{size} {be} {verb}" + (f", {sev} in amount." if sev else "."),
        "Fluid {be} {verb} within the pericardial space{size}" + (f", consistent with {sev} effusion." if sev else "."),
    ]
    if sev:
        templates.append("Pericardial effusion of " + sev + " degree {be} {verb}{size}.")
    values = {"NP": _cap(np_text), "np": np_text, "be": "is", "verb": _pick(rng, _VERBS), "size": size}
    return _finish(_render(templates, values, rng), _unused(f, rng, kind=True, site=True, count=True))


def _cardiomegaly(f: Finding, rng: np.random.Generator) -> str:
    adv = _sev_adv(f.severity, rng)
    adj = _sev_adj(f.severity, rng)
    templates = [
        _cap(_join_words(adj, "cardiomegaly")) + " {be} {verb}.",
        "There is " + _join_words(adj, "cardiomegaly") + ".",
        _cap(_join_words(adj, "cardiac enlargement")) + " {be} {verb}.",
        "The cardiothoracic ratio is increased, consistent with " + _join_words(adj, "cardiomegaly") + ".",
        _cap(_join_words(adj, "cardiomegaly")) + ".",
        ("The heart is enlarged, with " + adj + " cardiomegaly.") if adj else "The heart is enlarged.",
    ]
    if adv is not None:
        templates += [
            "The heart is " + _join_words(adv, "enlarged") + ".",
            "Heart size is " + _join_words(adv, "increased") + ".",
            "The heart appears " + _join_words(adv, "enlarged") + ".",
        ]
    if adj:
        templates.append("Cardiomegaly of " + adj + " degree {be} {verb}.")
    values = {"be": "is", "verb": _pick(rng, _VERBS)}
    return _finish(_render(templates, values, rng), _unused(f, rng, kind=True, site=True, size=True, count=True))


def _unused(
    f: Finding,
    rng: np.random.Generator,
    kind=False,
    site=False,
    size=False,
    count=False,
    severity=False,
    site_noun="hemithorax",
) -> list[str]:
    """Details a template family does not render itself, as trailing phrases."""
    parts = []
    if severity and f.severity:
        parts.append(f"{_sev_adj(f.severity, rng)} in degree")
    if kind and f.kind:
        parts.append(f"{f.kind} type")
    if site and (f.location or f.side):
        parts.append(f"in {_site(f, rng, default_noun=site_noun)}")
    if size and f.size_mm is not None:
        parts.append(f"measuring {_size_text(f.size_mm, rng)}")
    if count and f.count is not None:
        parts.append(f"{_count_text(f.count, rng)} in number")
    return parts


def _hiatal(f: Finding, rng: np.random.Generator) -> str:
    np_text, plural = _noun_phrase(f, rng, _NOUNS["Hiatal hernia"], plural_ok=False)
    size = ""
    if f.size_mm is not None:
        size = _pick(rng, (" measuring {s}", " ({s})", ", {s} in size,")).format(s=_size_text(f.size_mm, rng))
    templates = (
        "{NP}{size} {be} {verb}.",
        "There {be} {np}{size}.",
        "{NP}{size}.",
        "Part of the stomach herniates through the esophageal hiatus, consistent with {np}{size}.",
        "The esophageal hiatus is widened, with {np}{size}.",
        "At the level of the esophageal hiatus, {np}{size} {be} {verb}.",
    )
    values = {"NP": _cap(np_text), "np": np_text, "be": _be(plural), "verb": _pick(rng, _VERBS), "size": size}
    return _finish(_render(templates, values, rng), _unused(f, rng, site=True))


def _arterial(f: Finding, rng: np.random.Generator) -> str:
    location = f.location or _pick(rng, ("thoracic aorta", "aortic arch", "thoracic aorta"))
    location = re.sub(r"^the\s+", "", location.strip(), flags=re.I)
    nouns = _NOUNS["Arterial wall calcification"]
    if not _ARTERY_ANCHOR.search(location):
        nouns = (("arterial wall calcification", None), ("calcified arterial plaque", "calcified arterial plaques"))
    np_text, plural = _noun_phrase(f, rng, nouns)
    side = f"{f.side} " if f.side in ("right", "left") and not _has_side(location) else ""
    site = f"the {side}{location}"
    if f.side == "bilateral" and not _has_side(location):
        site = f"the {location} on both sides"
    size = _plaque_size(f, rng)
    templates = (
        "{NP}{size} {be} {verb} in {site}.",
        "{Site} {shows} {np}{size}.",
        "There {be} {np}{size} in the wall of {site}.",
        "{NP}{size} in {site}.",
        "In {site}, {np}{size} {be} {verb}.",
        "Atherosclerotic changes with {np}{size} are {verb} in {site}.",
    )
    values = _phrase_values(np_text, plural, rng, site, size)
    return _finish(_render(templates, values, rng), [])


def _plaque_size(f: Finding, rng: np.random.Generator) -> str:
    """Optional size clause for calcified plaques (aortic and coronary)."""
    if f.size_mm is None:
        return ""
    return _pick(rng, (" measuring up to {s}", " ({s})", ", up to {s} in length,")).format(s=_size_text(f.size_mm, rng))


def _coronary(f: Finding, rng: np.random.Generator) -> str:
    np_text, plural = _noun_phrase(f, rng, _NOUNS["Coronary artery wall calcification"])
    site = _site(f, rng, default_noun="coronary system")
    size = _plaque_size(f, rng)
    templates = (
        "{NP}{size} {be} {verb}{in_site}.",
        "There {be} {np}{size}{in_site}.",
        "{NP}{size}{in_site}.",
        "{NP}{size} {be} {verb}, most prominent in {site}.",
        "{Site} {shows} {np}{size}.",
        "In {site}, {np}{size} {be} {verb}.",
    )
    values = _phrase_values(np_text, plural, rng, site, size)
    return _finish(_render(templates, values, rng), [])


def _material(f: Finding, rng: np.random.Generator) -> str:
    kind = f.kind
    site = _site(f, rng, default_noun="hemithorax")
    verb = _pick(rng, _VERBS)
    if kind:
        plural = _is_plural_phrase(kind)
        count = f"{_count_text(f.count, rng)} " if f.count is not None and f.count > 1 else ""
        thing = f"{count}{_plural(kind) if count else kind}"
        plural = plural or bool(count)
        if f.count == 1 and not plural:
            thing_a = _pick(rng, (f"a single {kind}", f"one {kind}"))
        else:
            thing_a = thing if plural else _with_article(thing)
        be = _be(plural)
        templates = [
            f"Medical material is {verb}: {thing_a}{{in_site}}.",
            f"Foreign medical material consistent with {thing_a} is {verb}{{in_site}}.",
            f"There is implanted medical hardware, namely {thing_a}{{in_site}}.",
            f"Postoperative medical material ({thing}) is {verb}{{in_site}}.",
        ]
        if _MATERIAL_ANCHOR.search(kind):
            templates += [
                f"{_cap(thing_a)} {be} {verb}{{in_site}}.",
                f"There {be} {thing_a}{{in_site}}.",
                f"{_cap(thing_a)}{{in_site}}.",
            ]
        if "sternotomy" in kind.lower():
            templates.append(f"{_cap(thing)} {be} {verb}{{in_site}}, consistent with previous median sternotomy.")
        if "pacemaker" in kind.lower():
            templates.append(f"{_cap(thing_a)} {be} {verb}{{in_site}}, part of a cardiac pacemaker device.")
    else:
        templates = [
            f"Medical material is {verb}{{in_site}}.",
            f"Implanted medical hardware is {verb}{{in_site}}.",
            f"A medical device is {verb}{{in_site}}.",
            f"Foreign medical material is {verb}{{in_site}}.",
        ]
    sentence = _render(templates, {"in_site": _in(site), "site": site}, rng)
    return _finish(sentence, _unused(f, rng, size=True, count=not kind, severity=True))


def _positive(f: Finding, rng: np.random.Generator) -> str:
    writer = _WRITERS.get(f.label)
    if writer is not None:
        return writer(f, rng)
    label = f.label
    return _generic(f, rng, _NOUNS[label], _LABEL_EXTRA_TEMPLATES.get(label, ()))


_WRITERS = {
    "Lung nodule": _nodule,
    "Lymphadenopathy": _lymph,
    "Pleural effusion": _pleural,
    "Pericardial effusion": _pericardial,
    "Cardiomegaly": _cardiomegaly,
    "Hiatal hernia": _hiatal,
    "Arterial wall calcification": _arterial,
    "Coronary artery wall calcification": _coronary,
    "Medical material": _material,
}
