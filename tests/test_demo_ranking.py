"""The demo's own `DemoBackend.analyse` against an independent float64 re-computation from the model's embeddings:
the findings rows (label order and P(present)), the report ↔ volume line, and the closest-gallery rows (top 5, or
the whole gallery when it holds fewer). The browser test checks the page shows the pipeline's findings; this one
checks that what the demo computes is the model's answer, ranking included."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_folder import save_tiny_folder, wave
from volumes import canonical_volume, write_nifti

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.hub.demo import DemoBackend
from modeling_speechct.labels import CT_RATE_LABELS

ATOL = 1e-4  # the demo rounds its scores to 4 decimals
ORIENTATIONS = ("RAS", "LPS", "LAS", "RPI", "PIR", "ASL", "SRA")


def _unit(x: torch.Tensor) -> np.ndarray:
    x = x.detach().double().numpy()
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _volume(seed: int) -> np.ndarray:
    """Gallery volumes that differ in more than noise (a second block at a seed-dependent place), so their
    similarities to the report are well apart and the ranking is not decided by float rounding."""
    volume = canonical_volume(seed=seed)
    rng = np.random.default_rng(100 + seed)
    z, y, x = (int(rng.integers(0, n - 6)) for n in volume.shape)
    volume[z : z + 4, y : y + 6, x : x + 6] = rng.integers(-900, 1200)
    return volume


class Reference:
    """Embeddings straight from the model (no pipeline): CT by the processor + `get_ct_features`, the report by
    soundfile + the processor + `get_speech_features`, written prompts by `get_text_features`; all in float64."""

    def __init__(self, model: SpeechCTClipModel, processor: SpeechCTClipProcessor):
        self.model, self.processor = model, processor

    @torch.no_grad()
    def ct(self, path: Path) -> np.ndarray:
        values = self.processor(ct=str(path))["ct_values"]
        return _unit(self.model.get_ct_features(values).pooler_output)[0]

    @torch.no_grad()
    def speech(self, path: Path) -> np.ndarray:
        samples, rate = sf.read(path, dtype="float32")
        batch = self.processor(audio=samples, sampling_rate=rate)
        out = self.model.get_speech_features(batch["speech_values"], batch["speech_attention_mask"])
        return _unit(out.pooler_output)[0]

    @torch.no_grad()
    def findings(self, ct_path: Path) -> list[tuple[str, float]]:
        """P(present) per CT-RATE label, CT-CLIP's way: softmax over the scaled cosines to the two prompts."""
        sides = []
        for template in ("{} is present.", "{} is not present."):
            batch = self.processor(text=[template.format(label) for label in CT_RATE_LABELS])
            text = self.model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output
            sides.append(_unit(text) @ self.ct(ct_path) * float(self.model.logit_scale.exp()))
        logits = np.stack(sides, axis=-1)
        probabilities = np.exp(logits[:, 0]) / np.exp(logits).sum(axis=-1)
        order = np.argsort(-probabilities, kind="stable")
        return [(CT_RATE_LABELS[i], float(probabilities[i])) for i in order]

    def ranking(self, audio: Path, gallery: list[Path]) -> list[tuple[str, float]]:
        """Every gallery volume by cosine similarity to the spoken report, closest first."""
        speech = self.speech(audio)
        scores = np.array([self.ct(path) @ speech for path in gallery])
        order = np.argsort(-scores, kind="stable")
        return [(gallery[i].name, float(scores[i])) for i in order]


def _min_gap(scores: list[float]) -> float:
    ordered = sorted(scores)
    return min(b - a for a, b in pairwise(ordered))


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, Reference, list[Path], Path]:
    """A saved tiny model, seven gallery volumes in seven orientations, and a one-second spoken report."""
    root = tmp_path_factory.mktemp("demo_ranking")
    model, processor = save_tiny_folder(root / "model")
    gallery = [write_nifti(_volume(s), root / f"vol_{s}.nii.gz", ORIENTATIONS[s]) for s in range(7)]
    audio = root / "report.wav"
    sf.write(audio, wave(7, seconds=1.0), 16000)
    return root, Reference(model, processor), gallery, audio


def _check_findings(findings: list[list], expected: list[tuple[str, float]]) -> None:
    # The exact order is meaningful only where the scores are further apart than float32 noise.
    assert _min_gap([p for _, p in expected]) > 1e-6
    assert [row[0] for row in findings] == [label for label, _ in expected]
    np.testing.assert_allclose([row[1] for row in findings], [p for _, p in expected], rtol=0, atol=ATOL)


def test_analyse_ranks_a_large_gallery_like_the_model(case):
    root, reference, gallery, audio = case
    backend = DemoBackend(root / "model", prompts="written", gallery=[str(p) for p in gallery])
    # The upload is gallery volume 3 saved in another orientation: the same scan, so the same embedding.
    twin = 3
    upload = write_nifti(_volume(twin), root / "upload.nii.gz", "LIP")
    views, findings, match, closest = backend.analyse(str(upload), str(audio))

    assert views.ndim == 3 and views.shape[-1] == 3
    _check_findings(findings, reference.findings(upload))

    expected = reference.ranking(audio, gallery)
    assert _min_gap([s for _, s in expected]) > 10 * ATOL  # a ranking the rounding cannot reorder
    assert [row[0] for row in closest] == [1, 2, 3, 4, 5]
    assert [row[1] for row in closest] == [name for name, _ in expected[:5]]
    np.testing.assert_allclose([row[2] for row in closest], [s for _, s in expected[:5]], rtol=0, atol=ATOL)

    # The report ↔ upload line is the twin's gallery similarity, and the twin sits where the model ranks it.
    similarity = float(re.fullmatch(r"Cosine similarity of the spoken report to this volume: (-?\d\.\d{3})", match)[1])
    twin_rank = [name for name, _ in expected].index(gallery[twin].name) + 1
    assert similarity == pytest.approx(reference.ct(upload) @ reference.speech(audio), abs=5e-4 + 1e-6)
    assert similarity == pytest.approx(expected[twin_rank - 1][1], abs=5e-4 + 1e-6)
    shown = {row[1]: row[0] for row in closest}
    assert shown.get(gallery[twin].name) == (twin_rank if twin_rank <= 5 else None)

    # Without a spoken report: the same findings, no similarity line, no gallery rows.
    _, silent_findings, silent_match, silent_closest = backend.analyse(str(upload), None)
    assert silent_findings == findings and silent_match == "" and silent_closest == []


def test_analyse_lists_the_whole_gallery_when_it_holds_fewer_than_five(case):
    root, reference, gallery, audio = case
    small = [gallery[5], gallery[1], gallery[4]]
    backend = DemoBackend(root / "model", prompts="written", gallery=[str(p) for p in small])
    _, findings, match, closest = backend.analyse(str(gallery[0]), str(audio))

    _check_findings(findings, reference.findings(gallery[0]))
    expected = reference.ranking(audio, small)
    assert [row[0] for row in closest] == [1, 2, 3]
    assert [row[1] for row in closest] == [name for name, _ in expected]
    assert sorted(row[1] for row in closest) == sorted(p.name for p in small)  # each volume once
    np.testing.assert_allclose([row[2] for row in closest], [s for _, s in expected], rtol=0, atol=ATOL)
    # The ranking is the model's, not the gallery's order.
    assert [name for name, _ in expected] != [p.name for p in small]
    assert match.startswith("Cosine similarity of the spoken report to this volume: ")
