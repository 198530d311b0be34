"""Teacher stage: CT ↔ text CLIP (symmetric InfoNCE), producing the frozen towers the distillation uses.

    python train/pretrain.py --output_dir outputs/teacher                      # embedded benchmark, from scratch
    accelerate launch train/pretrain.py train/configs/teacher_ctrate.yaml      # CT-RATE on a GPU cluster
    python train/pretrain.py --output_dir outputs/teacher --resume_from_checkpoint latest
    python train/pretrain.py --output_dir outputs/teacher_text --init_teacher shipped --lock_ct \
        --train_text top --text_trainable_layers 2 ...           # LiT's second stage: CT locked, top text layers tune

Arguments: `modeling_speechct.training.arguments.TeacherArguments` (flags, or one YAML / JSON file).
The final model and processor go to `<output_dir>/final` (safetensors), with `eval_results.json`.
"""

from __future__ import annotations

import json

import torch

from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.evaluation.metrics import mean_auroc
from modeling_speechct.labels import CT_RATE_LABELS
from modeling_speechct.training.arguments import TeacherArguments, parse_arguments, validate
from modeling_speechct.training.benchmark_teacher import init_from_teacher
from modeling_speechct.training.loop import fit, make_accelerator
from modeling_speechct.training.outputs import retrieval_scores, save_final
from modeling_speechct.training.rows import FeatureCollator, teacher_dataset, teacher_rows
from modeling_speechct.training.teacher import build_teacher
from modeling_speechct.zero_shot import pair_probabilities, prompt_pairs, text_prompt_embeddings


def main(argv: list[str] | None = None) -> dict:
    args = parse_arguments(TeacherArguments, argv)
    validate(args)
    accelerator = make_accelerator(args)
    model, processor = build_teacher(
        args.ct_tower,
        args.text_tower,
        args.train_text,
        args.projection_dim,
        args.max_text_length,
        args.speech_tower,
        args.text_trainable_layers,
        args.lock_ct,
    )
    if args.init_teacher is not None:
        init_from_teacher(model, args.init_teacher, args.output_dir)
    rows = {
        split: list(load_ct_rate(args.data_dir, split, speech_root=args.speech_root, require_speech=False))
        for split in (args.train_split, args.eval_split)
    }
    for extra in args.extra_train_dirs:  # volumes-only pools: their train split trains, evaluation stays on data_dir
        rows[args.train_split] += list(load_ct_rate(extra, "train", require_speech=False))
    with accelerator.main_process_first():  # the main process fills the caches, the others read them
        data = {s: teacher_rows(model, processor, r, args.cache_dir, args.cache_ct_values) for s, r in rows.items()}
    collate = FeatureCollator(processor)
    train_collate = FeatureCollator(processor, augment=args.ct_augment)
    eval_rows = data[args.eval_split]

    @torch.no_grad()
    def evaluate(wrapped: torch.nn.Module) -> dict[str, float]:
        """Text → CT retrieval on the validation split (all processes compute, the ranks are the same)."""
        unwrapped = accelerator.unwrap_model(wrapped)
        unwrapped.eval()
        ct, text = [], []
        for start in range(0, len(eval_rows), args.per_device_batch_size):
            batch = collate(eval_rows[start : start + args.per_device_batch_size])
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            out = unwrapped(**batch)
            ct.append(out.ct_embeds)
            text.append(out.text_embeds)
        ct = torch.cat(ct)
        prompts = text_prompt_embeddings(unwrapped, processor, prompt_pairs(CT_RATE_LABELS))
        probabilities = pair_probabilities(ct, *prompts, unwrapped.logit_scale.exp().item()).cpu().numpy()
        labels = torch.stack([r["labels"] for r in eval_rows]).numpy()
        auroc = mean_auroc(labels, probabilities)
        return {"zero_shot_auroc": auroc, **retrieval_scores(torch.cat(text), ct, prefix="text_ct_")}

    result = fit(model, teacher_dataset(data[args.train_split]), train_collate, args, accelerator, evaluate)
    final = save_final(accelerator, model, processor, args, result)
    accelerator.print(json.dumps(result, indent=1))
    accelerator.print(f"teacher saved to {final}")
    return result


if __name__ == "__main__":
    main()
