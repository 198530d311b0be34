"""The demo's SpeechCLIP tab (`hub.scene_search.SceneSearchBackend`) against an independent float64 ranking from
the saved model's own speech and image embeddings, and its keywords against `get_keywords`."""

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from modeling_speechct import SpeechClipModel
from modeling_speechct.hub.scene_search import SceneSearchBackend
from modeling_speechct.training.tiny import tiny_speechclip_config, tiny_speechclip_processor


@pytest.fixture(scope="module", params=["parallel", "hybrid"])
def saved(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"scenes_{request.param}")
    torch.manual_seed(0)
    model = SpeechClipModel(tiny_speechclip_config(request.param)).eval()
    processor = tiny_speechclip_processor()
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    rng = np.random.default_rng(0)
    images = []
    for i in range(7):
        path = root / f"scene_{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path, quality=95)
        images.append(str(path))
    wav = root / "description.wav"
    sf.write(wav, (0.1 * rng.standard_normal(4000)).astype(np.float32), 16000)
    return root, model, processor, images, str(wav)


def test_the_ranking_is_the_models_cosine_ranking(saved):
    root, model, processor, images, wav = saved
    backend = SceneSearchBackend(root / "model", images)
    ranked, keywords = backend.search(wav, top_k=5)
    with torch.no_grad():
        pixels = processor(images=[Image.open(p).convert("RGB") for p in images])["pixel_values"]
        image = model.get_image_features(pixels).pooler_output.double().numpy()
        batch = processor(audio=[wav])
        speech = getattr(model.get_speech_features(batch["speech_values"], batch["speech_attention_mask"]),
                         f"{backend.branch}_embeds").double().numpy()[0]  # fmt: skip
    cosine = image @ speech / np.linalg.norm(image, axis=1) / np.linalg.norm(speech)
    want = np.argsort(-cosine)[:5]
    assert [p for p, _ in ranked] == [images[i] for i in want]
    assert [float(label.rsplit("· ", 1)[1]) for _, label in ranked] == pytest.approx(cosine[want], abs=1e-3)
    if model.quantizer is None:
        assert keywords == []
    else:
        ids, cosines, mask = model.get_keywords(batch["speech_values"], batch["speech_attention_mask"], top_k=1)
        words = processor.decode_keywords(ids[..., 0])[0]
        assert [k[1] for k in keywords] == words and len(keywords) == int(mask.sum())
        assert [k[2] for k in keywords] == pytest.approx(cosines[0, :, 0].tolist(), abs=1e-3)


def test_missing_audio_and_an_empty_gallery_are_refused(saved):
    root, _, _, images, _ = saved
    with pytest.raises(ValueError, match="the gallery holds no image"):
        SceneSearchBackend(root / "model", [])
    with pytest.raises(ValueError, match="Record or upload a spoken description"):
        SceneSearchBackend(root / "model", images[:2]).search(None)
