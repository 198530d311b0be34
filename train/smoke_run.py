"""Smoke run of the whole model on a CPU: build a tiny SpeechCT-CLIP, fit the distillation objective on one fixed
synthetic batch, save it as a Hub folder and reload it both ways (installed package and trust_remote_code).

This is the main job until the benchmark and `train/distill.py` land; it proves the model trains, saves and loads.

    python train/smoke_run.py --output_dir outputs/smoke --steps 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModel

from modeling_speechct import SpeechCTClipModel
from modeling_speechct.training.tiny import tiny_speechct_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="outputs/smoke")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--distill_weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = SpeechCTClipModel(tiny_speechct_config(distill_weight=args.distill_weight, speech_pooling="attention"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    total = sum(p.numel() for p in model.parameters())
    print(f"model: {total:,} parameters, {sum(p.numel() for p in trainable):,} trainable (speech student)")

    b = args.batch_size
    batch = {
        "ct_values": torch.randn(b, 1, 8, 32, 32),
        "speech_values": torch.randn(b, 960),  # 60 ms at 16 kHz: four 20 ms windows with 5 ms overlap
        "input_ids": torch.randint(1, 100, (b, 12)),
    }
    optimizer = torch.optim.AdamW(trainable, lr=3e-3)
    model.train()
    start = time.perf_counter()
    for step in range(args.steps + 1):
        out = model(**batch, return_loss=True)
        if step % 10 == 0 or step == args.steps:
            print(
                f"step {step:3d}  loss {out.loss.item():.4f}  InfoNCE(speech,CT) {out.contrastive_loss.item():.4f}  "
                f"1-cos(speech,text) {out.distill_loss.item():.4f}"
            )
        if step < args.steps:
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s")

    out_dir = Path(args.output_dir)
    model.save_pretrained(out_dir)
    model.eval()
    with torch.no_grad():
        expected = model(**batch)
        installed = AutoModel.from_pretrained(out_dir).eval()
        remote = AutoModel.from_pretrained(out_dir, trust_remote_code=True).eval()
        for name, loaded in (("AutoModel", installed), ("AutoModel, trust_remote_code", remote)):
            got = loaded(**batch)
            diff = max(
                (getattr(got, f) - getattr(expected, f)).abs().max().item()
                for f in ("ct_embeds", "speech_embeds", "text_embeds")
            )
            print(f"reload via {name:<30} max |Δ embedding| = {diff:.1e}")
    accuracy = (expected.logits_speech_ct.argmax(dim=1) == torch.arange(b)).float().mean().item()
    print(f"speech→CT top-1 on the fitted batch: {accuracy:.2f} (chance {1 / b:.2f}); checkpoint in {out_dir}")


if __name__ == "__main__":
    main()
