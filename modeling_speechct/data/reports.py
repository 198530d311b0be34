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
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..labels import CT_RATE_LABELS, Finding

__all__ = ["SEVERITY_WORDS", "SIDE_WORDS", "describes", "negates", "write_report"]

# Words that may render a severity or a side (tests check that each finding's sentences carry one of them).
SEVERITY_WORDS: dict[str, tuple[str, ...]] = {
    "mild": ("mild", "mildly", "slight", "slightly", "minimal"),
    "moderate": ("moderate", "moderately"),
    "severe": ("severe", "severely", "marked", "markedly", "extensive", "advanced"),
}
_SEV_ADJ = {
    "mild": ("mild", "slight", "minimal"),
    "moderate": ("moderate",),
    "severe": ("severe", "marked", "advanced"),
}
_SEV_ADV = {"mild": ("mildly", "slightly"), "moderate": ("moderately",), "severe": ("severely", "markedly")}
SIDE_WORDS: dict[str, tuple[str, ...]] = {
    "right": ("right",),
    "left": ("left",),
    "bilateral": ("bilateral", "bilaterally", "both"),
}

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_VERBS = ("seen", "observed", "noted", "identified", "present", "detected", "visualized")
_LUNG_WINDOW = (
    "In the lung parenchyma window",
    "On lung window images",
    "In the evaluation of the lung parenchyma",
    "When examined in the lung parenchyma window",
    "On the lung window",
)
# Last words that make a location a noun phrase ("right upper lobe"); other locations are adjectives
# ("subcarinal", "right paratracheal") and get a head noun ("region", "station").
_NOUN_HEADS = frozenset(
    [
        "lobe",
        "lobes",
        "lung",
        "lungs",
        "mediastinum",
        "artery",
        "arteries",
        "aorta",
        "arch",
        "window",
        "region",
        "regions",
        "space",
        "base",
        "bases",
        "segment",
        "segments",
        "zone",
        "zones",
        "hilum",
        "hila",
        "station",
        "stations",
        "ventricle",
        "ventricles",
        "atrium",
        "atria",
        "vein",
        "veins",
        "cava",
        "trunk",
        "hemithorax",
        "hemithoraces",
        "sinus",
        "sinuses",
        "fissure",
        "apex",
        "apices",
        "lingula",
        "angle",
        "angles",
        "recess",
        "wall",
        "chambers",
        "chamber",
        "area",
        "areas",
        "bronchus",
        "bronchi",
        "trachea",
        "esophagus",
        "stomach",
    ]
)

SECTIONS = ("airways", "mediastinum", "nodes", "esophagus", "lungs", "bones")
_SECTION_OF = {
    "Medical material": "mediastinum",
    "Arterial wall calcification": "mediastinum",
    "Cardiomegaly": "mediastinum",
    "Pericardial effusion": "mediastinum",
    "Coronary artery wall calcification": "mediastinum",
    "Hiatal hernia": "esophagus",
    "Lymphadenopathy": "nodes",
}
_LUNG_LABELS = tuple(label for label in CT_RATE_LABELS if label not in _SECTION_OF)
_PARENCHYMA = tuple(label for label in _LUNG_LABELS if label not in ("Lung nodule", "Pleural effusion"))


# ----------------------------------------------------------------------------------------------------------------
# small helpers


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _low(text: str) -> str:
    return text[:1].lower() + text[1:]


def _article(phrase: str) -> str:
    """'a' or 'an' for a phrase, numbers read aloud ('an 8 mm', 'an 11 mm', 'a 1.2 cm')."""
    word = phrase.split()[0].lower() if phrase.split() else ""
    number = re.match(r"\d+", word)
    if number:
        whole = number.group()
        return "an" if whole.startswith("8") or whole in ("11", "18") else "a"
    if word.startswith(("one", "uni", "use", "eu")):
        return "a"
    return "an" if word[:1] in "aeiou" else "a"


def _with_article(phrase: str) -> str:
    return f"{_article(phrase)} {phrase}"


def _plural(noun: str) -> str:
    if noun.endswith("s") and not noun.endswith(("ss", "us", "is")):
        return noun
    if noun.endswith(("ss", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _is_plural_phrase(phrase: str) -> bool:
    words = phrase.removesuffix(" bilaterally").removesuffix(" on both sides").split()
    last = words[-1] if words else ""
    return phrase.startswith("both ") or (last.endswith("s") and not last.endswith(("ss", "us", "is")))


def _count_text(n: int, rng: np.random.Generator) -> str:
    if 0 <= n < len(_NUMBER_WORDS) and rng.random() < 0.5:
        return _NUMBER_WORDS[n]
    return str(n)


def _size_text(mm: float, rng: np.random.Generator, adjectival: bool = False) -> str:
    """A length in varied formats: '6 mm', '6 millimeters', '6.2 mm', '0.6 cm', '1.5 centimeters'."""
    whole, one_decimal, cm = f"{mm:.0f}", f"{mm:.1f}", f"{mm / 10:.1f}"
    if adjectival:
        options = [f"{whole} mm", f"{whole}-mm", f"{whole}-millimeter", f"{one_decimal} mm"]
        if mm >= 5:
            options.append(f"{cm} cm")
        if mm >= 10:
            options += [f"{cm} cm", f"{cm}-centimeter"]
        return _pick(rng, options)
    options = [f"{whole} mm", f"{whole} millimeters", f"{one_decimal} mm", f"approximately {whole} mm"]
    if mm >= 5:
        options.append(f"{cm} cm")
    if mm >= 10:
        options += [f"{cm} cm", f"{cm} centimeters", f"about {cm} cm"]
    return _pick(rng, options)


def _sev_adj(severity: str | None, rng: np.random.Generator) -> str:
    if severity is None:
        return ""
    return _pick(rng, _SEV_ADJ.get(severity, (severity,)))


def _sev_adv(severity: str | None, rng: np.random.Generator) -> str | None:
    """An adverb for the severity, '' when there is none, None when the severity has no adverb form."""
    if severity is None:
        return ""
    options = _SEV_ADV.get(severity)
    return _pick(rng, options) if options else None


def _join_words(*words: str) -> str:
    return " ".join(w for w in words if w)


def _has_side(location: str) -> bool:
    return bool(set(location.lower().replace("-", " ").split()) & {"right", "left", "bilateral", "both"})


def _site(f: Finding, rng: np.random.Generator, default_noun: str = "lung", head: Sequence[str] = ("region",)) -> str:
    """Noun phrase for where a finding is ('the right upper lobe', 'both lungs', 'the subcarinal region'), or ''."""
    location, side = f.location, f.side
    if location:
        location = re.sub(r"^the\s+", "", location.strip(), flags=re.I)
    if not location:
        if side in ("right", "left"):
            return f"the {side} {default_noun}"
        if side == "bilateral":
            return f"both {_plural(default_noun)}"
        if side:
            return f"the {side} side"
        return ""
    noun = location.split()[-1].lower() in _NOUN_HEADS
    if " and " in location or "," in location:  # "right paratracheal and subcarinal" → "... regions"
        head = _plural_heads(head)
    named = set(location.lower().replace("-", " ").split()) & {"right", "left"}
    if side == "bilateral" and len(named) == 1:  # bilateral, the location naming where it is most marked
        where = f"the {location}" if noun else f"the {location} {_pick(rng, head)}"
        return f"both {_plural(default_noun)} ({_pick(rng, ('predominantly', 'most marked in', 'mainly'))} {where})"
    if side is None or _has_side(location):
        return f"the {location}" if noun else f"the {location} {_pick(rng, head)}"
    if side in ("right", "left"):
        return f"the {side} {location}" if noun else f"the {side} {location} {_pick(rng, head)}"
    if side == "bilateral":
        if noun:
            many = _plural(location)
            if not many.startswith(location):  # keep the location's own words ("artery", not "arteries")
                return _pick(rng, (f"the {location} bilaterally", f"the {location} on both sides"))
            return _pick(rng, (f"both {many}", f"the {many} bilaterally", f"the {many} on both sides"))
        return f"the bilateral {location} {_pick(rng, _plural_heads(head))}"
    return f"the {location} ({side})"


def _plural_heads(head: Sequence[str]) -> tuple[str, ...]:
    return tuple(_plural(h) for h in head)


def _in(site: str) -> str:
    return f" in {site}" if site else ""


def _extras(parts: list[str]) -> str:
    return ", " + ", ".join(parts) if parts else ""


def _finish(sentence: str, extras: list[str]) -> str:
    """Append unrendered details before the final period and tidy spaces."""
    sentence = re.sub(r"\s+", " ", sentence).strip()
    sentence = sentence.replace(" ,", ",")
    sentence = re.sub(r",\s*([.,])", r"\1", sentence)
    if extras:
        sentence = sentence.rstrip(".") + _extras(extras) + "."
    return _cap(sentence)


# ----------------------------------------------------------------------------------------------------------------
# noun phrases

# (singular, plural) for countable nouns; (mass noun, None) for uncountable ones.
_NOUNS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "Emphysema": (
        ("emphysema", None),
        ("emphysematous change", "emphysematous changes"),
        ("emphysematous area", "emphysematous areas"),
    ),
    "Atelectasis": (
        ("atelectasis", None),
        ("atelectatic change", "atelectatic changes"),
        ("atelectatic band", "atelectatic bands"),
        ("atelectatic area", "atelectatic areas"),
    ),
    "Lung opacity": (
        ("opacity", "opacities"),
        ("density increase", "density increases"),
        ("parenchymal opacity", "parenchymal opacities"),
        ("area of increased density", "areas of increased density"),
    ),
    "Pulmonary fibrotic sequela": (
        ("fibrotic sequela", "fibrotic sequelae"),
        ("fibrotic change", "fibrotic changes"),
        ("fibrotic band", "fibrotic bands"),
        ("parenchymal scarring", None),
        ("fibrosis", None),
    ),
    "Mosaic attenuation pattern": (
        ("mosaic attenuation pattern", "mosaic attenuation patterns"),
        ("mosaic attenuation", None),
        ("mosaic perfusion pattern", "mosaic perfusion patterns"),
        ("mosaic pattern of attenuation", None),
    ),
    "Peribronchial thickening": (
        ("peribronchial thickening", None),
        ("peribronchial wall thickening", None),
        ("bronchial wall thickening", None),
        ("peribronchial cuffing", None),
    ),
    "Consolidation": (
        ("consolidation", None),
        ("consolidated area", "consolidated areas"),
        ("area of consolidation", "areas of consolidation"),
        ("airspace consolidation", None),
    ),
    "Bronchiectasis": (
        ("bronchiectasis", None),
        ("bronchiectatic change", "bronchiectatic changes"),
        ("dilated bronchus", "dilated bronchi"),
        ("bronchial dilatation", None),
    ),
    "Interlobular septal thickening": (
        ("interlobular septal thickening", None),
        ("thickening of the interlobular septa", None),
        ("thickened interlobular septum", "thickened interlobular septa"),
        ("septal thickening", None),
    ),
    "Lung nodule": (
        ("nodule", "nodules"),
        ("pulmonary nodule", "pulmonary nodules"),
        ("parenchymal nodule", "parenchymal nodules"),
        ("nodular lesion", "nodular lesions"),
    ),
    "Hiatal hernia": (("hiatal hernia", "hiatal hernias"), ("hiatus hernia", "hiatus hernias")),
    "Arterial wall calcification": (
        ("calcific atheroma plaque", "calcific atheroma plaques"),
        ("atherosclerotic calcification", "atherosclerotic calcifications"),
        ("calcified atherosclerotic plaque", "calcified atherosclerotic plaques"),
        ("arterial wall calcification", None),
        ("mural calcification", None),
    ),
    "Coronary artery wall calcification": (
        ("coronary artery calcification", None),
        ("calcified coronary plaque", "calcified coronary plaques"),
        ("coronary calcification", "coronary calcifications"),
        ("calcific coronary atheroma", None),
        ("coronary artery wall calcification", None),
    ),
}


def _noun_phrase(
    f: Finding,
    rng: np.random.Generator,
    nouns: Sequence[tuple[str, str | None]],
    size_adj: str = "",
    plural_ok: bool = True,
) -> tuple[str, bool]:
    """'[count] [severity] [size] [kind] noun' with its article; returns (phrase, plural)."""
    sing, plur = _pick(rng, nouns)
    kind = f.kind or ""
    suffix_sev = f.severity is not None and rng.random() < 0.2
    sev = "" if suffix_sev else _sev_adj(f.severity, rng)
    count = f.count
    if plur is None:  # mass noun
        head = _join_words(sev, size_adj, kind, sing)
        if count is not None and count > 1:
            phrase, plural = f"{_count_text(count, rng)} {_pick(rng, ('foci', 'areas'))} of {head}", True
        elif count == 1:
            phrase, plural = f"{_pick(rng, ('a single focus', 'one area', 'a focus'))} of {head}", False
        else:
            phrase, plural = head, False
    elif count is not None and count > 1:
        phrase, plural = _join_words(_count_text(count, rng), sev, size_adj, kind, plur), True
    elif count == 1 or (count is None and (not plural_ok or rng.random() < 0.5)):
        body = _join_words(sev, size_adj, kind, sing)
        lead = _pick(rng, ("single", "solitary")) if count == 1 and rng.random() < 0.4 else ""
        phrase, plural = (
            (_with_article(_join_words(lead, body)) if count != 1 or rng.random() < 0.7 else f"one {body}"),
            False,
        )
    else:
        phrase, plural = _join_words(sev, size_adj, kind, plur), True
    if suffix_sev:
        phrase += f" of {_sev_adj(f.severity, rng)} {_pick(rng, ('degree', 'severity', 'extent'))}"
    return phrase, plural


def _be(plural: bool) -> str:
    return "are" if plural else "is"


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


_ARTERY_ANCHOR = re.compile(r"aort|arter|vessel|vascular", re.I)


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


_MATERIAL_ANCHOR = re.compile(
    r"\bmaterial\b|medical device|implant|hardware|pacemaker|catheter|sternotomy|\bports?\b|\bstents?\b|"
    r"\bwires?\b|\bleads?\b|\btubes?\b|prosthe|\bclips?\b|\bdevices?\b",
    re.I,
)


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


# ----------------------------------------------------------------------------------------------------------------
# negatives and normal anatomy

_NEGATIVES: dict[str, tuple[str, ...]] = {
    "Medical material": (
        "No medical device or foreign material was seen in the thorax.",
        "There is no implanted medical hardware.",
        "No catheter, pacemaker or other medical material is present.",
        "No foreign medical material was detected.",
    ),
    "Arterial wall calcification": (
        "No calcific atheroma was seen in the thoracic aorta.",
        "No atherosclerotic calcification was detected in the aortic wall.",
        "The aortic wall shows no calcified plaque.",
        "There is no arterial wall calcification.",
    ),
    "Cardiomegaly": (
        "Heart size is normal.",
        "The heart is of normal size.",
        "No cardiomegaly.",
        "Heart contour and size are within normal limits.",
        "Cardiac dimensions are normal.",
        "There is no cardiomegaly.",
    ),
    "Pericardial effusion": (
        "No pericardial effusion.",
        "Pericardial effusion or thickening was not observed.",
        "There is no pericardial fluid.",
        "No pericardial effusion was detected.",
    ),
    "Coronary artery wall calcification": (
        "No coronary artery calcification was detected.",
        "The coronary arteries show no calcified plaque.",
        "There is no coronary calcification.",
    ),
    "Hiatal hernia": (
        "No hiatal hernia.",
        "There is no hiatus hernia.",
        "No hiatal hernia was detected.",
        "The esophageal hiatus is normal, without herniation.",
    ),
    "Lymphadenopathy": (
        "No mediastinal or hilar lymphadenopathy.",
        "No lymph node of pathological size or configuration was detected in the mediastinum or hilar regions.",
        "No enlarged lymph nodes were seen.",
        "A few millimetric lymph nodes are seen in the mediastinum, not reaching pathological size.",
        "Mediastinal and hilar lymph nodes are within normal limits in size.",
        "There is no lymphadenopathy in the mediastinal, hilar or axillary regions.",
    ),
    "Emphysema": (
        "No emphysema.",
        "There are no emphysematous changes.",
        "No emphysema was detected in either lung.",
    ),
    "Atelectasis": (
        "No atelectasis.",
        "There is no atelectasis.",
        "No atelectatic change was seen.",
    ),
    "Lung nodule": (
        "No nodule was seen in either lung.",
        "No mass or nodule was detected in the lung parenchyma.",
        "There are no pulmonary nodules.",
        "No nodular lesion was identified in either lung.",
        "No mass lesion with distinct borders was detected in either lung.",
    ),
    "Lung opacity": (
        "No ground-glass opacity.",
        "No pathological density increase was detected in the lung parenchyma.",
        "There are no parenchymal opacities.",
    ),
    "Pulmonary fibrotic sequela": (
        "No fibrotic sequelae.",
        "There are no fibrotic changes in the lung parenchyma.",
        "No parenchymal scarring was seen.",
    ),
    "Pleural effusion": (
        "No pleural effusion was detected.",
        "No pleural effusion.",
        "There is no pleural fluid.",
        "Pleural effusion was not observed on either side.",
    ),
    "Mosaic attenuation pattern": (
        "No mosaic attenuation pattern.",
        "There is no mosaic attenuation.",
        "No mosaic pattern was observed in the lung parenchyma.",
    ),
    "Peribronchial thickening": (
        "No peribronchial thickening.",
        "There is no bronchial wall thickening.",
        "No peribronchial thickening was detected.",
    ),
    "Consolidation": (
        "No consolidation.",
        "There is no consolidation in either lung.",
        "No area of consolidation was observed.",
    ),
    "Bronchiectasis": (
        "No bronchiectasis.",
        "There is no bronchiectasis.",
        "No bronchial dilatation was observed.",
    ),
    "Interlobular septal thickening": (
        "No interlobular septal thickening.",
        "The interlobular septa are not thickened.",
        "There is no septal thickening.",
    ),
}
_NEGATIVE_SECTION = {label: _SECTION_OF.get(label, "lungs") for label in CT_RATE_LABELS}

# Negatives covering two labels at once, used when both are absent and both were chosen for negation.
_COMBINED_NEGATIVES: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = (
    (
        ("Cardiomegaly", "Pericardial effusion"),
        "mediastinum",
        (
            "Heart size is normal and there is no pericardial effusion.",
            "Heart contour and size are normal; no pericardial effusion or thickening was observed.",
            "The heart is of normal size, and there is no pericardial effusion.",
        ),
    ),
    (
        ("Arterial wall calcification", "Coronary artery wall calcification"),
        "mediastinum",
        (
            "No atherosclerotic calcification is seen in the aorta or coronary arteries.",
            "Neither the aorta nor the coronary arteries show calcified plaques.",
        ),
    ),
    (
        ("Pleural effusion", "Pericardial effusion"),
        "lungs",
        ("No pleural or pericardial effusion was detected.", "There is no pleural or pericardial effusion."),
    ),
    (
        ("Lung opacity", "Consolidation"),
        "lungs",
        (
            "No ground-glass opacity or consolidation.",
            "No consolidation or ground-glass opacity was seen in either lung.",
        ),
    ),
    (("Atelectasis", "Consolidation"), "lungs", ("No atelectasis or consolidation.",)),
    (("Bronchiectasis", "Peribronchial thickening"), "lungs", ("No bronchiectasis or peribronchial thickening.",)),
)

# (section, labels that must be absent, variants) — normal-anatomy sentences.
_FILLERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "airways",
        (),
        (
            "Trachea and both main bronchi are in the midline, and their lumens are open.",
            "The trachea and main bronchi are patent.",
            "Trachea and lumen of both main bronchi are open.",
            "The tracheal and main bronchial lumens are clear.",
        ),
    ),
    (
        "airways",
        (),
        (
            "No obstructive pathology was detected in the trachea or the main bronchi.",
            "The central airways are patent.",
            "No endoluminal lesion is seen in the trachea.",
        ),
    ),
    (
        "mediastinum",
        (),
        (
            "Calibration of the thoracic main vascular structures is natural.",
            "The thoracic aorta is of normal caliber.",
            "The main pulmonary artery is of normal diameter.",
        ),
    ),
    (
        "mediastinum",
        ("Cardiomegaly", "Pericardial effusion", "Lymphadenopathy"),
        ("Mediastinal structures were evaluated as normal.", "The mediastinum is unremarkable."),
    ),
    (
        "mediastinum",
        (),
        ("The thyroid gland is unremarkable in the sections included.", "Mediastinal fat planes are preserved."),
    ),
    ("nodes", ("Lymphadenopathy",), ("Axillary regions are unremarkable.", "No axillary lymphadenopathy is seen.")),
    (
        "esophagus",
        (),
        (
            "Thoracic esophagus calibration was normal, and no significant tumoral wall thickening was detected.",
            "The esophagus is unremarkable in its thoracic course.",
            "The esophageal wall thickness is within normal limits.",
        ),
    ),
    ("lungs", (), ("No pneumothorax was detected.", "There is no pneumothorax.", "No pneumothorax.")),
    ("lungs", _PARENCHYMA, ("Both lungs are normally aerated.", "The lung parenchyma is normally aerated.")),
    ("lungs", (), ("The pulmonary vasculature is unremarkable.", "Pulmonary vascular markings are unremarkable.")),
    ("lungs", ("Pleural effusion",), ("The pleural surfaces are smooth.", "Pleural surfaces are unremarkable.")),
    (
        "bones",
        (),
        (
            "No lytic or destructive lesion was detected in the bone structures within the imaging area.",
            "Bone structures in the imaging area are natural.",
            "Degenerative changes are seen in the thoracic spine.",
            "Thoracic vertebrae show age-related degenerative osteophytes.",
        ),
    ),
    (
        "bones",
        (),
        (
            "Upper abdominal organs included in the sections are unremarkable.",
            "Limited sections of the upper abdomen are unremarkable.",
            "The liver and spleen are of normal size in the included sections.",
            "Both adrenal glands are normal.",
            "No free fluid is seen in the upper abdomen.",
        ),
    ),
)


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


_NORMAL_IMPRESSIONS = (
    "No acute pathology.",
    "Normal chest CT.",
    "No significant abnormality was detected in the thorax.",
    "Unremarkable non-contrast chest CT.",
    "No acute cardiopulmonary findings.",
    "Non-contrast chest CT within normal limits.",
)


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
