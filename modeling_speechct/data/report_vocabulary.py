"""The fixed wording of the benchmark's reports: every word list and phrase table the report grammar draws from.

Severity, side and number words, report verbs and lung-window lead-ins, the location words that are nouns already,
the report's sections and which labels each one holds, the nouns of each finding (singular, plural), the words
that anchor an artery or a medical-material phrase, and the sentences used as they stand: negatives per label (and
covering two labels at once), normal-anatomy fillers per section, normal impressions. It is data, kept apart from
the grammar that composes it (`report_phrases`, `report_findings`, `reports`) so that the wording can be read and
edited in one place; the templates of the positive sentences stay with their writers in `report_findings`. Any edit
here changes the generated reports, and so the recorded benchmark.
"""

from __future__ import annotations

import re

from ..labels import CT_RATE_LABELS

__all__ = ["SEVERITY_WORDS", "SIDE_WORDS"]

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

# Words marking a location as arterial and a kind as medical material (such sentences need no generic noun); the
# material words are also what `reports.describes` looks for.
_ARTERY_ANCHOR = re.compile(r"aort|arter|vessel|vascular", re.I)
_MATERIAL_ANCHOR = re.compile(
    r"\bmaterial\b|medical device|implant|hardware|pacemaker|catheter|sternotomy|\bports?\b|\bstents?\b|"
    r"\bwires?\b|\bleads?\b|\btubes?\b|prosthe|\bclips?\b|\bdevices?\b",
    re.I,
)


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

# Impressions of a study without findings.
_NORMAL_IMPRESSIONS = (
    "No acute pathology.",
    "Normal chest CT.",
    "No significant abnormality was detected in the thorax.",
    "Unremarkable non-contrast chest CT.",
    "No acute cardiopulmonary findings.",
    "Non-contrast chest CT within normal limits.",
)
