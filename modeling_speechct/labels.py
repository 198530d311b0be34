"""CT-RATE's 18 abnormality labels and the structured description of one rendered finding.

The phantom generator produces `Finding`s, the report writer turns them into CT-RATE-style text, and the labels
CSV holds one 0/1 column per entry of `CT_RATE_LABELS`, in this order (CT-RATE's column order).
"""

from __future__ import annotations

from dataclasses import dataclass

CT_RATE_LABELS: tuple[str, ...] = (
    "Medical material",
    "Arterial wall calcification",
    "Cardiomegaly",
    "Pericardial effusion",
    "Coronary artery wall calcification",
    "Hiatal hernia",
    "Lymphadenopathy",
    "Emphysema",
    "Atelectasis",
    "Lung nodule",
    "Lung opacity",
    "Pulmonary fibrotic sequela",
    "Pleural effusion",
    "Mosaic attenuation pattern",
    "Peribronchial thickening",
    "Consolidation",
    "Bronchiectasis",
    "Interlobular septal thickening",
)


@dataclass(frozen=True)
class Finding:
    """One abnormality as rendered: what the report must say about it.

    Args:
        label: one of `CT_RATE_LABELS`.
        side: "right", "left", "bilateral", or None where laterality does not apply (heart, mediastinum).
        location: anatomical site in report words, e.g. "right upper lobe", "left lower lobe", "subcarinal",
            "anterior mediastinum", "left anterior descending artery"; None when the label says it all.
        size_mm: largest diameter (nodules, nodes, effusion depth) in mm, or None.
        severity: "mild", "moderate" or "severe" where grading applies, else None.
        count: number of lesions where several are drawn (nodules, nodes, calcifications), else None.
        kind: sub-type in report words, e.g. "pacemaker lead", "sternotomy wires", "central venous port",
            "centrilobular", "ground-glass"; None when not applicable.
    """

    label: str
    side: str | None = None
    location: str | None = None
    size_mm: float | None = None
    severity: str | None = None
    count: int | None = None
    kind: str | None = None

    def __post_init__(self):
        if self.label not in CT_RATE_LABELS:
            raise ValueError(f"Finding label {self.label!r} is not one of the 18 CT-RATE labels.")
