"""A small CLIP trained on the scenes benchmark: the frozen image + text towers of SpeechCLIP's embedded default.

SpeechCLIP bridges speech to a *pretrained* CLIP; offline there is none for our scenes, so we train one, as the CT
teacher is trained for the CT benchmark: a ViT over 64 × 64 images (8 × 8 patches) and a causal text transformer
over a BPE vocabulary learnt from the training captions (`data.clip_tokenizer`), contrasted with CLIP's own loss
(`CLIPModel(return_loss=True)`) in the package's training loop. `train/train_scenes_clip.py` runs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import CLIPConfig

from ..data.flickr8k import SpokenCaption
from ..evaluation.metrics import recall_at_k, retrieval_ranks
from .arguments import CommonArguments


@dataclass
class ScenesClipArguments(CommonArguments):
    data_dir: str = field(default="data/scenes", metadata={"help": "Flickr8k-layout scenes (built if missing)."})
    num_images: int = field(default=4000, metadata={"help": "Scenes to build when data_dir is missing."})
    vocab_size: int = 320
    image_size: int = 64
    patch_size: int = 8
    hidden_size: int = 128
    num_layers: int = 3
    projection_dim: int = 128
    max_text_length: int = 32

    def problems(self) -> list[str]:
        found = super().problems()
        if self.image_size % self.patch_size:
            found.append(f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}")
        return found


def clip_image_processor(size: int):
    """CLIP's image processor at `size` pixels, on its PIL backend (the default one needs torchvision)."""
    try:  # transformers ≥ 5.2x names the PIL backend
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:  # earlier releases: the PIL-based processor is the default one
        from transformers import CLIPImageProcessor as Processor
    return Processor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def scenes_clip_config(args: ScenesClipArguments, tokenizer: Any) -> CLIPConfig:
    """The CLIP of `args`, its text side sized to `tokenizer` ([SOT] / [EOT] its last two ids)."""
    width = args.hidden_size
    common = dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=args.num_layers,
                  num_attention_heads=max(1, width // 32))  # fmt: skip
    text = dict(common, vocab_size=len(tokenizer), max_position_embeddings=args.max_text_length,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    vision = dict(common, image_size=args.image_size, patch_size=args.patch_size)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=args.projection_dim)


class CaptionImageCollator:
    """Rows `(pixel_values (3, H, W), caption)` → a batch for `CLIPModel`: captions padded to the longest."""

    def __init__(self, tokenizer: Any, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        text = self.tokenizer([r["caption"] for r in rows], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt")  # fmt: skip
        return {
            "pixel_values": torch.stack([r["pixel_values"] for r in rows]),
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
        }


def caption_rows(captions: list[SpokenCaption], image_processor: Any) -> list[dict[str, Any]]:
    """One row per caption with its image preprocessed once per image."""
    from PIL import Image

    pixels: dict[Any, torch.Tensor] = {}
    rows = []
    for row in captions:
        if row.image not in pixels:
            with Image.open(row.image) as image:
                pixels[row.image] = image_processor(image.convert("RGB"), return_tensors="pt")["pixel_values"][0]
        rows.append({"pixel_values": pixels[row.image], "caption": row.caption, "item_id": row.item_id})
    return rows


@torch.no_grad()
def text_image_recall(model: Any, rows: list[dict[str, Any]], collate: CaptionImageCollator,
                      batch_size: int = 256) -> dict[str, float]:  # fmt: skip
    """Caption → image R@1/5/10 over the rows' distinct images (the figure the SpeechCLIP bars are set against)."""
    model.eval()
    text, image, ids = [], {}, []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        batch = {k: v.to(model.device) for k, v in collate(chunk).items()}
        text.append(model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output.float().cpu())
        new = [i for i, r in enumerate(chunk) if r["item_id"] not in image]
        if new:
            features = model.get_image_features(batch["pixel_values"][new]).pooler_output.float().cpu()
            image.update({chunk[i]["item_id"]: f for i, f in zip(new, features, strict=True)})
        ids += [r["item_id"] for r in chunk]
    gallery_ids = np.array(sorted(image))
    gallery = torch.stack([image[i] for i in gallery_ids]).numpy()
    ranks = retrieval_ranks(torch.cat(text).numpy(), gallery, np.array(ids), gallery_ids)
    return recall_at_k(ranks, (1, 5, 10))


SHIPPED_SCENES_CLIP = Path(__file__).parents[1] / "pretrained" / "scenes-clip"
RECIPE_FILE = "scenes_clip_recipe.json"
WEIGHTS_FILE = "model.safetensors"


def load_scenes_clip(folder: str | os.PathLike = SHIPPED_SCENES_CLIP):
    """The shipped scenes CLIP `(CLIPModel, CLIPProcessor)`, after checking its weights against the sha256 its
    recipe pins (a changed or truncated file is refused rather than loaded)."""
    from transformers import CLIPModel, CLIPProcessor

    from ..files.provenance import require_pinned_weights

    folder = require_pinned_weights(folder, RECIPE_FILE, WEIGHTS_FILE)
    return CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
