"""SpeechClipProcessor: audio, images and captions into SpeechClipModel's arguments; bad audio refused by name; the
keyword vocabulary and subword targets from captions; keywords decoded; saved and reloaded through AutoProcessor."""

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

from modeling_speechct import SpeechClipModel, SpeechClipProcessor
from modeling_speechct.training.tiny import tiny_speechclip_config, tiny_speechclip_processor

CAPTIONS = ["a red circle", "blue on red"]


def _wave(seconds=0.1, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def test_the_outputs_feed_the_model():
    processor = tiny_speechclip_processor()
    images = [np.random.default_rng(i).integers(0, 255, (40, 48, 3), dtype=np.uint8) for i in range(2)]
    batch = processor(
        audio=[_wave(0.1), _wave(0.05, rate=8000)], images=images, text=CAPTIONS, sampling_rate=[16000, 8000]
    )
    assert batch["speech_values"].shape == (2, 1600)  # 0.05 s at 8 kHz resampled to 800 samples at 16 kHz, padded
    assert batch["speech_attention_mask"].sum(dim=1).tolist() == [1600, 800]
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert batch["input_ids"][0, 0] == 58 and 59 in batch["input_ids"][0].tolist()
    torch.manual_seed(0)
    model = SpeechClipModel(tiny_speechclip_config("hybrid")).eval()
    with torch.no_grad():
        out = model(speech_values=batch["speech_values"], speech_attention_mask=batch["speech_attention_mask"],
                    pixel_values=batch["pixel_values"], return_loss=True)  # fmt: skip
        text = model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output
    assert torch.isfinite(out.loss) and text.shape == (2, 16)


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        (np.zeros(1600, dtype=np.float32), 16000, r"audio\[0\]: the recording is silent"),
        (np.zeros(0, dtype=np.float32), 16000, r"audio\[0\]: the recording is empty"),
        (_wave(), 3, r"audio\[0\]: sample rate 3 Hz is implausible"),
        (_wave(), None, r"audio\[0\]: unknown sample rate"),
    ],
)
def test_bad_audio_is_refused_by_name(audio, rate, message):
    with pytest.raises(ValueError, match=message):
        tiny_speechclip_processor()(audio=audio, sampling_rate=rate)


def test_keyword_vocabulary_and_subword_targets_come_from_the_captions():
    processor = tiny_speechclip_processor()
    vocabulary = processor.keyword_vocabulary(CAPTIONS)
    assert 53 in vocabulary and 56 in vocabulary and 58 not in vocabulary  # red</w>, blue</w>; never [SOT]
    expected = [len(processor.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in CAPTIONS]
    assert processor.subword_counts(CAPTIONS) == expected
    assert processor.subword_counts(["red blue"], vocabulary=[53]) == [1]
    with pytest.raises(ValueError, match=r"captions\[1\] 'zzz' has no subword in the keyword vocabulary"):
        processor.subword_counts(["red", "zzz"], vocabulary=vocabulary)
    model = SpeechClipModel(tiny_speechclip_config("cascaded", keyword_vocabulary=vocabulary)).eval()
    ids, _, _ = model.get_keywords(torch.randn(2, 1600), top_k=1)
    assert set(ids.flatten().tolist()) <= set(vocabulary)
    words = processor.decode_keywords(ids[..., 0])
    assert len(words) == 2 and all(len(w) == 4 for w in words)
    assert processor.decode_keywords(torch.tensor([[53, 56, -1]])) == [["red", "blue"]]


def test_saved_processor_reloads_through_auto_processor(tmp_path):
    processor = tiny_speechclip_processor()
    processor.save_pretrained(tmp_path)
    SpeechClipModel(tiny_speechclip_config()).config.save_pretrained(tmp_path)
    assert {"processing_speechclip.py", "audio_io.py"} <= {p.name for p in tmp_path.glob("*.py")}  # remote code
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is SpeechClipProcessor
    image = np.random.default_rng(3).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    a = processor(audio=_wave(), images=image, text=CAPTIONS, sampling_rate=16000)
    b = reloaded(audio=_wave(), images=image, text=CAPTIONS, sampling_rate=16000)
    for key in a:
        torch.testing.assert_close(a[key], b[key])
