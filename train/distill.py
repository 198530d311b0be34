"""Student stage: the speech tower learns the teacher's space — InfoNCE(speech, CT) + λ · (1 − cos(speech, text)).

    python train/distill.py --output_dir outputs/distilled --teacher outputs/teacher/final --distill_weight 1
    python train/distill.py --output_dir outputs/naive --teacher outputs/teacher/final --distill_weight 0
    accelerate launch --config_file train/configs/ddp.yaml train/distill.py train/configs/distill_ctrate.yaml
    python train/distill.py ... --lora_r 8 --merge_lora        # LoRA on the speech tower's attention

Arguments: `modeling_speechct.training.arguments.DistillArguments` (flags, or one YAML / JSON file). The CT and text
towers are frozen: their embeddings, and the output of the speech tower's frozen lower layers, are computed once
into `--cache_dir`, so a step runs only the trainable top layers, pooling and projection. Gradients of the
contrastive loss flow through the embeddings gathered from every process, so the global batch gives the negatives.
"""

from __future__ import annotations

import json

import torch

from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.training.arguments import DistillArguments, parse_arguments, validate
from modeling_speechct.training.loop import fit, make_accelerator
from modeling_speechct.training.lora import add_speech_lora, finalize_lora, place_adapter
from modeling_speechct.training.outputs import retrieval_scores, save_final
from modeling_speechct.training.rows import FeatureCollator, VoiceSampledRows, student_rows
from modeling_speechct.training.teacher import build_student, speech_tower_summary


def main(argv: list[str] | None = None, stop_after: int | None = None) -> dict:
    args = parse_arguments(DistillArguments, argv)
    validate(args)
    accelerator = make_accelerator(args)  # seeds torch before the student is built
    model, processor = build_student(
        args.teacher,
        args.speech_tower,
        args.speech_trainable_layers,
        args.speech_pooling,
        args.distill_weight,
        speech_pooling_stride=args.speech_pooling_stride,
        distill_loss=args.distill_loss,
    )
    rows = {
        split: list(load_ct_rate(args.data_dir, split, speech_root=args.speech_root))
        for split in (args.train_split, args.eval_split)
    }
    with accelerator.main_process_first():  # the main process fills the caches, the others read them
        data = {  # several voices per report train; validation hears each report once, in its primary voice
            split: student_rows(
                model,
                processor,
                r,
                args.cache_dir,
                cache_ct_values=True,
                all_voices=args.all_voices and split == args.train_split,
            )
            for split, r in rows.items()
        }
    if args.lora_r:
        model = add_speech_lora(model, args.lora_r, args.lora_alpha, args.lora_dropout)
    accelerator.print(speech_tower_summary(model))
    collate = FeatureCollator()
    eval_rows = data[args.eval_split]

    @torch.no_grad()
    def evaluate(wrapped: torch.nn.Module) -> dict[str, float]:
        """Spoken report → CT retrieval on the validation split, each process encoding its share of the rows."""
        unwrapped = accelerator.unwrap_model(wrapped)
        unwrapped.eval()
        speech, ct = [], []
        # Equal shares (the last row repeated to fill), gathered rank-major: the first len(eval_rows) are the rows.
        share = -(-len(eval_rows) // accelerator.num_processes)
        padded = eval_rows + eval_rows[-1:] * (share * accelerator.num_processes - len(eval_rows))
        mine = padded[accelerator.process_index * share : (accelerator.process_index + 1) * share]
        for start in range(0, len(mine), args.per_device_batch_size):
            batch = collate(mine[start : start + args.per_device_batch_size])
            prefix = batch["speech_prefix"].to(accelerator.device)
            speech.append(unwrapped.get_speech_features_from_prefix(prefix, batch_size=batch["ct_embeds"].shape[0]))
            ct.append(batch["ct_embeds"].to(accelerator.device))
        speech = accelerator.gather_for_metrics(torch.cat(speech))[: len(eval_rows)]
        ct = accelerator.gather_for_metrics(torch.cat(ct))[: len(eval_rows)]
        return retrieval_scores(speech, ct, prefix="speech_ct_")

    train_rows = VoiceSampledRows(data[args.train_split], args.seed)
    result = fit(model, train_rows, collate, args, accelerator, evaluate, stop_after)
    if stop_after is not None and result["step"] < (args.max_steps if args.max_steps > 0 else float("inf")):
        return result  # "killed": no final model
    to_save = finalize_lora(accelerator.unwrap_model(model), args.output_dir, args.merge_lora) if args.lora_r else None
    final = save_final(accelerator, model, processor, args, result, "SpeechCT-CLIP student", model_to_save=to_save)
    place_adapter(args.output_dir, final, accelerator.is_main_process)  # load: lora.from_pretrained_with_adapter
    accelerator.print(json.dumps(result, indent=1))
    accelerator.print(f"student saved to {final}")
    return result


if __name__ == "__main__":
    main()
