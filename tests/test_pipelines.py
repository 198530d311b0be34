"""The zero-shot-ct-classification and ct-retrieval pipelines give exactly the model's own scores."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_folder import tiny_model, tiny_processor, wave
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from volumes import SPACING, canonical_volume

from modeling_speechct import CTRetrievalPipeline, ZeroShotCTClassificationPipeline
from modeling_speechct.ct_io import write_nifti
from modeling_speechct.labels import CT_RATE_LABELS
from modeling_speechct.zero_shot import pair_probabilities, prompt_pairs, text_prompt_embeddings

ATOL = 1e-5


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    return tiny_model(), tiny_processor()


@pytest.fixture
def volume_path(tmp_path):
    return write_nifti(canonical_volume(seed=3), SPACING, tmp_path / "scan.nii.gz", "LPS")


def ct_embedding(model, processor, volume, **ct_kwargs):
    with torch.no_grad():
        values = processor(ct=volume, ct_kwargs=ct_kwargs)["ct_values"]
        return model.get_ct_features(values).pooler_output


def speech_embedding(model, processor, audio, rate=None):
    with torch.no_grad():
        batch = processor(audio=audio, sampling_rate=rate)
        return model.get_speech_features(batch["speech_values"], batch["speech_attention_mask"]).pooler_output


def text_embedding(model, processor, text):
    with torch.no_grad():
        return model.get_text_features(**processor(text=[text])).pooler_output


def as_dict(output):
    return {item["label"]: item["score"] for item in output}


def test_both_tasks_are_registered_and_built_by_pipeline(parts):
    model, processor = parts
    assert {"zero-shot-ct-classification", "ct-retrieval"} <= set(PIPELINE_REGISTRY.get_supported_tasks())
    classify = pipeline("zero-shot-ct-classification", model=model, processor=processor)
    retrieve = pipeline("ct-retrieval", model=model, processor=processor)
    assert isinstance(classify, ZeroShotCTClassificationPipeline) and isinstance(retrieve, CTRetrievalPipeline)


def test_zero_shot_with_written_prompts_equals_the_model(parts, volume_path):
    model, processor = parts
    classify = pipeline("zero-shot-ct-classification", model=model, processor=processor)
    ct = ct_embedding(model, processor, str(volume_path))
    positive, negative = text_prompt_embeddings(model, processor, prompt_pairs(CT_RATE_LABELS))
    expected = pair_probabilities(ct, positive, negative, model.logit_scale.exp().item())[0].tolist()

    out = classify(str(volume_path))
    assert [item["label"] for item in out] == sorted(CT_RATE_LABELS, key=lambda lab: -as_dict(out)[lab])
    assert len({round(s, 7) for s in as_dict(out).values()}) > 1  # the labels' prompts really differ
    for label, score in zip(CT_RATE_LABELS, expected, strict=True):
        assert abs(as_dict(out)[label] - score) <= ATOL, label
    assert [item["score"] for item in out] == sorted((item["score"] for item in out), reverse=True)
    assert classify(str(volume_path), top_k=3) == out[:3]

    # An array in HU with its spacing, own labels and templates; a list of inputs gives one result each.
    labels, templates = ["Emphysema", "Cardiomegaly", "Lung nodule"], ("{label} seen.", "no {label}.")
    volume = canonical_volume(seed=4)
    ct = ct_embedding(model, processor, volume, spacing=SPACING)
    positive, negative = text_prompt_embeddings(model, processor, prompt_pairs(labels, templates))
    expected = pair_probabilities(ct, positive, negative, model.logit_scale.exp().item())[0].tolist()
    both = classify(
        [volume, {"ct": volume, "spacing": SPACING}], spacing=SPACING, candidate_labels=labels, templates=templates
    )
    assert len(both) == 2 and both[0] == both[1]
    for label, score in zip(labels, expected, strict=True):
        assert abs(as_dict(both[0])[label] - score) <= ATOL, label


def test_zero_shot_with_spoken_prompts_equals_the_model(parts, volume_path):
    model, processor = parts
    classify = pipeline("zero-shot-ct-classification", model=model, processor=processor)
    labels = ["Pleural effusion", "Atelectasis", "Emphysema"]
    # Two renditions per side; one given at 22.05 kHz as a dict (resampled by the processor), the rest at 16 kHz.
    prompt_audio = {
        label: (
            [wave(4 * i), {"array": wave(4 * i + 1, rate=22050), "sampling_rate": 22050}],
            [wave(4 * i + 2, seconds=0.12), wave(4 * i + 3, seconds=0.08)],
        )
        for i, label in enumerate(labels)
    }

    def prompt(recordings):
        embeds = [
            speech_embedding(model, processor, r["array"], r["sampling_rate"])
            if isinstance(r, dict)
            else speech_embedding(model, processor, r, 16000)
            for r in recordings
        ]
        return F.normalize(torch.cat(embeds), dim=-1).mean(dim=0)

    positive = torch.stack([prompt(prompt_audio[label][0]) for label in labels])
    negative = torch.stack([prompt(prompt_audio[label][1]) for label in labels])
    ct = ct_embedding(model, processor, str(volume_path))
    expected = pair_probabilities(ct, positive, negative, model.speech_logit_scale.exp().item())[0].tolist()

    out = classify(str(volume_path), prompt_audio=prompt_audio, sampling_rate=16000)
    assert [item["label"] for item in out] == sorted(labels, key=lambda lab: -as_dict(out)[lab])
    for label, score in zip(labels, expected, strict=True):
        assert abs(as_dict(out)[label] - score) <= ATOL, label
    # The spoken prompts' embeddings are computed once and reused for the next volume.
    again = classify(str(volume_path), prompt_audio=prompt_audio, sampling_rate=16000, candidate_labels=labels[:2])
    assert {item["label"] for item in again} == set(labels[:2])
    assert all(abs(as_dict(again)[lab] - as_dict(out)[lab]) <= 1e-7 for lab in labels[:2])


def test_retrieval_scores_are_the_models_cosines(parts, volume_path):
    model, processor = parts
    retrieve = pipeline("ct-retrieval", model=model, processor=processor)
    gallery = [str(volume_path), {"ct": canonical_volume(seed=5), "spacing": SPACING}, canonical_volume(seed=6)]
    ct = F.normalize(
        torch.cat(
            [
                ct_embedding(model, processor, str(volume_path)),
                ct_embedding(model, processor, canonical_volume(seed=5), spacing=SPACING),
                ct_embedding(model, processor, canonical_volume(seed=6), spacing=SPACING),
            ]
        ),
        dim=-1,
    )

    # A spoken report (waveform + rate) ranks the volumes.
    speech = F.normalize(speech_embedding(model, processor, wave(9, seconds=0.15), 16000), dim=-1)
    expected = (speech @ ct.T)[0].tolist()
    out = retrieve(wave(9, seconds=0.15), gallery=gallery, sampling_rate=16000, spacing=SPACING)
    assert [item["index"] for item in out] == sorted(range(3), key=lambda j: -expected[j])
    for item in out:
        assert abs(item["score"] - expected[item["index"]]) <= ATOL
    assert out[[item["index"] for item in out].index(0)]["id"] == str(volume_path)

    # The same with a gallery embedded once, named, and cut to the top 2.
    embedded = retrieve.embed(gallery, spacing=SPACING)
    torch.testing.assert_close(embedded, ct, rtol=0, atol=ATOL)
    top = retrieve(
        {"array": wave(9, seconds=0.15), "sampling_rate": 16000}, gallery=embedded, gallery_ids=["a", "b", "c"], top_k=2
    )
    assert [item["id"] for item in top] == [["a", "b", "c"][item["index"]] for item in out[:2]]
    assert [item["score"] for item in top] == pytest.approx([item["score"] for item in out[:2]], abs=ATOL)

    # A written report ranks the volumes; a volume ranks written reports (the reverse direction).
    text = F.normalize(text_embedding(model, processor, "Pleural effusion is present."), dim=-1)
    out = retrieve("Pleural effusion is present.", gallery=embedded)
    for item in out:
        assert abs(item["score"] - (text @ ct.T)[0, item["index"]].item()) <= ATOL
    reports = ["Pleural effusion is present.", "No emphysema.", "Cardiomegaly is not present."]
    written = F.normalize(torch.cat([text_embedding(model, processor, r) for r in reports]), dim=-1)
    out = retrieve(str(volume_path), gallery=reports)
    for item in out:
        assert abs(item["score"] - (ct[0] @ written[item["index"]]).item()) <= ATOL


def test_wrong_inputs_are_named(parts, volume_path):
    model, processor = parts
    classify = pipeline("zero-shot-ct-classification", model=model, processor=processor)
    retrieve = pipeline("ct-retrieval", model=model, processor=processor)
    with pytest.raises(ValueError, match="classifies CT volumes"):
        classify(wave(0), sampling_rate=16000)
    with pytest.raises(ValueError, match="no recordings for"):
        classify(str(volume_path), prompt_audio={"Emphysema": (wave(0), wave(1))}, candidate_labels=["Atelectasis"])
    with pytest.raises(ValueError, match="same number of renditions"):
        classify(str(volume_path), prompt_audio={"Emphysema": ([wave(0), wave(1)], wave(2))}, sampling_rate=16000)
    with pytest.raises(ValueError, match="needs a gallery of reports"):
        retrieve(str(volume_path), gallery=[str(volume_path)])
    with pytest.raises(ValueError, match="mixes modalities"):
        retrieve(str(volume_path), gallery=["No effusion.", {"array": wave(0), "sampling_rate": 16000}])
    with pytest.raises(ValueError, match="gallery="):
        retrieve("No effusion.")
    with pytest.raises(ValueError, match="dim"):
        retrieve("No effusion.", gallery=np.zeros((2, 3), dtype=np.float32))
