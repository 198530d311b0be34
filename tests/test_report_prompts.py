"""Zero-shot prompts mined from the reports' own sentences, and prompt ensembles written or spoken."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_reports import random_findings
from tiny_folder import tiny_model, tiny_processor, wave

from modeling_speechct.data.report_prompts import report_sentence_prompts, report_sentences
from modeling_speechct.data.reports import describes, negates, write_report
from modeling_speechct.data.spoken_prompts import synthesize_prompts
from modeling_speechct.evaluation.split import prompt_embeddings
from modeling_speechct.labels import CT_RATE_LABELS
from modeling_speechct.zero_shot import speech_prompt_embeddings, text_prompt_embeddings


@pytest.fixture(scope="module")
def reports() -> list[str]:
    rng = np.random.default_rng(7)
    return [write_report(random_findings(rng), np.random.default_rng(i))[0] for i in range(300)]


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    return tiny_model().eval(), tiny_processor()


def test_positive_sentences_state_the_label_alone_and_negatives_rule_it_out(reports):
    prompts = report_sentence_prompts(reports, per_side=5, seed=1)
    corpus = set(report_sentences(reports))
    assert len(prompts) == len(CT_RATE_LABELS)
    mined = 0
    for label, (positive, negative) in zip(CT_RATE_LABELS, prompts, strict=True):
        assert 1 <= len(positive) <= 5 and 1 <= len(negative) <= 5
        for sentence in positive:
            if sentence == f"{label} is present.":  # the fallback: the reports never state this label alone
                continue
            mined += 1
            assert sentence in corpus and describes(sentence) == {label} and not negates(sentence), sentence
        for sentence in negative:
            assert sentence in corpus, sentence  # every label is ruled out somewhere in 300 reports
            assert label in negates(sentence) and not describes(sentence), sentence
        assert len(set(positive)) == len(positive) and len(set(negative)) == len(negative)
    assert mined > 5 * 10  # most labels are stated alone in some sentence
    assert report_sentence_prompts(reports, per_side=5, seed=1) == prompts
    assert report_sentence_prompts(reports, per_side=5, seed=2) != prompts


def test_a_label_the_reports_never_mention_falls_back_to_the_template():
    prompts = report_sentence_prompts(["No pleural effusion. Heart size is normal."], ["Emphysema", "Pleural effusion"])
    assert prompts[0] == (["Emphysema is present."], ["Emphysema is not present."])
    assert prompts[1] == (["Pleural effusion is present."], ["No pleural effusion."])
    with pytest.raises(ValueError, match="per_side"):
        report_sentence_prompts([], per_side=0)
    with pytest.raises(ValueError, match="not CT-RATE labels"):
        report_sentence_prompts([], ["Pneumothorax"])


def test_written_ensembles_are_the_mean_of_unit_embeddings(parts):
    model, processor = parts
    normal_heart = ["Heart size is normal.", "No cardiomegaly.", "The heart is of normal size."]
    prompts = [(["Emphysema.", "Centrilobular emphysema in both upper lobes."], "No emphysema."),
               ("Cardiomegaly.", normal_heart)]  # fmt: skip
    positive, negative = text_prompt_embeddings(model, processor, prompts, batch_size=2)  # batches span prompts
    model.double()
    try:
        for side, got in ((0, positive), (1, negative)):
            for i, pair in enumerate(prompts):
                sentences = [pair[side]] if isinstance(pair[side], str) else pair[side]
                units = []
                for text in sentences:
                    batch = processor(text=[text])
                    with torch.no_grad():
                        e = model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output[0]
                    units.append((e / e.norm()).numpy())
                assert np.allclose(got[i].numpy(), np.mean(units, axis=0), atol=1e-6)
    finally:
        model.float()


def test_spoken_prompts_may_hold_different_numbers_of_recordings(parts):
    model, processor = parts
    paths = [[[(wave(0), 16000)], [(wave(1), 16000), (wave(2), 16000), (wave(3), 16000)]],
             [[(wave(4), 16000), (wave(5), 16000)], [(wave(6), 16000)]]]  # fmt: skip
    present, absent = speech_prompt_embeddings(model, processor, paths, batch_size=3)

    def one(audio):
        batch = processor(audio=[audio], sampling_rate=[16000])
        with torch.no_grad():
            e = model.get_speech_features(batch["speech_values"], batch.get("speech_attention_mask")).pooler_output[0]
        return (e / e.norm()).numpy()

    for i, label in enumerate(paths):
        for side, got in ((0, present), (1, absent)):
            expected = np.mean([one(audio) for audio, _ in label[side]], axis=0)
            assert np.allclose(got[i].numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="two non-empty lists"):
        speech_prompt_embeddings(model, processor, [[[(wave(0), 16000)], []]])


def test_an_ensemble_is_spoken_once_per_sentence_and_cached(tmp_path):
    prompts = [(["Emphysema.", "Centrilobular emphysema."], ["No emphysema."]), ("Cardiomegaly.", "No cardiomegaly.")]
    paths = synthesize_prompts(prompts, tmp_path, num_voices=2, backends=("espeak",))
    assert [[len(side) for side in label] for label in paths] == [[2, 1], [2, 2]]
    names = [p.name for label in paths for side in label for p in side]
    assert len(set(names)) == len(names) and names[-1] == "001_absent_1.wav"
    stamps = {p: p.stat().st_mtime_ns for label in paths for side in label for p in side}
    again = synthesize_prompts(prompts, tmp_path, num_voices=2, backends=("espeak",))
    assert again == paths and all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # nothing re-spoken
    other = synthesize_prompts([(["Mild emphysema."], ["No emphysema."])], tmp_path, backends=("espeak",))
    assert other[0][0][0] not in stamps  # another sentence never reads a file of the first ensemble


def test_prompt_embeddings_checks_one_pair_per_label(parts):
    model, processor = parts
    with pytest.raises(ValueError, match="1 pairs for 2 labels"):
        prompt_embeddings(model, processor, "text", ["Emphysema", "Cardiomegaly"], prompts=[("a.", "b.")])
