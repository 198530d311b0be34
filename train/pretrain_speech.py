"""CTC-pretrain the small speech tower on synthetic speech, resumably, within a time budget.

    python train/pretrain_speech.py --output_dir outputs/speech_tower --max_minutes 40
    accelerate launch train/pretrain_speech.py ...            # the same on several processes / a GPU

1. A pool of distinct sentences (CT-RATE-style report sentences and everyday English, in spoken form) is spoken
   by espeak-ng and flite in the training voices (cached under --data_dir; re-running reuses it); evaluation
   sentences are spoken both in training voices and in held-out voices.
2. Training: duration-bucketed batches of augmented clips (gain, reverberation, noise), CTC loss, AdamW with
   warm-up and cosine decay; `accelerator.save_state` checkpoints (written to a temporary folder, then renamed)
   every --save_every steps; --resume continues from the latest one.
3. The final model, processor and metrics (CER / WER, greedy decoding, seen and unseen voices) go to
   --output_dir/final.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import torch
from accelerate import Accelerator
from transformers import Wav2Vec2ForCTC, get_cosine_schedule_with_warmup

from modeling_speechct.data.speech_corpus import sentence_pool, transcript
from modeling_speechct.training.speech_pretraining import batches, speech_pretraining_parser
from modeling_speechct.training.speech_tower import (
    SAMPLING_RATE,
    augment,
    build_ctc_processor,
    ctc_loss_batch,
    evaluate,
    small_ctc_config,
    speak,
)


def main() -> None:
    args = speech_pretraining_parser(__doc__).parse_args()

    accelerator = Accelerator()
    torch.manual_seed(args.seed)
    pool = [text for text, _ in sentence_pool(args.num_sentences + args.eval_sentences, args.seed)]
    train_texts, eval_texts = pool[: args.num_sentences], pool[args.num_sentences :]
    start = time.perf_counter()
    train_waves = speak(train_texts, args.data_dir / "train", args.seed, False, args.workers)
    seen = speak(eval_texts, args.data_dir / "eval_seen", args.seed + 1, False, args.workers)
    unseen = speak(eval_texts, args.data_dir / "eval_unseen", args.seed + 2, True, args.workers)
    durations = np.array([len(w) / SAMPLING_RATE for w in train_waves])
    accelerator.print(
        f"data: {len(train_waves)} clips, {durations.sum() / 3600:.2f} h, ready in {time.perf_counter() - start:.0f} s"
    )

    processor = build_ctc_processor(args.output_dir / "processor")
    labels = [processor.tokenizer(transcript(t)).input_ids for t in train_texts]
    model = Wav2Vec2ForCTC(small_ctc_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = get_cosine_schedule_with_warmup(optimizer, args.warmup_steps, args.max_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    checkpoints = args.output_dir / "checkpoints"
    step = 0
    if args.resume and checkpoints.is_dir() and (latest := sorted(checkpoints.glob("step_*"))):
        accelerator.load_state(str(latest[-1]))
        step = json.loads((latest[-1] / "progress.json").read_text())["step"]
        accelerator.print(f"resumed from {latest[-1]} at step {step}")

    generator = torch.Generator().manual_seed(args.seed + step)
    rng = np.random.default_rng([args.seed, step])
    log = (args.output_dir / "train_log.jsonl").open("a")
    deadline = time.perf_counter() + 60 * args.max_minutes
    audio_seconds, window_start = 0.0, time.perf_counter()
    model.train()
    while step < args.max_steps and time.perf_counter() < deadline:
        for indices in batches(durations, args.batch_seconds, rng)[
            accelerator.process_index :: accelerator.num_processes
        ]:
            waves = [augment(torch.from_numpy(train_waves[i]), generator) for i in indices]
            loss = ctc_loss_batch(model, waves, [labels[i] for i in indices])
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            audio_seconds += float(durations[indices].sum())
            if step % 20 == 0 or step % args.eval_every == 0:
                rate = audio_seconds / (time.perf_counter() - window_start)
                record = {"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0], "audio_s_per_s": rate}
                if step % args.eval_every == 0:
                    scores = evaluate(model, processor, seen[:100], eval_texts[:100])
                    record.update({f"seen_{k}": v for k, v in scores.items()})
                accelerator.print(json.dumps(record))
                log.write(json.dumps(record) + "\n")
                log.flush()
                audio_seconds, window_start = 0.0, time.perf_counter()
            if step % args.save_every == 0 and accelerator.is_main_process:
                tmp = checkpoints / f".tmp_step_{step:06d}"
                accelerator.save_state(str(tmp))
                (tmp / "progress.json").write_text(json.dumps({"step": step}))
                tmp.rename(checkpoints / f"step_{step:06d}")
                for old in sorted(checkpoints.glob("step_*"))[:-2]:
                    shutil.rmtree(old)
            if step >= args.max_steps or time.perf_counter() >= deadline:
                break

    final = args.output_dir / "final"
    unwrapped = accelerator.unwrap_model(model)
    metrics = {
        "steps": step,
        "train_hours": float(durations.sum() / 3600),
        "seen_voices": evaluate(unwrapped, processor, seen, eval_texts),
        "unseen_voices": evaluate(unwrapped, processor, unseen, eval_texts),
    }
    if accelerator.is_main_process:
        unwrapped.save_pretrained(final)
        processor.save_pretrained(final)
        (final / "metrics.json").write_text(json.dumps(metrics, indent=1))
    accelerator.print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
