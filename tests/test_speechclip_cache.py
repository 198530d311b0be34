"""SpeechCLIP from cached frozen layers: `SpeechLayersCache` stores every hidden layer of the frozen speech tower
once, and the model computes the same embeddings and keywords from them as from the audio."""

import numpy as np
import pytest
import soundfile as sf
import torch

from modeling_speechct import SpeechClipModel
from modeling_speechct.training.embedding_cache import SpeechLayersCache
from modeling_speechct.training.tiny import tiny_speechclip_config, tiny_speechclip_processor


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate((0.10, 0.06, 0.13)):
        path = folder / f"caption_{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("mode", ["hybrid", "cascaded_plus"])
def test_cached_layers_give_the_audios_embeddings(tmp_path, recordings, mode):
    torch.manual_seed(0)
    model = SpeechClipModel(tiny_speechclip_config(mode)).eval()
    processor = tiny_speechclip_processor()
    cache = SpeechLayersCache(tmp_path / "cache", model, processor)
    layers, frame_mask = cache(recordings)
    assert layers.shape[:2] == (3, model.config.speech_config.num_hidden_layers + 1)
    frames = model.speech_model._get_feat_extract_output_lengths(torch.tensor([1600, 960, 2080])).tolist()
    assert frame_mask.sum(dim=1).tolist() == frames  # each recording keeps its own frames only
    batch = processor(audio=recordings)
    with torch.no_grad():
        direct = model.get_speech_features(batch["speech_values"], batch["speech_attention_mask"])
        cached = model.get_speech_features(speech_layers=layers, speech_frame_mask=frame_mask)
    for name in ("parallel_embeds", "cascaded_embeds"):
        if getattr(direct, name) is not None:
            torch.testing.assert_close(getattr(cached, name), getattr(direct, name), atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(cached.keyword_mask, direct.keyword_mask)
    cache(recordings)
    assert cache.hits == 3 and cache.misses == 3  # the second call reads every recording from disk


def test_cached_layers_train_the_layer_weights(tmp_path, recordings):
    model = SpeechClipModel(tiny_speechclip_config("parallel")).train()
    layers, frame_mask = SpeechLayersCache(tmp_path / "cache", model, tiny_speechclip_processor())(recordings)
    out = model(speech_layers=layers, speech_frame_mask=frame_mask, image_embeds=torch.randn(3, 16), return_loss=True)
    out.loss.backward()
    assert model.speech_layer_weights.weights.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"`speech_frame_mask` must be \(batch, frames\)"):
        model(speech_layers=layers, speech_frame_mask=frame_mask[:, :-1])
    with pytest.raises(ValueError, match=r"Give `speech_values` .* or `speech_layers`"):
        model.get_speech_features()
