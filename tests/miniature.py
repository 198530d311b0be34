"""A hand-made miniature of the CT-RATE + Speech-RATE download, and a processor sized for the tiny model."""

import csv

import numpy as np
import soundfile as sf
from transformers import BertTokenizerFast, WhisperFeatureExtractor
from volumes import canonical_volume

from modeling_speechct import CTFeatureExtractor, SpeechCTClipProcessor
from modeling_speechct.ct_io import write_nifti
from modeling_speechct.data import ctrate
from modeling_speechct.labels import CT_RATE_LABELS

NAMES = ["valid_1_a_1.nii.gz", "valid_1_a_2.nii.gz", "valid_53_b_1.nii.gz"]


def make_miniature(root, names=NAMES, with_speech=True):
    """Three volumes with CT-RATE's exact file names, folders and CSV columns (as downloaded)."""
    for i, name in enumerate(names):
        path = ctrate.volume_path(root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_nifti(canonical_volume(seed=i), (2.0, 0.7, 0.8), path, "LPS")
        if with_speech:
            t = np.arange(16000 + 4000 * i) / 16000
            sf.write(ctrate.speech_path(root, name), 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    reports = root / "dataset" / "radiology_text_reports" / "validation_reports.csv"
    reports.parent.mkdir(parents=True)
    with open(reports, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN"])
        for i, name in enumerate(names):
            writer.writerow(
                [name, "Not given.", "Non-contrast.", f"Finding number {i}. No pleural effusion.", "Not given."]
            )
    labels = root / "dataset" / "multi_abnormality_labels" / "valid_predicted_labels.csv"
    labels.parent.mkdir(parents=True)
    with open(labels, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["VolumeName", *CT_RATE_LABELS])
        for i, name in enumerate(names):
            writer.writerow([name, *[int(j == i) for j in range(18)]])
    return root


def tiny_processor(tmp_path):
    """CT-CLIP-style processor at the tiny model's sizes, with a toy WordPiece vocabulary."""
    # transformers 5's constructor ignores `vocab_file=` (every word would be [UNK]): give the vocabulary itself.
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "finding", "number", "no"]
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)})
    return SpeechCTClipProcessor(
        CTFeatureExtractor(target_shape=(8, 32, 32)), WhisperFeatureExtractor(feature_size=16), tokenizer
    )
