"""Ship a trained scenes CLIP into the package (weights, processor, recipe with the sha256 pin, model card).

    python train/ship_scenes_clip.py --run outputs/scenes_clip \\
        --command "python train/train_scenes_clip.py --output_dir outputs/scenes_clip --max_steps 1500 ..."

Reads `<run>/final/` and `<run>/run_args.json`, measures caption → image recall on the scenes' validation and test
splits, and writes `modeling_speechct/pretrained/scenes-clip/` atomically (checked by loading it back).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from transformers import CLIPModel, CLIPProcessor

from modeling_speechct.data.flickr8k import load_flickr8k
from modeling_speechct.files.provenance import sha256_file, this_machine
from modeling_speechct.hub.publish import staged_folder
from modeling_speechct.training.scenes_clip import (
    RECIPE_FILE,
    SHIPPED_SCENES_CLIP,
    WEIGHTS_FILE,
    CaptionImageCollator,
    caption_rows,
    load_scenes_clip,
    text_image_recall,
)

CARD = """---
language: en
library_name: transformers
license: apache-2.0
pipeline_tag: zero-shot-image-classification
tags: [clip, speechclip, synthetic-data, cpu-trained]
---

# scenes-clip: the frozen CLIP of SpeechCLIP's embedded default

A small `CLIPModel` (ViT over {image_size} × {image_size} images in {patch_size} × {patch_size} patches and a causal
text transformer, {hidden_size} wide, {num_layers} layers each, {projection_dim}-d joint space, {parameters:,}
parameters) with a CLIP BPE tokenizer of {vocab_size} subwords, both trained from scratch by this project on its
procedural scenes benchmark (`processing/build_scenes.py`: one to three coloured shapes, five grammar captions per
image). SpeechCLIP
bridges speech to a *frozen* CLIP; offline there is none for these scenes, so this one plays OpenAI's part, as the
package's benchmark teacher plays CT-CLIP's. Users who are online pass `openai/clip-vit-base-patch32` instead.

- Data: {num_images:,} scenes (seed {seed}); trained on the training split's captions.
- Recipe: CLIP's symmetric contrastive loss, {max_steps} steps of batch {batch}, AdamW lr {lr}, {warmup} warm-up
  steps, cosine decay; {minutes:.1f} min on {hardware}.
- Weights: `model.safetensors`, sha256 `{sha256}` (pinned in `{recipe}`; `load_scenes_clip()` checks it).
- Licence: Apache-2.0, as the package; provenance: trained here, no third-party weights.

| caption → image (distinct images of the split) | R@1 | R@5 | R@10 |
|---|---|---|---|
| validation ({valid_images} images) | {valid[R@1]:.3f} | {valid[R@5]:.3f} | {valid[R@10]:.3f} |
| test ({test_images} images) | {test[R@1]:.3f} | {test[R@5]:.3f} | {test[R@10]:.3f} |

Recall is bounded well below 1 by the captions themselves: most name one object of up to three, and many images share
a caption ("the cross is purple"); validation R@10 plateaued from step 1,250 (0.494 → 0.490 at 1,500).

Made by:

```bash
{commands}
```
"""


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--command", action="append", required=True, help="a command that made it (in order)")
    parser.add_argument("--dest", type=Path, default=SHIPPED_SCENES_CLIP)
    parser.add_argument("--minutes", type=float, required=True, help="training wall time")
    parser.add_argument("--hardware", default=None, help="default: this machine")
    args = parser.parse_args(argv)
    final = args.run / "final"
    if not (final / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{final} holds no finished CLIP: let the run finish first")
    run = json.loads((args.run / "run_args.json").read_text())
    model, processor = CLIPModel.from_pretrained(final).eval(), CLIPProcessor.from_pretrained(final)
    collate = CaptionImageCollator(processor.tokenizer, run["max_text_length"])
    scores, sizes = {}, {}
    for split in ("valid", "test"):
        captions = load_flickr8k(run["data_dir"], split, check_files=False)
        scores[split] = text_image_recall(model, caption_rows(captions, processor.image_processor), collate)
        sizes[split] = len({c.item_id for c in captions})
    scenes = json.loads((Path(run["data_dir"]) / "scenes.json").read_text())["config"]
    with staged_folder(args.dest) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        recipe = {"weights_sha256": sha256_file(staging / WEIGHTS_FILE), "training_args": run, "scenes": scenes,
                  "recall": scores, "commands": args.command}  # fmt: skip
        (staging / RECIPE_FILE).write_text(json.dumps(recipe, indent=1) + "\n")
        card = CARD.format(
            image_size=run["image_size"], patch_size=run["patch_size"], hidden_size=run["hidden_size"],
            num_layers=run["num_layers"], projection_dim=run["projection_dim"],
            parameters=sum(p.numel() for p in model.parameters()), vocab_size=len(processor.tokenizer),
            num_images=scenes["num_images"], seed=scenes["seed"], max_steps=run["max_steps"],
            batch=run["per_device_batch_size"], lr=run["learning_rate"], warmup=run["warmup_steps"],
            minutes=args.minutes, hardware=args.hardware or this_machine(), sha256=recipe["weights_sha256"],
            recipe=RECIPE_FILE, valid=scores["valid"], test=scores["test"], valid_images=sizes["valid"],
            test_images=sizes["test"], commands="\n".join(args.command),
        )  # fmt: skip
        (staging / "README.md").write_text(card)
        load_scenes_clip(staging)  # the shipped folder loads and its pin holds
    print(f"shipped {final} → {args.dest}: test caption → image R@1 {scores['test']['R@1']:.3f}")
    return args.dest


if __name__ == "__main__":
    main()
