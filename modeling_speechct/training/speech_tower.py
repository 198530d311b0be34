"""A small CTC speech encoder that can be pretrained on a CPU: configuration, processor, augmentation, decoding.

The architecture is transformers' `Wav2Vec2ForCTC` with a lean convolutional front-end (three layers, 320× down to
50 frames per second) and a 6-layer, 192-wide pre-LN transformer: about 3 M parameters (12 MB in float32), so it
trains at roughly 45 seconds of audio per second on 2 cores. Being a plain Wav2Vec2 it is a speech tower of
`SpeechCTClipModel` as it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

from ..audio_io import resample
from ..data.speech_corpus import CTC_VOCAB, transcript
from ..data.speech_manifest import (
    MANIFEST_NAME,
    manifest_rows,
    read_speech_manifest,
    refuse_held_out,
    write_speech_manifest,
)
from ..data.tts import plan_speech, synthesize_all
from ..data.tts_engines import get_backend, require_training_engines

SAMPLING_RATE = 16000
# The pretrained tower shipped inside the package (see its README for how it was made and how well it hears).
SHIPPED_SPEECH_TOWER = Path(__file__).parents[1] / "pretrained" / "speech-ctc-small"


def small_ctc_config(**overrides) -> Wav2Vec2Config:
    values = dict(
        vocab_size=len(CTC_VOCAB),
        pad_token_id=0,
        hidden_size=192,
        num_hidden_layers=6,
        num_attention_heads=4,
        intermediate_size=768,
        conv_dim=(64, 128, 128),
        conv_stride=(10, 4, 8),
        conv_kernel=(20, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=8,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
        mask_time_prob=0.05,
        mask_time_length=5,
        layerdrop=0.0,
    )
    return Wav2Vec2Config(**{**values, **overrides})


def build_ctc_processor(directory: str | os.PathLike) -> Wav2Vec2Processor:
    """Character tokenizer over `CTC_VOCAB` (blank = pad = 0, "|" between words) + waveform normaliser."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(CTC_VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(directory / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    return Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)


def augment(wave: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random gain (±6 dB), reverberation (a synthetic exponentially decaying room response, RT60 0.1–0.6 s, on
    half the clips) and additive white noise at 10–40 dB SNR: the recordings TTS alone never produces."""

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    if float(torch.rand((), generator=generator)) < 0.5:
        rt60 = uniform(0.1, 0.6)
        length = int(rt60 * SAMPLING_RATE)
        decay = torch.exp(-6.9 * torch.arange(length) / length)
        response = torch.randn(length, generator=generator) * decay
        response[0] = 1.0
        response = response / response.norm()
        import torchaudio.functional as AF

        wave = AF.fftconvolve(wave, response)[: wave.shape[0]]  # FFT: a 0.6 s response has 9,600 taps
    wave = wave * 10 ** (uniform(-6, 6) / 20)
    power = wave.pow(2).mean().clamp(min=1e-10)
    snr = uniform(10, 40)
    return wave + torch.randn(wave.shape, generator=generator) * torch.sqrt(power / 10 ** (snr / 10))


@torch.no_grad()
def transcribe(model, processor: Wav2Vec2Processor, audio: Sequence[np.ndarray], batch_size: int = 16) -> list[str]:
    """Greedy CTC decoding of 16 kHz waveforms (repeats merged, blanks dropped)."""
    was_training = model.training
    model.eval()
    texts: list[str] = []
    for start in range(0, len(audio), batch_size):
        batch = processor(
            list(audio[start : start + batch_size]), sampling_rate=SAMPLING_RATE, padding=True, return_tensors="pt"
        )
        logits = model(batch["input_values"], attention_mask=batch["attention_mask"]).logits
        texts.extend(processor.batch_decode(logits.argmax(dim=-1)))
    model.train(was_training)
    return texts


def ctc_loss_batch(model, waves: list[torch.Tensor], labels: list[list[int]]) -> torch.Tensor:
    """Normalise each clip (zero mean, unit variance, as the feature extractor does), pad, and compute CTC loss."""
    lengths = torch.tensor([w.shape[0] for w in waves])
    values = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        values[i, : w.shape[0]] = (w - w.mean()) / torch.sqrt(w.var() + 1e-7)
    mask = (torch.arange(values.shape[1])[None] < lengths[:, None]).long()
    target = torch.full((len(labels), max(map(len, labels))), -100, dtype=torch.long)
    for i, ids in enumerate(labels):
        target[i, : len(ids)] = torch.tensor(ids)
    return model(values, attention_mask=mask, labels=target).loss


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[float, float]:
    """(CER, WER) over the whole set, with jiwer (Levenshtein over characters / words)."""
    import jiwer

    return float(jiwer.cer(list(references), list(hypotheses))), float(jiwer.wer(list(references), list(hypotheses)))


def load_speech_tower(path: str | os.PathLike | None = None):
    """`(Wav2Vec2ForCTC, Wav2Vec2Processor)` from `path`, by default the tower shipped with the package."""
    from transformers import Wav2Vec2ForCTC

    path = Path(path) if path is not None else SHIPPED_SPEECH_TOWER
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no speech tower (config.json missing).")
    return Wav2Vec2ForCTC.from_pretrained(path), Wav2Vec2Processor.from_pretrained(path)


# Voices never heard in pretraining, to measure how the tower generalises to new speakers.
HELD_OUT = {"espeak": ["en-gb-scotland", "en-us+m7"], "flite": ["rms"]}
FLITE_TRAIN = ["kal16", "slt", "awb"]  # "kal" is kal16 at 8 kHz


def training_voices(held_out: bool = False) -> dict[str, list[str]]:
    espeak = get_backend("espeak").voices()
    if held_out:
        return HELD_OUT
    return {"espeak": [v for v in espeak if v not in HELD_OUT["espeak"]], "flite": FLITE_TRAIN}


def speak(
    texts: list[str],
    folder: Path,
    seed: int,
    held_out: bool,
    workers: int = 2,
    backends: Sequence[str] = ("espeak", "flite"),
) -> list[np.ndarray]:
    """Speak `texts` with espeak-ng and flite (or only the given `backends`) in the training (or held-out) voices —
    cached in `folder`, so a re-run only loads — and return 16 kHz float32 waveforms. `folder/speech_manifest.csv`
    records who spoke each clip (split = the folder's name); a cached folder whose manifest names a held-out engine
    is refused before any clip is read."""
    # The pretraining corpus (and its seen/unseen-voice checks) never uses a held-out engine such as piper.
    where = "speech_tower.speak (speech-tower pretraining corpus)"
    require_training_engines(backends, where)
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        refuse_held_out(read_speech_manifest(manifest), where, manifest)
    paths = [folder / f"{i:06d}.wav" for i in range(len(texts))]
    plan = plan_speech(list(zip(texts, paths, strict=True)), list(backends), seed, training_voices(held_out))
    synthesize_all(plan, workers)
    rows = manifest_rows(plan, folder, [p.stem for p in paths], [folder.name] * len(paths))
    write_speech_manifest(manifest, rows)
    waves = []
    for path in paths:
        audio, rate = sf.read(path, dtype="float32")
        waves.append(resample(audio, rate, SAMPLING_RATE).astype(np.float32))
    return waves


def evaluate(model, processor, waves, texts) -> dict[str, float]:
    """CER and WER of greedy decoding against the texts' transcripts."""
    hypotheses = transcribe(model, processor, waves)
    cer, wer = character_error_rate([transcript(t) for t in texts], hypotheses)
    return {"cer": cer, "wer": wer}


# ------------------------------------------------------------------------------------------------ model card

MAX_SHIPPED_MB = 20.0  # the tower ships inside the package: weights (and the whole folder) stay under this
_VOICE_SETS = ("seen_voices", "unseen_voices")


def _parameter_count(weights: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        return sum(int(np.prod(f.get_slice(name).get_shape())) for name in f.keys())  # noqa: SIM118


def _read_train_log(train_log: str | os.PathLike | Sequence[dict] | None) -> list[dict]:
    if train_log is None:
        return []
    if isinstance(train_log, str | os.PathLike):
        lines = Path(train_log).read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    return list(train_log)


def _architecture_rows(config: dict, parameters: int, megabytes: float) -> list[tuple[str, str]]:
    kernels, strides = list(config["conv_kernel"]), list(config["conv_stride"])
    downsampling = int(np.prod(strides))
    norm = "pre-LN" if config.get("do_stable_layer_norm") else "post-LN"
    return [
        ("Architecture", "transformers `Wav2Vec2ForCTC` (character CTC head on a wav2vec 2.0 encoder)"),
        (
            "Feature encoder",
            f"{len(strides)} convolutions (channels {'/'.join(map(str, config['conv_dim']))}, kernels "
            f"{'/'.join(map(str, kernels))}, strides {'/'.join(map(str, strides))}): {downsampling}× down-sampling, "
            f"{SAMPLING_RATE / downsampling:g} frames per second of {SAMPLING_RATE // 1000} kHz audio",
        ),
        (
            "Transformer",
            f"{config['num_hidden_layers']} {norm} layers, width {config['hidden_size']}, "
            f"{config['num_attention_heads']} heads, feed-forward {config['intermediate_size']}; convolutional "
            f"positions (kernel {config['num_conv_pos_embeddings']}, {config['num_conv_pos_embedding_groups']} groups)",
        ),
        (
            "Output",
            f"{config['vocab_size']} symbols: the CTC blank (`<pad>`), `<unk>`, the word delimiter `|`, the "
            "apostrophe and a–z",
        ),
        ("Parameters", f"{parameters / 1e6:.2f} M"),
        ("Size", f"{megabytes:.1f} MB (`model.safetensors`, float32)"),
    ]


def _fresh_eval_lines(fresh: dict | None) -> list[str]:
    command = "python train/eval_speech_tower.py --model <this folder>"
    if fresh is None:
        return [f"On freshly synthesised sentences: `{command}`."]
    rows = [
        f"| {label} | {fresh['sentences']:,} | {fresh[key]['cer']:.2%} | {fresh[key]['wer']:.2%} |"
        for label, key in (("Training voices (seen)", "training_voices"), ("Voices never heard", "held_out_voices"))
    ]
    return [
        "On sentences synthesised afresh — none in the training pool, half radiology and half general, new "
        f"rate and pitch draws — with `{fresh.get('command', command)}`:",
        "",
        "| Voices | Sentences | CER | WER |",
        "|---|---:|---:|---:|",
        *rows,
    ]


def write_speech_tower_card(
    folder: str | os.PathLike,
    metrics: dict,
    command: str | Sequence[str],
    wall_minutes: float,
    hardware: str,
    train_log: str | os.PathLike | Sequence[dict] | None = None,
    *,
    training_args: dict | None = None,
    wall_time_note: str | None = None,
    name: str = "speech-ctc-small",
    fresh_eval: dict | None = None,
) -> Path:
    """Render the model card (`README.md`) of a pretrained speech tower folder and return its path.

    Args:
        folder: the tower (`config.json` and `model.safetensors` must be there already).
        metrics: the run's `final/metrics.json` (`steps`, `train_hours`, `seen_voices` / `unseen_voices` CER, WER).
        command: the command line(s) that produced it, shown verbatim (a resumed run: one line per launch).
        wall_minutes / hardware: how long it took, on what.
        train_log: the run's `train_log.jsonl` (path or records): throughput and the CER curve during training.
        training_args: `train/pretrain_speech.py`'s parsed arguments (pool size, seed, optimiser): the data and
            optimisation details; left out of the card when not given.
        wall_time_note: how `wall_minutes` was obtained, when it is an estimate.
        fresh_eval: `train/eval_speech_tower.py --output` results (freshly synthesised sentences, new voice draws).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from ..data.tts_engines import PITCH_RANGE, RATE_RANGE

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    weights = folder / "model.safetensors"
    megabytes = weights.stat().st_size / 1e6
    parameters = _parameter_count(weights)
    records = _read_train_log(train_log)
    args = dict(training_args or {})
    commands = [command] if isinstance(command, str) else list(command)
    for key in _VOICE_SETS:
        if not {"cer", "wer"} <= set(metrics.get(key, {})):
            raise ValueError(f"metrics lack {key} cer/wer: {metrics}")
    eval_count = args.get("eval_sentences")

    dataset_names = {
        "seen_voices": "Synthetic speech (espeak-ng, flite): held-out sentences, training voices",
        "unseen_voices": "Synthetic speech (espeak-ng, flite): held-out sentences, voices never heard",
    }
    eval_results = [
        EvalResult(
            task_type="automatic-speech-recognition",
            task_name="Speech recognition",
            dataset_type="speechct-synthetic-speech",
            dataset_name=dataset_names[key],
            dataset_config=key,
            dataset_split="eval",
            metric_type=metric,
            metric_name=metric.upper(),
            metric_value=float(metrics[key][metric]),
        )
        for key in _VOICE_SETS
        for metric in ("cer", "wer")
    ]
    data = ModelCardData(
        model_name=name,
        language="en",
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="automatic-speech-recognition",
        tags=["wav2vec2", "ctc", "speech", "synthetic-speech", "speechct-clip", "cpu-trained"],
        metrics=["cer", "wer"],
        eval_results=eval_results,
    )

    voices, held_out = training_voices(), HELD_OUT
    train_sentences = f"{args['num_sentences']:,} sentences" if "num_sentences" in args else "Sentences"
    eval_sentences = f"{eval_count:,} further sentences" if eval_count else "Further sentences"
    lines = [
        f"# {name}",
        "",
        "A small English speech recogniser (character CTC) pretrained from scratch, on a CPU, on synthetic speech "
        "from the espeak-ng and flite engines. It ships inside the `modeling_speechct` package "
        "(`modeling_speechct.training.speech_tower.SHIPPED_SPEECH_TOWER`) as a ready speech tower for "
        "`SpeechCTClipModel`.",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in _architecture_rows(config, parameters, megabytes)),
        "",
        "## How it was made",
        "",
        "### Command",
        "",
        "```bash",
        *commands,
        "```",
        "",
        "### Data",
        "",
        f"- **Training speech**: {train_sentences} (about half CT-RATE-style radiology report sentences, half "
        "everyday English from Faker), each in its spoken form (numbers and units written out) and spoken once: "
        f"**{metrics['train_hours']:.1f} hours** of audio.",
        f"- **Engines and voices**: espeak-ng ({len(voices['espeak'])} voices: {', '.join(voices['espeak'])}) and "
        f"flite ({', '.join(voices['flite'])}), the engines in equal shares; speaking rate ×{RATE_RANGE[0]}–"
        f"{RATE_RANGE[1]} and pitch ×{PITCH_RANGE[0]}–{PITCH_RANGE[1]} drawn per clip.",
        f"- **Evaluation**: {eval_sentences} of the same pool, never trained on, spoken once in the training voices "
        "(fresh rate and pitch draws) and once in voices never heard: "
        f"espeak-ng {', '.join(held_out['espeak'])}; flite {', '.join(held_out['flite'])}.",
        "",
        "### Training",
        "",
        "- **Augmentation** (on the fly, every clip): gain ±6 dB; reverberation by a synthetic exponentially "
        "decaying room response (RT60 0.1–0.6 s) on half the clips; white noise at 10–40 dB SNR; SpecAugment time "
        f"masking (p = {config.get('mask_time_prob')}, spans of {config.get('mask_time_length')} frames).",
    ]
    if {"lr", "warmup_steps", "max_steps", "batch_seconds"} <= set(args):
        lines.append(
            f"- **Optimisation**: CTC loss (mean over the batch), AdamW (lr {args['lr']:g}, weight decay 0.01, "
            f"gradient norm clipped to 1), {args['warmup_steps']} warm-up steps then cosine decay towards step "
            f"{args['max_steps']:,}; duration-bucketed batches of at most {args['batch_seconds']:g} s of padded audio. "
            "A launch resumed with a larger `--max_steps` re-sizes the cosine, so the learning rate steps back up onto "
            "the longer curve there (a warm restart; see the commands above)."
        )
    wall = f"{wall_minutes:.0f} min" + (f" ({wall_time_note})" if wall_time_note else "")
    lines += [
        f"- **Steps**: {metrics['steps']:,}.",
        f"- **Wall time**: {wall}.",
        f"- **Hardware**: {hardware}.",
    ]
    rates = [r["audio_s_per_s"] for r in records if "audio_s_per_s" in r]
    if rates:
        lines.append(f"- **Throughput**: median {np.median(rates):.0f} s of audio per second of training.")
    curve = {r["step"]: r for r in records if "seen_cer" in r}  # a resumed run logs some steps twice: last wins
    if curve:
        lines += [
            "",
            "CER on 100 evaluation sentences in training voices during training:",
            "",
            "| Step | Loss | CER |",
            "|---:|---:|---:|",
            *(f"| {step:,} | {r['loss']:.2f} | {r['seen_cer']:.1%} |" for step, r in sorted(curve.items())),
        ]
    count = f"{eval_count:,}" if eval_count else "—"
    lines += [
        "",
        "## Error rates",
        "",
        "Greedy CTC decoding, no language model, against the lower-case transcript (letters, apostrophe, spaces); "
        "character (CER) and word (WER) error rates over the whole set, with jiwer.",
        "",
        "| Voices | Sentences | CER | WER |",
        "|---|---:|---:|---:|",
        f"| Training voices (seen) | {count} | {metrics['seen_voices']['cer']:.1%} | "
        f"{metrics['seen_voices']['wer']:.1%} |",
        f"| Voices never heard | {count} | {metrics['unseen_voices']['cer']:.1%} | "
        f"{metrics['unseen_voices']['wer']:.1%} |",
        "",
        *_fresh_eval_lines(fresh_eval),
        "",
        "## How to use",
        "",
        "### Standalone",
        "",
        "```python",
        "from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor",
        "from modeling_speechct.training.speech_tower import SHIPPED_SPEECH_TOWER, transcribe",
        "",
        "model = Wav2Vec2ForCTC.from_pretrained(SHIPPED_SPEECH_TOWER)",
        "processor = Wav2Vec2Processor.from_pretrained(SHIPPED_SPEECH_TOWER)",
        "texts = transcribe(model, processor, waves)  # waves: 16 kHz mono float32 numpy arrays",
        "```",
        "",
        "`modeling_speechct.training.speech_tower.load_speech_tower()` returns the same `(model, processor)` pair.",
        "",
        "### As the speech tower of SpeechCTClipModel",
        "",
        "```python",
        "from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor",
        "from modeling_speechct.training.speech_tower import SHIPPED_SPEECH_TOWER",
        "",
        "model = SpeechCTClipModel.from_tower_pretrained(",
        '    teacher="converted-ct-clip/",  # frozen CT and text towers (see the package README)',
        "    speech=str(SHIPPED_SPEECH_TOWER),",
        '    config_kwargs={"speech_trainable_layers": 2},  # fine-tune only the top two layers',
        ")",
        "processor = SpeechCTClipProcessor.from_tower_pretrained(",
        '    speech=str(SHIPPED_SPEECH_TOWER), text="microsoft/BiomedVLP-CXR-BERT-specialized"',
        ")",
        "```",
        "",
        "The encoder's weights load into `model.speech_model` (a `Wav2Vec2Model`); the CTC head (`lm_head`) is "
        "left out.",
        "",
        "## Limitations",
        "",
        "- **Synthetic voices only.** It has heard nothing but two rule-based TTS engines; on human speech (accents, "
        "microphones, rooms, spontaneous speech) its error rates are unmeasured and will be far higher.",
        "- **Not a clinical ASR.** It is a small pretrained encoder for research on speech–CT–text models; it is "
        "not validated to transcribe dictations or any medical record, and must not be used for clinical decisions.",
        "- English, lower-case letters and apostrophes only: no digits, punctuation or casing; greedy decoding "
        "without a language model misspells words it cannot resolve (hence WER far above CER).",
        "- Trained on sentences of at most 140 characters (clips of a few seconds); longer audio is untested.",
        "",
    ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))  # no Jinja: the command is verbatim
    path = folder / "README.md"
    card.save(path)
    return path


__all__ = [
    "SAMPLING_RATE",
    "augment",
    "build_ctc_processor",
    "character_error_rate",
    "ctc_loss_batch",
    "evaluate",
    "load_speech_tower",
    "small_ctc_config",
    "speak",
    "training_voices",
    "transcribe",
    "write_speech_tower_card",
]
