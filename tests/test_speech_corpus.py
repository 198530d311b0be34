"""The pretraining corpus: spoken forms, CTC transcripts in the alphabet, distinct, seeded, mixed sources."""

import re

from modeling_speechct.data.speech_corpus import CTC_VOCAB, sentence_pool, spoken_form, transcript


def test_numbers_and_units_are_spoken_as_words():
    assert spoken_form("A 6.5 mm nodule and 3 nodes of 12 mm.") == (
        "A six point five millimeter nodule and three nodes of twelve millimeters."
    )
    assert transcript("Twenty-one O'Neill's nodes; 4/5 — left.") == "twenty one o'neill's nodes left"


def test_pool_is_distinct_seeded_short_and_in_the_alphabet():
    pool = sentence_pool(300, seed=5, radiology_share=0.4, max_chars=120)
    texts = [text for text, _ in pool]
    assert len(pool) == 300 and len({transcript(t) for t in texts}) == 300
    assert pool == sentence_pool(300, seed=5, radiology_share=0.4, max_chars=120)
    assert pool != sentence_pool(300, seed=6, radiology_share=0.4, max_chars=120)
    assert sum(source == "radiology" for _, source in pool) == 120
    alphabet = set(CTC_VOCAB[3:]) | {" "}
    for text in texts:
        assert len(text) <= 120 and not re.search(r"\d", text)
        assert set(transcript(text)) <= alphabet
        assert not re.search(r"\bMrs?\b", text)
    # Sources are shuffled together, not in two blocks.
    assert {source for _, source in pool[:30]} == {"radiology", "general"}
