"""Phrase-level grammar of the reports: the small pieces every sentence writer composes.

Random choice (`_pick`), capitalisation, articles and plurals, counts and lengths in varied formats, severity
adjectives and adverbs, the noun phrase for where a finding is (`_site`) and for the finding itself (`_noun_phrase`),
and `_finish`, which tidies a sentence and appends the details its template did not render. Each draws from the
caller's `numpy.random.Generator` in a fixed order, so the same generator state gives the same words; the word
lists come from `report_vocabulary`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..labels import Finding
from .report_vocabulary import _NOUN_HEADS, _NUMBER_WORDS, _SEV_ADJ, _SEV_ADV

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
