"""The chest CT phantom: reproducible, laid out like a chest, and every rendered label changes the volume where its
lesion belongs (the same patient rendered with and without one label differs only there)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from modeling_speechct.data.phantom import (
    LABEL_PREVALENCE,
    RENDERED_LABELS,
    PhantomCase,
    example_case,
    generate_case,
    lesion_views,
    sample_labels,
)
from modeling_speechct.labels import CT_RATE_LABELS, Finding

SEEDS = (0, 1, 2)
# Where a template patient's heart centre lies (z S, x L, y P; mm about the volume centre), within ~25 mm.
HEART = np.array([-50.0, 18.0, -32.0])


def mm(case: PhantomCase, index) -> np.ndarray:
    """Voxel indices (…, 3) → mm about the volume centre."""
    return (np.asarray(index, float) - (np.array(case.volume.shape) - 1) / 2) * np.array(case.spacing)


@cache
def normal(seed: int) -> PhantomCase:
    return generate_case(np.random.default_rng(seed), set())


def pair(label: str, seed: int) -> tuple[PhantomCase, PhantomCase, np.ndarray]:
    """The same patient without and with `label`, and the voxels that differ."""
    base, case = normal(seed), generate_case(np.random.default_rng(seed), {label})
    return base, case, base.volume != case.volume


def test_constants():
    assert set(RENDERED_LABELS) <= set(CT_RATE_LABELS)
    assert list(RENDERED_LABELS) == [label for label in CT_RATE_LABELS if label in RENDERED_LABELS]
    assert set(LABEL_PREVALENCE) == set(RENDERED_LABELS)
    assert all(0.05 <= p <= 0.40 for p in LABEL_PREVALENCE.values())
    assert len(RENDERED_LABELS) >= 13


def test_same_seed_same_case_and_different_seeds_differ():
    a, b = generate_case(np.random.default_rng(7)), generate_case(np.random.default_rng(7))
    assert a.volume.tobytes() == b.volume.tobytes()
    assert (a.findings, a.labels, a.spacing, a.centers) == (b.findings, b.labels, b.spacing, b.centers)
    c = generate_case(np.random.default_rng(8))
    assert c.volume.tobytes() != a.volume.tobytes()
    assert c.spacing != a.spacing


def test_case_layout_and_labels_match_findings():
    for seed in range(12):
        case = generate_case(np.random.default_rng(seed))
        assert case.volume.dtype == np.int16 and case.volume.shape == (48, 96, 96)
        fov = np.array(case.spacing) * case.volume.shape
        assert np.all(fov > np.array([300, 380, 320]) * 0.88 - 1e-6)
        assert np.all(fov < np.array([300, 380, 320]) * 1.12 + 1e-6)
        assert list(case.labels) == list(CT_RATE_LABELS)
        present = {label for label, value in case.labels.items() if value == 1}
        assert set(case.labels.values()) <= {0, 1}
        assert present == {f.label for f in case.findings} == set(case.centers)
        assert present <= set(RENDERED_LABELS)
        assert [f.label for f in case.findings] == [label for label in CT_RATE_LABELS if label in present]
        for index in case.centers.values():
            assert all(0 <= i < n for i, n in zip(index, case.volume.shape, strict=True))


def test_explicit_shape_spacing_and_labels():
    case = generate_case(np.random.default_rng(3), {"Lung nodule", "Cardiomegaly"}, (24, 64, 48), (12.0, 6.0, 6.5))
    assert case.volume.shape == (24, 64, 48) and case.spacing == (12.0, 6.0, 6.5)
    assert [f.label for f in case.findings] == ["Cardiomegaly", "Lung nodule"]
    everything = generate_case(np.random.default_rng(4), set(RENDERED_LABELS))
    assert {f.label for f in everything.findings} == set(RENDERED_LABELS)


@pytest.mark.parametrize("label", ["Interlobular septal thickening", "Not a label"])
def test_labels_it_cannot_draw_are_refused(label):
    with pytest.raises(ValueError, match="Cannot render"):
        generate_case(np.random.default_rng(0), {label})


def test_sampled_label_sets_follow_the_prevalences():
    rng = np.random.default_rng(0)
    sets = [sample_labels(rng) for _ in range(500)]
    for label in RENDERED_LABELS:
        assert 0.05 <= np.mean([label in s for s in sets]) <= 0.40, label
    assert 0.05 <= np.mean([not s for s in sets]) <= 0.25
    assert max(len(s) for s in sets) >= 3  # labels co-occur
    assert set().union(*sets) == set(RENDERED_LABELS)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert [sample_labels(rng_a) for _ in range(20)] == [sample_labels(rng_b) for _ in range(20)]


@pytest.mark.parametrize("seed", SEEDS)
def test_anatomy_in_hounsfield_units(seed):
    case = normal(seed)
    v = case.volume.astype(float)
    corners = np.concatenate([v[:, :4, :4].ravel(), v[:, -4:, -4:].ravel(), v[:, :4, -4:].ravel()])
    assert abs(corners.mean() + 1000) < 5  # air outside the body (with scanner noise)
    z, x, y = ((np.arange(n) - (n - 1) / 2) * s for n, s in zip(case.volume.shape, case.spacing, strict=True))
    z, x, y = z[:, None, None], x[None, :, None], y[None, None, :]  # mm: toward S, L, P
    mid = (np.abs(z) < 40) & (np.abs(y + 10) < 25)
    right_lung, left_lung = v[mid & (np.abs(x + 75) < 15)], v[mid & (np.abs(x - 75) < 12)]
    assert np.mean(right_lung < -700) > 0.7 and np.mean(left_lung < -700) > 0.7  # lungs (and their vessels)
    thorax = (np.abs(z) < 60) & (np.abs(y) < 80) & (np.abs(x) < 125)  # inside the body
    lung = v < -700
    assert (lung & (x < -20) & thorax).sum() > (lung & (x > 20) & thorax).sum()  # left lung smaller (the heart)
    heart = v[(z - HEART[0]) ** 2 + (x - HEART[1]) ** 2 + (y - HEART[2]) ** 2 < 15**2]
    assert 0 < np.median(heart) < 80  # soft tissue, left-anterior-inferior
    bone = v > 300
    midline = bone & (np.abs(x) < 15)
    assert (midline & (y > 0)).sum() > 3 * (midline & (y < 0)).sum() > 0  # spine behind, sternum in front
    assert (bone & (np.abs(x) > 100)).sum() > 50  # ribs in the lateral chest wall
    assert v.max() < 1000  # no metal without medical material


def test_findings_are_report_ready():
    sides, severities = {None, "right", "left", "bilateral"}, {None, "mild", "moderate", "severe"}
    for seed in range(20):
        for f in generate_case(np.random.default_rng(100 + seed)).findings:
            assert isinstance(f, Finding)
            assert f.side in sides and f.severity in severities
            assert f.size_mm is None or 0 < f.size_mm <= 100
            assert f.count is None or f.count >= 1
            if f.label in ("Lung nodule", "Consolidation", "Lung opacity", "Atelectasis"):
                assert f.location.endswith(("lobe", "lobes", "lingula")) and f.side in ("right", "left", "bilateral")
            if f.label == "Lung nodule":
                assert 4 <= f.size_mm <= 30
            if f.label == "Lymphadenopathy":
                assert f.location and f.size_mm > 10
            if f.label == "Medical material":
                assert f.kind in ("pacemaker lead", "central venous port", "sternotomy wires")
            if f.label == "Coronary artery wall calcification":
                assert "arter" in f.location and f.count >= 1


@pytest.mark.parametrize("label", RENDERED_LABELS)
def test_each_label_changes_the_volume_only_where_its_lesion_is(label):
    for seed in SEEDS:
        base, case, changed = pair(label, seed)
        assert case.labels[label] == 1 and sum(case.labels.values()) == 1
        assert base.spacing == case.spacing
        assert changed.any(), (label, seed)
        before, after = base.volume[changed].astype(float), case.volume[changed].astype(float)
        where = mm(case, np.argwhere(changed))
        _CHECKS[label](base, case, changed, before, after, where)


def _in_lungs(before, share=0.7):
    assert np.mean(before < -500) >= share


def _focal(changed, share=0.02):
    assert changed.mean() < share


def _nodule(base, case, changed, before, after, where):
    _in_lungs(before)
    _focal(changed)
    assert case.volume[case.centers["Lung nodule"]] > -300


def _effusion(base, case, changed, before, after, where):
    _in_lungs(before)
    assert -30 < np.median(after) < 50  # fluid
    lung_mm = mm(base, np.argwhere(base.volume < -700))
    lung_mm = lung_mm[(lung_mm[:, 1] / 130) ** 2 + (lung_mm[:, 2] / 90) ** 2 < 1]  # not the air around the body
    assert where[:, 0].mean() < lung_mm[:, 0].mean() - 20  # at the lung bases
    assert where[:, 2].mean() > lung_mm[:, 2].mean() + 10  # posterior (dependent)


def _soft_tissue(volume: np.ndarray) -> int:
    return int(((volume > -30) & (volume < 120)).sum())


def _cardiomegaly(base, case, changed, before, after, where):
    assert _soft_tissue(case.volume) > _soft_tissue(base.volume) + 1000  # the heart grew
    assert (case.volume < -700).sum() < (base.volume < -700).sum()  # at the lungs' expense
    assert np.linalg.norm(where.mean(axis=0) - HEART) < 40


def _pericardial(base, case, changed, before, after, where):
    assert np.mean((after > -40) & (after < 60)) > 0.4 and -60 < np.median(after) < 40  # fluid around the heart
    assert np.linalg.norm(where.mean(axis=0) - HEART) < 45
    assert np.percentile(np.linalg.norm(where - HEART, axis=1), 95) < 120


def _emphysema(base, case, changed, before, after, where):
    _in_lungs(before, 0.8)
    assert (after - before).mean() < -20  # darker lungs
    assert (case.volume < -950).sum() > (base.volume < -950).sum() + 100  # lucencies
    lung = before < -700  # (severe emphysema also flattens the diaphragm: new lung where the liver was)
    upper = where[:, 0] > np.median(where[lung, 0])
    assert (after - before)[lung & upper].mean() < (after - before)[lung & ~upper].mean()  # upper-lobe predominant


def _consolidation(base, case, changed, before, after, where):
    _in_lungs(before)
    _focal(changed)
    assert (after > -100).sum() >= 20  # dense
    assert (after < -850).sum() > 0 or (after < before - 50).sum() > 0  # air bronchograms


def _opacity(base, case, changed, before, after, where):
    _in_lungs(before, 0.9)
    _focal(changed, 0.03)
    assert -800 < np.median(after) < -350 and np.all(after >= before - 60)  # hazy, only raised


def _atelectasis(base, case, changed, before, after, where):
    _in_lungs(before)
    _focal(changed)
    assert after.max() > -200 and np.median(after) > -600


def _arterial(base, case, changed, before, after, where):
    bright = after > 300
    assert bright.sum() >= 1 and before.max() < 300
    near = np.linalg.norm(where[bright] - HEART, axis=1)
    assert np.all(near > 25)  # on the aorta, not in the heart's middle
    assert np.mean(before[bright] > -300) > 0.6  # on the aortic wall (soft tissue), not in the lung


def _coronary(base, case, changed, before, after, where):
    bright = after > 300
    assert bright.sum() >= 1
    assert np.all(np.linalg.norm(where[bright] - HEART, axis=1) < 95)  # on the heart's surface


def _material(base, case, changed, before, after, where):
    assert case.volume.max() > 2000 and base.volume.max() < 2000
    assert (after > 2000).sum() >= 5
    _focal(changed)


def _hernia(base, case, changed, before, after, where):
    _focal(changed)
    center = where.mean(axis=0)
    assert abs(center[1]) < 45 and center[0] < -30  # midline, low
    assert center[2] > HEART[2] + 10  # behind the heart
    assert (after > -60).sum() > 0  # wall / fluid


def _nodes(base, case, changed, before, after, where):
    _focal(changed)
    assert np.mean(after > before) > 0.6 and np.median(after) > -200  # soft tissue where fat or lung was
    assert np.all(np.abs(where[:, 1]) < 100) and where[:, 0].mean() > -45  # mediastinum / hila, above the heart


def _bronchiectasis(base, case, changed, before, after, where):
    _in_lungs(before, 0.8)
    _focal(changed)
    assert (after < -950).sum() > 0 and (after > -400).sum() > 0  # air lumen, thick wall
    assert where[:, 0].mean() < 20  # lower lobes


def _mosaic(base, case, changed, before, after, where):
    _in_lungs(before, 0.8)
    assert (after > before + 40).sum() > 1000 and (after < before - 30).sum() > 1000  # patches both ways


def _fibrosis(base, case, changed, before, after, where):
    _in_lungs(before)
    _focal(changed)
    assert (after > -300).sum() >= 10 and where[:, 0].mean() > 20  # dense bands, upper lungs


_CHECKS = {
    "Lung nodule": _nodule,
    "Pleural effusion": _effusion,
    "Cardiomegaly": _cardiomegaly,
    "Pericardial effusion": _pericardial,
    "Emphysema": _emphysema,
    "Consolidation": _consolidation,
    "Lung opacity": _opacity,
    "Atelectasis": _atelectasis,
    "Arterial wall calcification": _arterial,
    "Coronary artery wall calcification": _coronary,
    "Medical material": _material,
    "Hiatal hernia": _hernia,
    "Lymphadenopathy": _nodes,
    "Bronchiectasis": _bronchiectasis,
    "Mosaic attenuation pattern": _mosaic,
    "Pulmonary fibrotic sequela": _fibrosis,
}


def test_every_rendered_label_has_a_check():
    assert set(_CHECKS) == set(RENDERED_LABELS)


def test_a_lesion_does_not_depend_on_the_other_labels():
    one = generate_case(np.random.default_rng(9), {"Lung nodule"})
    two = generate_case(np.random.default_rng(9), {"Lung nodule", "Medical material"})
    assert one.findings[0] == two.findings[1] and one.centers["Lung nodule"] == two.centers["Lung nodule"]


def test_lesion_views_cut_through_the_lesion():
    case = example_case("Lung nodule", seed=0)
    views = lesion_views(case, "Lung nodule")
    s, l_index, p = case.centers["Lung nodule"]
    assert views.axial.shape == (case.volume.shape[2], case.volume.shape[1])
    assert views.coronal.shape == (case.volume.shape[0], case.volume.shape[1])
    assert views.axial[views.axial_point] == case.volume[s, l_index, p]
    assert views.coronal[views.coronal_point] == case.volume[s, l_index, p]
    assert views.axial_aspect == pytest.approx(case.spacing[2] / case.spacing[1])
