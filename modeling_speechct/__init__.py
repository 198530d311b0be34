"""speechct-clip: speech, 3D CT and text in one embedding space, on Hugging Face transformers (SpeechCT-CLIP, its
CT-CLIP teacher, SpeechCLIP / SpeechCLIP+; AcuLa and its spectrogram masked-autoencoder tower).

Importing the package registers its configs and models with the Auto classes, and marks them for
`register_for_auto_class` so that `save_pretrained` writes a folder that also loads with `trust_remote_code=True`
where this package is not installed. It also registers the `zero-shot-ct-classification` and `ct-retrieval`
pipelines (`pipeline_speechct_clip.py`).
"""

from transformers import AutoConfig, AutoModel, AutoProcessor

from .configuration_acula import AcuLaConfig
from .configuration_ct_vit import CTViTConfig
from .configuration_spectrogram_mae import SpectrogramMAEConfig
from .configuration_speechclip import SpeechClipConfig
from .configuration_speechct_clip import SpeechCTClipConfig
from .feature_extraction_acula import AcuLaFeatureExtractor
from .feature_extraction_ct import CTFeatureExtractor, CTVolumeDataset
from .modeling_acula import AcuLaModel, AcuLaOutput, AcuLaPreTrainedModel
from .modeling_ct_vit import CTViTModel, CTViTModelOutput, CTViTPreTrainedModel
from .modeling_spectrogram_mae import SpectrogramMAEModel, SpectrogramMAEOutput, SpectrogramMAEPreTrainedModel
from .modeling_speechclip import SpeechClipModel, SpeechClipOutput, SpeechClipPreTrainedModel, SpeechClipSpeechOutput
from .modeling_speechct_clip import (
    SpeechCTClipModel,
    SpeechCTClipOutput,
    SpeechCTClipPreTrainedModel,
    SpeechCTClipSpeechOutput,
    SpeechPrefix,
)
from .pipeline_speechct_clip import CTRetrievalPipeline, ZeroShotCTClassificationPipeline
from .processing_acula import AcuLaProcessor
from .processing_speechclip import SpeechClipProcessor
from .processing_speechct_clip import SpeechCTClipProcessor

AutoConfig.register(CTViTConfig.model_type, CTViTConfig, exist_ok=True)
AutoConfig.register(AcuLaConfig.model_type, AcuLaConfig, exist_ok=True)
AutoConfig.register(SpeechCTClipConfig.model_type, SpeechCTClipConfig, exist_ok=True)
AutoConfig.register(SpeechClipConfig.model_type, SpeechClipConfig, exist_ok=True)
AutoConfig.register(SpectrogramMAEConfig.model_type, SpectrogramMAEConfig, exist_ok=True)
AutoModel.register(CTViTConfig, CTViTModel, exist_ok=True)
AutoModel.register(AcuLaConfig, AcuLaModel, exist_ok=True)
AutoModel.register(SpeechCTClipConfig, SpeechCTClipModel, exist_ok=True)
AutoModel.register(SpeechClipConfig, SpeechClipModel, exist_ok=True)
AutoModel.register(SpectrogramMAEConfig, SpectrogramMAEModel, exist_ok=True)
AutoProcessor.register(SpeechCTClipConfig, SpeechCTClipProcessor, exist_ok=True)
AutoProcessor.register(SpeechClipConfig, SpeechClipProcessor, exist_ok=True)
AutoProcessor.register(AcuLaConfig, AcuLaProcessor, exist_ok=True)
for _config_class, _model_class in (
    (CTViTConfig, CTViTModel),
    (SpeechCTClipConfig, SpeechCTClipModel),
    (SpeechClipConfig, SpeechClipModel),
    (SpectrogramMAEConfig, SpectrogramMAEModel),
    (AcuLaConfig, AcuLaModel),
):
    _config_class.register_for_auto_class()
    _model_class.register_for_auto_class("AutoModel")
SpeechCTClipProcessor.register_for_auto_class("AutoProcessor")
SpeechClipProcessor.register_for_auto_class("AutoProcessor")
AcuLaProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "AcuLaConfig",
    "AcuLaFeatureExtractor",
    "AcuLaModel",
    "AcuLaOutput",
    "AcuLaPreTrainedModel",
    "AcuLaProcessor",
    "CTFeatureExtractor",
    "CTRetrievalPipeline",
    "CTViTConfig",
    "CTViTModel",
    "CTViTModelOutput",
    "CTViTPreTrainedModel",
    "CTVolumeDataset",
    "SpectrogramMAEConfig",
    "SpectrogramMAEModel",
    "SpectrogramMAEOutput",
    "SpectrogramMAEPreTrainedModel",
    "SpeechCTClipConfig",
    "SpeechCTClipModel",
    "SpeechCTClipOutput",
    "SpeechCTClipPreTrainedModel",
    "SpeechCTClipProcessor",
    "SpeechCTClipSpeechOutput",
    "SpeechClipConfig",
    "SpeechClipModel",
    "SpeechClipOutput",
    "SpeechClipPreTrainedModel",
    "SpeechClipProcessor",
    "SpeechClipSpeechOutput",
    "SpeechPrefix",
    "ZeroShotCTClassificationPipeline",
]
