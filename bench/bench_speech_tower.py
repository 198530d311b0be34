"""Speed of the small CTC speech tower: pretraining throughput and encoder inference, against a Whisper-base-sized
encoder (random weights, same audio, same process) as the baseline a user would otherwise start from.

    python bench/bench_speech_tower.py [--threads 2]

Prints seconds of audio processed per second (higher is faster) and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from transformers import Wav2Vec2ForCTC, WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from modeling_speechct.training.speech_tower import SHIPPED_SPEECH_TOWER, ctc_loss_batch, small_ctc_config


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ours = (
        Wav2Vec2ForCTC.from_pretrained(SHIPPED_SPEECH_TOWER)
        if (SHIPPED_SPEECH_TOWER / "config.json").is_file()
        else Wav2Vec2ForCTC(small_ctc_config())
    )
    whisper = WhisperEncoder(
        WhisperConfig(d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048)
    )
    extractor = WhisperFeatureExtractor()

    # Pretraining step: 24 clips of 4 s (96 s of audio), CTC loss, backward.
    waves = [torch.randn(64000) for _ in range(24)]
    labels = [list(np.random.default_rng(i).integers(3, 30, 50)) for i in range(24)]
    ours.train()

    def ours_step():
        ours.zero_grad()
        ctc_loss_batch(ours, waves, labels).backward()

    whisper.train()
    features = extractor([w.numpy() for w in waves], sampling_rate=16000, return_tensors="pt")["input_features"]

    def whisper_step():
        whisper.zero_grad()
        whisper(features).last_hidden_state.square().mean().backward()  # Whisper always encodes 30 s windows

    train = {
        "ours": 96 / timed(ours_step, args.repeats),
        "whisper-base encoder": 96 / timed(whisper_step, args.repeats),
    }

    # Inference: one 30 s recording, encoder only.
    audio = torch.randn(1, 480000)
    ours.eval()
    whisper.eval()
    with torch.no_grad():
        mel = extractor(audio[0].numpy(), sampling_rate=16000, return_tensors="pt")["input_features"]
        infer = {
            "ours": 30 / timed(lambda: ours.wav2vec2(audio), args.repeats),
            "whisper-base encoder": 30 / timed(lambda: whisper(mel), args.repeats),
        }
    for title, numbers in (("pretraining step (96 s of audio)", train), ("inference (30 s recording)", infer)):
        base = numbers["whisper-base encoder"]
        print(f"{title}: audio seconds per second")
        for name, value in numbers.items():
            print(f"  {name:<22} {value:9.1f}   ratio {value / base:5.2f}")


if __name__ == "__main__":
    main()
