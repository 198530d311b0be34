"""What `train/train_speechclip.py` needs beyond the loop: the model from its towers, rows whose frozen work is cached,
a collator that reads the cached speech layers (or the audio, under LoRA), and validation speech → image recall.

The speech tower and CLIP are frozen, so their work is done once: CLIP's image embedding per image (in the rows)
and every hidden layer of the speech tower per recording (`SpeechLayersCache` on disk, read back per batch). A step
then runs the learnt layer weights, the branch layer and the projections only. With LoRA adapters on the tower
(`--lora_r`) its output changes every step, so nothing of it is cached: `SpeechClipAudioCollator` feeds audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoConfig, AutoFeatureExtractor, CLIPProcessor

from ..data.flickr8k import SpokenCaption
from ..evaluation.speechclip_eval import embed_rows
from ..evaluation.speechclip_metrics import speech_image_retrieval
from ..modeling_speechclip import SpeechClipModel
from ..processing_speechclip import SpeechClipProcessor
from .arguments import LoraArguments
from .embedding_cache import SpeechLayersCache
from .scenes_clip import SHIPPED_SCENES_CLIP, caption_rows
from .teacher import speech_tower_path


@dataclass
class SpeechClipArguments(LoraArguments):
    data_dir: str = field(default="data/scenes", metadata={"help": "Flickr8k-layout folder (scenes built if missing)."})
    num_images: int = field(default=1000, metadata={"help": "Scenes to build when data_dir is missing."})
    clip: str = field(default=str(SHIPPED_SCENES_CLIP), metadata={"help": "A CLIPModel folder or Hub id (frozen)."})
    speech_tower: str = field(default="shipped", metadata={"help": "'shipped', 'whisper-tiny.en' or any audio id."})
    mode: str = "parallel"
    num_keywords: int = 8
    limit_vocabulary: bool = field(default=True, metadata={"help": "Keywords only from the training captions."})
    cif_scaling_steps: int = 0
    speech_layer_norm: bool = field(default=False, metadata={"help": "Layer-norm each hidden layer (large)."})
    frame_stride: int = field(default=1, metadata={"help": "Average this many tower frames before the branch layer."})
    branch_dropout: float = 0.1


def build_speechclip(args: SpeechClipArguments, train_captions: list[str]) -> tuple[SpeechClipModel, Any]:
    """The model (frozen towers from `args.speech_tower` and `args.clip`) and its `SpeechClipProcessor`."""
    speech = speech_tower_path(args.speech_tower)
    clip_processor = CLIPProcessor.from_pretrained(args.clip)
    processor = SpeechClipProcessor(
        AutoFeatureExtractor.from_pretrained(speech), clip_processor.image_processor, clip_processor.tokenizer
    )
    vocabulary = processor.keyword_vocabulary(train_captions) if args.limit_vocabulary else None
    positions = AutoConfig.from_pretrained(args.clip).text_config.max_position_embeddings
    config = {"mode": args.mode, "num_keywords": args.num_keywords, "keyword_vocabulary": vocabulary,
              "cif_scaling_steps": args.cif_scaling_steps, "frame_stride": args.frame_stride,
              "speech_layer_norm": args.speech_layer_norm,
              "branch_dropout": args.branch_dropout,
              "cif_max_tokens": min(75, positions - 2)}  # fmt: skip  # the paper's cap, or what CLIP's text fits
    model = SpeechClipModel.from_tower_pretrained(speech=speech, clip=args.clip, config_kwargs=config)
    return model, processor


@torch.no_grad()
def speechclip_rows(model: SpeechClipModel, processor: Any, captions: list[SpokenCaption]) -> list[dict[str, Any]]:
    """One row per spoken caption: its wav, CLIP's embedding of its image, its image id, its subword count."""
    rows = caption_rows(captions, processor.image_processor)
    pixels = torch.stack([r["pixel_values"] for r in rows])
    embeds = torch.cat([model.get_image_features(pixels[i : i + 256]).pooler_output for i in range(0, len(rows), 256)])
    vocabulary = None if model.quantizer is None else model.quantizer.vocabulary.tolist()
    counts = processor.subword_counts([c.caption for c in captions], vocabulary)
    return [{"wav": str(c.wav), "image_embeds": e, "item_ids": c.item_id, "cif_target_lengths": n}
            for c, e, n in zip(captions, embeds, counts, strict=True)]  # fmt: skip


class SpeechClipCollator:
    """Rows → `SpeechClipModel.forward` keyword arguments, the speech as its cached frozen layers."""

    def __init__(self, cache: SpeechLayersCache):
        self.cache = cache

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        layers, frame_mask = self.cache([r["wav"] for r in rows])
        return {
            "speech_layers": layers,
            "speech_frame_mask": frame_mask,
            "image_embeds": torch.stack([r["image_embeds"] for r in rows]),
            "item_ids": torch.tensor([r["item_ids"] for r in rows]),
            "cif_target_lengths": torch.tensor([r["cif_target_lengths"] for r in rows]),
        }


class SpeechClipAudioCollator:
    """Rows → `SpeechClipModel.forward` keyword arguments with the speech as audio (`speech_values`): the tower runs
    every step (LoRA adapters on it train)."""

    def __init__(self, processor: SpeechClipProcessor):
        self.processor = processor

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        speech = self.processor(audio=[r["wav"] for r in rows])
        return {
            "speech_values": speech["speech_values"],
            "speech_attention_mask": speech["speech_attention_mask"],
            "image_embeds": torch.stack([r["image_embeds"] for r in rows]),
            "item_ids": torch.tensor([r["item_ids"] for r in rows]),
            "cif_target_lengths": torch.tensor([r["cif_target_lengths"] for r in rows]),
        }


def speech_image_scores(model: SpeechClipModel, rows: list[dict[str, Any]], collate: SpeechClipCollator,
                        batch_size: int = 64) -> dict[str, float]:  # fmt: skip
    """Speech → image and image → speech R@1/5/10 of every branch the mode has, over the rows' distinct images."""
    split = embed_rows(model, rows, collate, batch_size)
    scores = {}
    for name, embeds in split.speech.items():
        for direction, recall in speech_image_retrieval(embeds, split.image_embeds, split.item_ids).items():
            scores |= {f"{name}_{direction}_{k}": v for k, v in recall.items()}
    return scores
