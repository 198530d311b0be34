"""CT-RATE-style report writer: truthful (every finding asserted with its details, nothing absent asserted, nothing
present negated), explicit about absent labels, deterministic, and varied."""

import re
from collections import Counter

import numpy as np
import pytest

from modeling_speechct.data.report_vocabulary import SEVERITY_WORDS, SIDE_WORDS
from modeling_speechct.data.reports import describes, negates, write_report
from modeling_speechct.labels import CT_RATE_LABELS, Finding

LOBES = ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe", "lingula")
SEVERITIES = ("mild", "moderate", "severe")
SIDES = ("right", "left", "bilateral")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
N_REPORTS = 300


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _maybe(rng, value, p=0.75):
    return value if rng.random() < p else None


def random_finding(rng: np.random.Generator, label: str) -> Finding:
    """A finding with plausible fields for its label, any of which may be missing (as the phantom draws them)."""
    side = location = size = severity = count = kind = None
    if label == "Medical material":
        kind = _maybe(
            rng, _pick(rng, ("pacemaker lead", "central venous port", "sternotomy wires", "surgical clips")), 0.9
        )
        count = _maybe(rng, int(rng.integers(1, 4)), 0.2)
    elif label == "Arterial wall calcification":
        location = _maybe(
            rng, _pick(rng, ("aortic arch", "descending aorta", "thoracic aorta", "brachiocephalic trunk"))
        )
        severity = _maybe(rng, _pick(rng, SEVERITIES))
        count = _maybe(rng, int(rng.integers(1, 8)), 0.4)
    elif label == "Coronary artery wall calcification":
        location = _maybe(
            rng, _pick(rng, ("left anterior descending artery", "right coronary artery", "circumflex artery"))
        )
        severity = _maybe(rng, _pick(rng, SEVERITIES))
        count = _maybe(rng, int(rng.integers(1, 6)), 0.4)
    elif label in ("Cardiomegaly", "Pericardial effusion", "Hiatal hernia"):
        severity = _maybe(rng, _pick(rng, SEVERITIES))
        if label != "Cardiomegaly":
            size = _maybe(rng, float(np.round(rng.uniform(3, 40), 1)), 0.6)
        if label == "Hiatal hernia":
            kind = _maybe(rng, "sliding", 0.3)
    elif label == "Lymphadenopathy":
        location = _maybe(
            rng,
            _pick(
                rng,
                ("subcarinal", "right paratracheal", "prevascular", "hilar", "anterior mediastinum", "axillary"),
            ),
        )
        if location in (None, "hilar", "axillary"):
            side = _maybe(rng, _pick(rng, SIDES), 0.5)
        size = _maybe(rng, float(np.round(rng.uniform(10, 30), 1)))
        count = _maybe(rng, int(rng.integers(1, 6)), 0.6)
        severity = _maybe(rng, _pick(rng, SEVERITIES), 0.2)
    elif label == "Lung nodule":
        location = _maybe(rng, _pick(rng, LOBES))
        side = None if location else _maybe(rng, _pick(rng, SIDES))
        size = _maybe(rng, float(np.round(rng.uniform(3, 28), 1)), 0.9)
        count = _maybe(rng, int(rng.integers(1, 6)), 0.7)
        kind = _maybe(rng, _pick(rng, ("solid", "part-solid", "ground-glass", "calcified")), 0.5)
    elif label == "Pleural effusion":
        side = _maybe(rng, _pick(rng, SIDES), 0.9)
        size = _maybe(rng, float(np.round(rng.uniform(5, 60), 1)), 0.7)
        severity = _maybe(rng, _pick(rng, SEVERITIES))
    else:
        side = _maybe(rng, _pick(rng, SIDES), 0.6)
        if side in ("right", "left") and rng.random() < 0.6:
            location = _pick(rng, [lobe for lobe in LOBES if lobe.startswith(side)])
        elif side == "bilateral" and rng.random() < 0.5:
            location = _pick(rng, ("lower lobes", "upper lobe", "lung bases"))
        elif side is None and rng.random() < 0.3:
            location = _pick(rng, LOBES)
        severity = _maybe(rng, _pick(rng, SEVERITIES), 0.6)
        kinds = {
            "Emphysema": "centrilobular",
            "Atelectasis": "linear",
            "Lung opacity": "ground-glass",
            "Pulmonary fibrotic sequela": "linear",
            "Bronchiectasis": "cylindrical",
            "Interlobular septal thickening": "smooth",
            "Consolidation": "patchy",
        }
        kind = _maybe(rng, kinds.get(label), 0.5)
        size = _maybe(rng, float(np.round(rng.uniform(5, 40), 1)), 0.2)
        count = _maybe(rng, int(rng.integers(1, 4)), 0.1)
    return Finding(label, side, location, size, severity, count, kind)


def random_findings(rng: np.random.Generator) -> list[Finding]:
    n = int(rng.integers(0, 7))
    labels = [CT_RATE_LABELS[int(i)] for i in rng.choice(len(CT_RATE_LABELS), size=n, replace=False)]
    findings = [random_finding(rng, label) for label in labels]
    if findings and rng.random() < 0.15:  # a second lesion of the same label
        findings.append(random_finding(rng, findings[0].label))
    return findings


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(2024)
    cases = []
    for i in range(N_REPORTS):
        findings = random_findings(rng)
        text, impressions = write_report(findings, np.random.default_rng(i))
        cases.append((findings, text, impressions))
    # every label alone, with all details missing, and with all details given
    for j, label in enumerate(CT_RATE_LABELS):
        bare = Finding(label)
        full = Finding(label, "left", "left lower lobe", 12.5, "moderate", 3, "linear")
        for k, f in enumerate((bare, full)):
            cases.append(([f], *write_report([f], np.random.default_rng(10_000 + 2 * j + k))))
    return cases


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9.\-]+", text.lower())) | set(re.findall(r"[a-z]+", text.lower()))


def test_every_finding_asserted_and_nothing_else(corpus):
    for findings, text, impressions in corpus:
        present = {f.label for f in findings}
        assert describes(text) == present, text
        assert describes(impressions) == present, impressions
        assert not negates(text) & present, text


def test_absent_labels_are_negated(corpus):
    negated_share = []
    for findings, text, _ in corpus:
        present = {f.label for f in findings}
        absent = set(CT_RATE_LABELS) - present
        negated = negates(text)
        assert negated <= absent
        negated_share.append(len(negated) / len(absent))
    assert 0.3 < np.mean(negated_share) < 0.9  # a random subset, not all and not none
    every = Counter(label for _, text, _ in corpus for label in negates(text))
    assert set(every) == set(CT_RATE_LABELS)  # each label gets negated somewhere
    typical = " ".join(text for _, text, _ in corpus)
    for sentence in ("No pleural effusion", "Heart size is normal", "No mediastinal or hilar lymphadenopathy"):
        assert sentence in typical


def test_details_are_rendered(corpus):
    for findings, text, _ in corpus:
        for f in findings:
            about = " ".join(s for s in _sentences(text) if f.label in describes(s)).lower()
            assert about, (f, text)
            words = _words(about)
            if f.location and not (f.label == "Arterial wall calcification" and f.location is None):
                assert f.location.lower() in about, (f, about)
            if f.side:
                assert any(w in words for w in SIDE_WORDS[f.side]), (f, about)
            if f.severity:
                assert any(w in words for w in SEVERITY_WORDS[f.severity]), (f, about)
            if f.kind:
                assert f.kind.lower() in about, (f, about)
            if f.count and f.count > 1:
                assert str(f.count) in words or NUMBER_WORDS[f.count] in words, (f, about)
            if f.size_mm is not None:
                candidates = {f"{f.size_mm:.0f}", f"{f.size_mm:.1f}", f"{f.size_mm / 10:.1f}"}
                assert any(re.search(rf"(?<![\d.]){re.escape(c)}(?![\d])", about) for c in candidates), (f, about)


def test_listed_sites_and_bilateral_lesions_named_by_their_main_lobe():
    """Findings as the phantom writes them: several stations or arteries in one location, bilateral nodules whose
    location is the lobe of the largest one."""
    findings = [
        Finding("Lymphadenopathy", None, "right paratracheal, anterior mediastinum and subcarinal", 21.0, count=3),
        Finding("Lung nodule", "bilateral", "left upper lobe", 13.0, count=2),
        Finding("Lung opacity", "bilateral", "right middle lobe", 46.0, count=2, kind="ground-glass"),
        Finding(
            "Coronary artery wall calcification",
            None,
            "left anterior descending and right coronary arteries",
            None,
            "mild",
            4,
        ),
    ]
    for seed in range(40):
        text, impressions = write_report(findings, np.random.default_rng(seed))
        assert describes(text) == describes(impressions) == {f.label for f in findings}, text
        for f in findings:
            about = " ".join(s for s in _sentences(text) if f.label in describes(s)).lower()
            assert f.location in about, (f, about)
            if f.side == "bilateral":
                assert "both" in _words(about), about


def test_normal_study():
    negated = []
    for seed in range(20):
        text, impressions = write_report([], np.random.default_rng(seed))
        assert describes(text) == set() and describes(impressions) == set()
        assert impressions and text
        negated.append(len(negates(text)))
    assert min(negated) >= 1 and max(negated) < len(CT_RATE_LABELS)  # some labels ruled out, never all of them
    impressions = {write_report([], np.random.default_rng(s))[1] for s in range(40)}
    assert len(impressions) >= 4  # "No acute pathology." / "Normal chest CT." / ...


def test_anatomical_order():
    findings = [Finding("Pleural effusion", side="right"), Finding("Cardiomegaly"), Finding("Hiatal hernia")]
    for seed in range(20):
        text, _ = write_report(findings, np.random.default_rng(seed))
        first = {}
        for i, sentence in enumerate(_sentences(text)):
            for label in describes(sentence):
                first.setdefault(label, i)
        assert first["Cardiomegaly"] < first["Hiatal hernia"] < first["Pleural effusion"]


def test_deterministic():
    findings = [*random_findings(np.random.default_rng(7)), Finding("Lung nodule", "right", "right upper lobe", 6.2)]
    a = write_report(findings, np.random.default_rng(123))
    b = write_report(findings, np.random.default_rng(123))
    c = write_report(findings, np.random.default_rng(124))
    assert a == b
    assert a != c


def test_variety(corpus):
    sentences = Counter()
    per_label = {label: Counter() for label in CT_RATE_LABELS}
    positives = Counter()
    for findings, text, _ in corpus[:N_REPORTS]:
        unique = set(_sentences(text))
        sentences.update(unique)
        for label in {f.label for f in findings}:
            positives[label] += 1
            per_label[label].update(s for s in unique if label in describes(s))
    assert len(sentences) > 1000
    for label in CT_RATE_LABELS:
        assert positives[label] >= 20, label
        sentence, n = per_label[label].most_common(1)[0]
        assert n / positives[label] <= 0.5, (label, sentence, n, positives[label])
        # no sentence dominates: even the commonest one covers a small share here
        assert len(per_label[label]) >= positives[label] * 0.5, label


def test_describes_handles_negation():
    assert describes("No pleural effusion was detected.") == set()
    assert describes("The heart is enlarged, but there is no pericardial effusion.") == {"Cardiomegaly"}
    assert negates("The heart is enlarged, but there is no pericardial effusion.") == {"Pericardial effusion"}
    assert describes("A 6 mm nodule is seen in the right upper lobe.") == {"Lung nodule"}
    assert describes("Heart size is normal and there is no pericardial effusion.") == set()
    assert (
        describes("A few millimetric lymph nodes are seen in the mediastinum, not reaching pathological size.") == set()
    )
    assert describes("Calcified plaques are seen in the coronary arteries.") == {"Coronary artery wall calcification"}
    assert describes("Atherosclerotic calcifications are seen in the aortic arch.") == {"Arterial wall calcification"}
