"""The small CTC speech tower's pieces: processor vocabulary, augmentation, loss batching, greedy decoding."""

import numpy as np
import torch
from transformers import Wav2Vec2ForCTC

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.data.speech_corpus import CTC_VOCAB
from modeling_speechct.training.speech_tower import (
    augment,
    build_ctc_processor,
    character_error_rate,
    ctc_loss_batch,
    small_ctc_config,
    transcribe,
)
from modeling_speechct.training.tiny import tiny_speechct_config


def test_processor_round_trips_the_alphabet(tmp_path):
    processor = build_ctc_processor(tmp_path)
    ids = processor.tokenizer("left lower lobe's nodule").input_ids
    assert processor.tokenizer.decode(ids) == "left lower lobe's nodule"
    assert processor.tokenizer.pad_token_id == 0 == CTC_VOCAB.index("<pad>")


def test_augmentation_keeps_length_and_sets_the_noise_level():
    g = torch.Generator().manual_seed(0)
    wave = torch.sin(torch.arange(16000) / 16000 * 2 * np.pi * 220)
    out = [augment(wave, g) for _ in range(20)]
    assert all(o.shape == wave.shape and torch.isfinite(o).all() for o in out)
    assert all(not torch.allclose(o, wave) for o in out)
    again = augment(wave, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, out[0])


def test_greedy_decoding_merges_repeats_and_drops_blanks(tmp_path, monkeypatch):
    processor = build_ctc_processor(tmp_path)
    model = Wav2Vec2ForCTC(small_ctc_config(num_hidden_layers=1))
    vocab = processor.tokenizer.get_vocab()
    frames = ["n", "n", "<pad>", "o", "|", "|", "<pad>", "n", "<pad>", "n", "o", "o"]
    logits = torch.full((1, len(frames), len(CTC_VOCAB)), -10.0)
    for t, token in enumerate(frames):
        logits[0, t, vocab[token]] = 10.0

    class Out:
        pass

    def forward(*args, **kwargs):
        out = Out()
        out.logits = logits
        return out

    monkeypatch.setattr(model, "forward", forward)
    assert transcribe(model, processor, [np.random.randn(1600).astype(np.float32)]) == ["no nno"]
    assert character_error_rate(["no nno"], ["no nno"]) == (0.0, 0.0)
    assert character_error_rate(["abcd"], ["abce"]) == (0.25, 1.0)


def test_loss_batch_matches_the_processor_path(tmp_path):
    torch.manual_seed(0)
    processor = build_ctc_processor(tmp_path)
    model = Wav2Vec2ForCTC(small_ctc_config(num_hidden_layers=1, mask_time_prob=0.0)).eval()
    waves = [torch.randn(8000), torch.randn(12000)]
    texts = ["no effusion", "a nodule"]
    labels = [processor.tokenizer(t).input_ids for t in texts]
    batch = processor(audio=[w.numpy() for w in waves], sampling_rate=16000, padding=True, return_tensors="pt")
    target = processor.tokenizer(texts, padding=True, return_tensors="pt")
    target = target.input_ids.masked_fill(target.attention_mask == 0, -100)
    expected = model(batch["input_values"], attention_mask=batch["attention_mask"], labels=target).loss
    torch.testing.assert_close(ctc_loss_batch(model, waves, labels), expected, atol=1e-4, rtol=1e-4)


def test_the_ctc_encoder_is_a_speech_tower(tmp_path):
    config = tiny_speechct_config(
        speech_config=small_ctc_config(num_hidden_layers=2),
        speech_trainable_layers=1,
        speech_window_seconds=1.0,
        speech_window_overlap_seconds=0.25,
    )
    model = SpeechCTClipModel(config).eval()
    with torch.no_grad():
        out = model.get_speech_features(torch.randn(2, 40000))  # 2.5 s: three 1 s windows with 0.25 s overlap
    assert out.pooler_output.shape == (2, 16) and out.window_embeds.shape[1] == 3
    assert {
        n.split(".")[2] for n, p in model.speech_model.named_parameters() if p.requires_grad and ".layers." in n
    } == {"1"}
