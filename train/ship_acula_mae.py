"""Ship a pre-trained spectrogram MAE into the package: AcuLa's unaligned "before" tower of the embedded default.

    python train/ship_acula_mae.py --run outputs/mae_pretrain --minutes 31 \\
        --command "python processing/build_auscultation.py --out data/pretrain --num-patients 1000 --seed 1" \\
        --command "python train/train_acula.py --output_dir outputs/mae_pretrain --audio_tower new --align_weight 0 ..."

Reads `<run>/final/` (an AcuLa folder trained with `--align_weight 0`: the self-supervised term alone) and
`<run>/run_args.json`, keeps its audio tower with the feature extractor, measures the masked-reconstruction loss on
the pre-training set's validation split and the linear probe on the embedded benchmark (`--probe_data`), and
writes `modeling_speechct/pretrained/spectrogram-mae/` atomically with the sha256 pin and a model card.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModel

from modeling_speechct import AcuLaModel, AcuLaProcessor
from modeling_speechct.data.auscultation.manifest import read_manifest
from modeling_speechct.evaluation.acula_eval import evaluate_acula, recording_features
from modeling_speechct.files.provenance import sha256_file, this_machine
from modeling_speechct.hub.publish import staged_folder
from modeling_speechct.training.acula_training import MAE_RECIPE_FILE, SHIPPED_MAE, shipped_mae

CARD = """---
library_name: transformers
license: apache-2.0
pipeline_tag: feature-extraction
tags: [acula, masked-autoencoder, audio, auscultation, synthetic-data, cpu-trained]
---

# spectrogram-mae: AcuLa's pre-trained audio tower on the embedded auscultation benchmark

A `SpectrogramMAEModel` (this package's OPERA-GT-like masked-autoencoder ViT on 64-bin log-mels of 8 s at 16 kHz:
{hidden_size} wide, {layers} layers, {patch} patches, a {decoder}-wide {decoder_layers}-layer decoder, {parameters:,}
parameters), pre-trained from scratch by this project with its masked-reconstruction loss alone (time columns
{mask_time} and frequency rows {mask_frequency} hidden). It is the unaligned "before" tower of AcuLa's embedded
main job (`bash scripts/run_main.sh acula`), the part OPERA-GT plays in the paper. It has heard only procedural
lung, heart and cough sounds: it is a benchmark tower, not a clinical one.

- Data: the self-supervised term sees audio only — {recordings:,} recordings of the training split of a separate
  auscultation build (`--seed {data_seed}`, {patients:,} patients), so no recording of the embedded benchmark's
  seed-0 build (the main job's) was heard in pre-training.
- Recipe: {steps:,} steps of batch {batch}, AdamW lr {lr}, {warmup} warm-up steps, cosine decay; {minutes:.0f} min on
  {hardware}.
- Weights: `model.safetensors`, sha256 `{sha256}` (pinned in `{recipe}`;
  `modeling_speechct.training.acula_training.shipped_mae()` checks it).
- Licence: Apache-2.0, as the package; provenance: trained here, no third-party weights.

| measured | value |
|---|---|
| masked-reconstruction loss, pre-training set validation ({valid_rows} recordings, fixed masks) | {valid_loss:.4f} |
| the same, the untrained tower | {fresh_loss:.4f} |
| probe on the embedded test split, mean AUROC of {n_tasks} tasks (5 seeds) | {probe_mean:.3f} ± {probe_std:.3f} |

Made by:

```bash
{commands}
```
"""


@torch.no_grad()
def reconstruction(tower: torch.nn.Module, features: torch.Tensor, batch_size: int = 64) -> float:
    """Mean masked-patch MSE with masks drawn from a fixed generator (the same masks for every tower)."""
    generator = torch.Generator().manual_seed(0)
    losses = []
    for start in range(0, len(features), batch_size):
        x = features[start : start + batch_size].float()
        losses.append(tower.reconstruction_loss(x, generator=generator).loss.item() * len(x))
    return sum(losses) / len(features)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--command", action="append", required=True, help="a command that made it (in order)")
    parser.add_argument("--minutes", type=float, required=True, help="training wall time")
    parser.add_argument("--probe_data", type=Path, default=Path("data/auscultation"))
    parser.add_argument("--dest", type=Path, default=SHIPPED_MAE)
    parser.add_argument("--hardware", default=None, help="default: this machine")
    args = parser.parse_args(argv)
    final = args.run / "final"
    run = json.loads((args.run / "run_args.json").read_text())
    if run.get("align_weight") != 0:
        raise SystemExit(f"{args.run}: trained with align_weight={run.get('align_weight')}; the shipped tower must "
                         "be unaligned (--align_weight 0)")  # fmt: skip
    model = AutoModel.from_pretrained(final).eval()
    if not isinstance(model, AcuLaModel):
        raise SystemExit(f"{final}: a {type(model).__name__}, not an AcuLa run")
    tower, extractor = model.audio_model, AcuLaProcessor.from_pretrained(str(final)).feature_extractor
    valid = read_manifest(run["data_dir"], "valid")
    features = recording_features(extractor, [str(r.path) for r in valid])
    fresh = type(tower)(tower.config).eval()
    losses = {"valid": reconstruction(tower, features), "fresh": reconstruction(fresh, features)}
    cfg = tower.config
    with staged_folder(args.dest) as staging:
        tower.save_pretrained(staging)
        extractor.save_pretrained(staging)
        probe = evaluate_acula({"shipped": staging}, args.probe_data, progress=False)["models"]["shipped"]["probe"]
        recipe = {"weights_sha256": sha256_file(staging / "model.safetensors"), "training_args": run,
                  "reconstruction_loss": losses, "probe": {k: probe[k] for k in ("mean", "std", "per_task")},
                  "probe_data": str(args.probe_data), "commands": args.command}  # fmt: skip
        (staging / MAE_RECIPE_FILE).write_text(json.dumps(recipe, indent=1) + "\n")
        card = CARD.format(
            hidden_size=cfg.hidden_size, layers=cfg.num_hidden_layers, patch=" × ".join(map(str, cfg.patch_size)),
            decoder=cfg.decoder_hidden_size, decoder_layers=cfg.decoder_num_layers,
            parameters=sum(p.numel() for p in tower.parameters()), mask_time=cfg.mask_ratio_time,
            mask_frequency=cfg.mask_ratio_frequency, recordings=len(read_manifest(run["data_dir"], "train")),
            data_seed=json.loads((Path(run["data_dir"]) / "auscultation.json").read_text())["config"]["seed"],
            patients=json.loads((Path(run["data_dir"]) / "auscultation.json").read_text())["config"]["num_patients"],
            steps=run["max_steps"], batch=run["per_device_batch_size"], lr=run["learning_rate"],
            warmup=run["warmup_steps"], minutes=args.minutes, hardware=args.hardware or this_machine(),
            sha256=recipe["weights_sha256"], recipe=MAE_RECIPE_FILE, valid_rows=len(valid),
            valid_loss=losses["valid"], fresh_loss=losses["fresh"], n_tasks=len(probe["per_task"]),
            probe_mean=probe["mean"], probe_std=probe["std"], commands="\n".join(args.command),
        )  # fmt: skip
        (staging / "README.md").write_text(card)
        shipped_mae(staging)  # the pin holds
    print(f"shipped {final} → {args.dest}: reconstruction {losses['valid']:.4f} (fresh {losses['fresh']:.4f}), "
          f"probe {probe['mean']:.3f} ± {probe['std']:.3f}")  # fmt: skip
    return args.dest


if __name__ == "__main__":
    main()
