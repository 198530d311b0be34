"""Train the small CLIP of SpeechCLIP's embedded default on the scenes benchmark (its frozen image + text towers).

    python train/train_scenes_clip.py --output_dir outputs/scenes_clip --max_steps 1500
    python train/train_scenes_clip.py --output_dir outputs/scenes_clip --max_steps 1500 --resume_from_checkpoint latest

Builds the scenes into --data_dir when missing (images and captions; speech is built by the SpeechCLIP stages),
trains a BPE tokenizer on the training captions, then CLIP's contrastive loss through the package's training loop
(checkpoints, exact resume). Writes `<output_dir>/final` (model + processor, safetensors) and prints validation
caption → image recall. Arguments: `modeling_speechct.training.scenes_clip.ScenesClipArguments`.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPModel, CLIPProcessor, CLIPTokenizer
from transformers.utils import logging as hf_logging

from modeling_speechct.data.clip_tokenizer import train_clip_tokenizer
from modeling_speechct.data.flickr8k import load_flickr8k
from modeling_speechct.data.scenes_build import ScenesConfig, build_scenes
from modeling_speechct.training.arguments import parse_arguments, validate
from modeling_speechct.training.loop import fit, make_accelerator
from modeling_speechct.training.outputs import save_model_folder
from modeling_speechct.training.rows import RowDataset
from modeling_speechct.training.scenes_clip import (
    CaptionImageCollator,
    ScenesClipArguments,
    caption_rows,
    clip_image_processor,
    scenes_clip_config,
    text_image_recall,
)


def main(argv: list[str] | None = None) -> dict:
    hf_logging.disable_progress_bar()  # a report: the stage bars, not a bar per weights file loaded
    args = parse_arguments(ScenesClipArguments, argv)
    validate(args)
    data = Path(args.data_dir)
    if not (data / "flickr_audio" / "wav2capt.txt").is_file():
        build_scenes(ScenesConfig(out=data, num_images=args.num_images, image_size=args.image_size, seed=args.seed,
                                  speech=False))  # fmt: skip
    captions = {split: load_flickr8k(data, split, check_files=False) for split in ("train", "valid")}
    tokenizer_dir = Path(args.output_dir) / "tokenizer"
    if (tokenizer_dir / "vocab.json").is_file():  # a resumed run keeps its vocabulary
        tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    else:
        tokenizer = train_clip_tokenizer([r.caption for r in captions["train"]], args.vocab_size, tokenizer_dir)
    images = clip_image_processor(args.image_size)
    rows = {split: caption_rows(c, images) for split, c in captions.items()}
    accelerator = make_accelerator(args)
    model = CLIPModel(scenes_clip_config(args, tokenizer))
    collate = CaptionImageCollator(tokenizer, args.max_text_length)

    def evaluate(wrapped):
        return text_image_recall(accelerator.unwrap_model(wrapped), rows["valid"], collate)

    result = fit(model, RowDataset(rows["train"]), collate, args, accelerator, evaluate)
    processor = CLIPProcessor(image_processor=images, tokenizer=tokenizer)
    final = save_model_folder(accelerator, model, processor, args, result)
    accelerator.print(json.dumps(result, indent=1))
    accelerator.print(f"CLIP saved to {final}")
    return result


if __name__ == "__main__":
    main()
