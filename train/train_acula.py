"""Train AcuLa: an audio tower aligned to a frozen text teacher's embeddings of clinical reports, with its own
masked-spectrogram loss kept (the embedded auscultation benchmark by default).

    python train/train_acula.py --output_dir outputs/acula_both --max_steps 500
    python train/train_acula.py --output_dir outputs/acula_ssl --align_weight 0        # self-supervised only
    python train/train_acula.py --output_dir outputs/acula_align --ssl_weight 0        # alignment only
    accelerate launch train/train_acula.py --data_dir /data/icbhi --audio_tower outputs/mae/final ...

Builds the benchmark into --data_dir when it has no manifest, writes the reports once from the dataset's template
(leak-checked), computes every report's teacher embedding once, and trains in the package's loop (checkpoints,
exact resume). Validation: audio ↔ report R@k. Writes `<output_dir>/final` (model + processor).
Arguments: `modeling_speechct.training.acula_training.AcuLaArguments`.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers.utils import logging as hf_logging

from modeling_speechct.data.auscultation.benchmark import AuscultationConfig, build_auscultation
from modeling_speechct.data.auscultation.manifest import MANIFEST
from modeling_speechct.training.acula_training import (
    AcuLaArguments,
    acula_rows,
    audio_report_scores,
    build_acula,
    collate_acula,
    ensure_reports,
)
from modeling_speechct.training.arguments import parse_arguments, validate
from modeling_speechct.training.loop import fit, make_accelerator
from modeling_speechct.training.outputs import save_model_folder
from modeling_speechct.training.rows import RowDataset


def main(argv: list[str] | None = None) -> dict:
    hf_logging.disable_progress_bar()
    args = parse_arguments(AcuLaArguments, argv)
    validate(args)
    data = Path(args.data_dir)
    accelerator = make_accelerator(args)
    with accelerator.main_process_first():
        if not (data / MANIFEST).is_file():
            build_auscultation(AuscultationConfig(out=data, seed=args.seed))
        ensure_reports(data)
    model, processor = build_acula(args)
    rows = {split: acula_rows(model, processor, data, split) for split in (args.train_split, args.eval_split)}

    def evaluate(wrapped):
        return audio_report_scores(accelerator.unwrap_model(wrapped), rows[args.eval_split])

    result = fit(model, RowDataset(rows[args.train_split]), collate_acula, args, accelerator, evaluate)
    final = save_model_folder(accelerator, model, processor, args, result)
    accelerator.print(json.dumps(result, indent=1))
    accelerator.print(f"saved to {final}")
    return result


if __name__ == "__main__":
    main()
