"""Train SpeechCLIP / SpeechCLIP+ on spoken captions (the embedded scenes by default) against a frozen CLIP.

    python train/train_speechclip.py --output_dir outputs/speechclip_parallel --mode parallel --max_steps 1000
    python train/train_speechclip.py --output_dir outputs/speechclip_hybrid --mode hybrid_plus --cif_scaling_steps 200
    accelerate launch train/train_speechclip.py --data_dir /data/flickr8k --clip openai/clip-vit-base-patch32 \\
        --speech_tower facebook/hubert-base-ls960 --mode cascaded ...
    python train/train_speechclip.py ... --lora_r 8 --merge_lora        # LoRA on the speech tower's attention

Builds the scenes (with speech) into --data_dir when missing, caches CLIP's image embeddings and every hidden layer
of the frozen speech tower, and trains the layer weights and branches in the package's loop (checkpoints, exact
resume). With `--lora_r` the tower gains LoRA adapters on every layer's attention and runs each step on the audio
(nothing of it cached); the adapters are merged (`--merge_lora`) or saved in `<final>/adapter`. Validation: speech ↔
image R@k of each branch. Writes `<output_dir>/final` (model + processor).
Arguments: `modeling_speechct.training.speechclip_training.SpeechClipArguments`.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers.utils import logging as hf_logging

from modeling_speechct.data.flickr8k import load_flickr8k
from modeling_speechct.data.scenes_build import ScenesConfig, build_scenes
from modeling_speechct.training.arguments import parse_arguments, validate
from modeling_speechct.training.embedding_cache import SpeechLayersCache
from modeling_speechct.training.loop import fit, make_accelerator
from modeling_speechct.training.lora import add_speech_lora, finalize_lora, place_adapter
from modeling_speechct.training.outputs import save_model_folder
from modeling_speechct.training.rows import RowDataset
from modeling_speechct.training.speechclip_training import (
    SpeechClipArguments,
    SpeechClipAudioCollator,
    SpeechClipCollator,
    build_speechclip,
    speech_image_scores,
    speechclip_rows,
)


def main(argv: list[str] | None = None) -> dict:
    hf_logging.disable_progress_bar()  # a report: the stage bars, not a bar per weights file loaded
    args = parse_arguments(SpeechClipArguments, argv)
    validate(args)
    data = Path(args.data_dir)
    if not (data / "speech_manifest.csv").is_file():
        build_scenes(ScenesConfig(out=data, num_images=args.num_images, seed=args.seed))
    captions = {split: load_flickr8k(data, split) for split in ("train", "valid")}
    model, processor = build_speechclip(args, [c.caption for c in captions["train"]])
    accelerator = make_accelerator(args)
    with accelerator.main_process_first():  # CLIP's image embeddings; the main process fills the caches first
        rows = {split: speechclip_rows(model, processor, c) for split, c in captions.items()}
        if args.lora_r:  # the tower changes every step: it runs on the audio
            model = add_speech_lora(model, args.lora_r, args.lora_alpha, args.lora_dropout)
            collate = SpeechClipAudioCollator(processor)
        else:
            cache = SpeechLayersCache(args.cache_dir, model, processor)
            for split_rows in rows.values():
                cache([r["wav"] for r in split_rows])
            collate = SpeechClipCollator(cache)

    def evaluate(wrapped):
        return speech_image_scores(accelerator.unwrap_model(wrapped), rows["valid"], collate)

    result = fit(model, RowDataset(rows["train"]), collate, args, accelerator, evaluate)
    to_save = finalize_lora(accelerator.unwrap_model(model), args.output_dir, args.merge_lora) if args.lora_r else None
    final = save_model_folder(accelerator, model, processor, args, result, model_to_save=to_save)
    place_adapter(args.output_dir, final, accelerator.is_main_process)  # load: lora.from_pretrained_with_adapter
    accelerator.print(json.dumps(result, indent=1))
    accelerator.print(f"saved to {final}")
    return result


if __name__ == "__main__":
    main()
