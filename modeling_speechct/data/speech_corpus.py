"""Sentences to pretrain the speech tower with CTC: a broad English pool plus radiology, in the exact form spoken.

A CTC target must be what the audio says. So every sentence is first put in its *spoken form* (units and numbers
written out as words, which is also what the TTS engine receives), and the transcript is that form reduced to
CTC's alphabet: lower-case letters, apostrophe and the word delimiter.
"""

from __future__ import annotations

import re

import numpy as np

from .tts_engines import speakable

# Wav2Vec2CTCTokenizer's conventions: index 0 is the CTC blank (its pad token), "|" delimits words.
CTC_VOCAB: tuple[str, ...] = ("<pad>", "<unk>", "|", "'", *"abcdefghijklmnopqrstuvwxyz")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NOT_ALPHABET = re.compile(r"[^a-z' ]+")
# Abbreviations an engine expands in its own way ("Mrs" → "missus"): sentences holding them are left out.
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Jr|Sr|Inc|Ltd|PhD|MD|DDS|DVM|LLC|PLC)\b")


def spoken_form(text: str) -> str:
    """Units and numbers as words ("6.5 mm" → "six point five millimeters"): the text the engine is asked to say."""
    from num2words import num2words

    text = _NUMBER.sub(
        lambda m: f" {num2words(float(m.group()) if '.' in m.group() else int(m.group()))} ", speakable(text)
    )
    return " ".join(text.split())


def transcript(text: str) -> str:
    """The CTC target of a spoken-form text: lower case, letters and apostrophes, single spaces."""
    text = _NOT_ALPHABET.sub(" ", text.lower().replace("-", " "))
    return " ".join(text.split())


def general_sentences(count: int, seed: int) -> list[str]:
    """Everyday English from Faker's en_US providers: word-list sentences, occupations, catch phrases, places."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    makers = (
        lambda: fake.sentence(nb_words=int(fake.random_int(5, 12))),
        lambda: f"{fake.first_name()} works as {fake.job().split(',')[0].lower()} in {fake.city()}.",
        lambda: fake.catch_phrase() + ".",
        lambda: f"The meeting with {fake.name()} is on {fake.day_of_week()} at {fake.random_int(1, 12)} o'clock.",
        lambda: fake.paragraph(nb_sentences=1),
    )
    return [makers[i % len(makers)]() for i in range(count)]


def radiology_sentences(count: int, seed: int, shape: tuple[int, int, int] = (16, 32, 32)) -> list[str]:
    """Sentences of CT-RATE-style reports for random findings (the phantom at a tiny shape only draws findings)."""
    from .phantom import generate_case
    from .reports import write_report

    sentences: list[str] = []
    case_index = 0
    while len(sentences) < count:
        rng = np.random.default_rng([seed, case_index])
        findings_text, impressions = write_report(generate_case(rng, shape=shape).findings, rng)
        sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", f"{findings_text} {impressions}") if s)
        case_index += 1
    return sentences[:count]


def sentence_pool(count: int, seed: int, radiology_share: float = 0.5, max_chars: int = 140) -> list[tuple[str, str]]:
    """`count` distinct `(spoken-form sentence, source)` pairs, source "radiology" or "general", at most `max_chars`
    long (clips stay short), shuffled."""
    n_radiology = round(count * radiology_share)
    seen: set[str] = set()
    pool: list[tuple[str, str]] = []
    sources = (("radiology", radiology_sentences, n_radiology), ("general", general_sentences, count - n_radiology))
    for offset, (name, source, n) in enumerate(sources):
        attempt = 0
        taken = 0
        while taken < n:
            for sentence in source(2 * (n - taken) + 8, seed * 1000 + offset * 100 + attempt):
                if _ABBREVIATION.search(sentence):
                    continue
                spoken = spoken_form(sentence)
                key = transcript(spoken)
                if key and key not in seen and len(spoken) <= max_chars and taken < n:
                    seen.add(key)
                    pool.append((spoken, name))
                    taken += 1
            attempt += 1
            if attempt > 50:
                raise ValueError(f"{source.__name__} cannot supply {n} distinct sentences of ≤ {max_chars} chars.")
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order]
