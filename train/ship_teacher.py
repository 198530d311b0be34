"""Ship a trained benchmark teacher into the package (learnt tensors, recipe, model card).

    python train/ship_teacher.py --run outputs/teacher_shipped_run \\
        --command "python processing/build_benchmark.py --out data/teacher_pool ..." \\
        --command "python train/pretrain.py --output_dir outputs/teacher_shipped_run ..." \\
        [--hardware "2 CPU cores (...)"] [--dest modeling_speechct/pretrained/benchmark-teacher]

Reads `<run>/final/` (the teacher folder), `<run>/run_args.json` and the validation scores `train/pretrain.py`
logged to TensorBoard under `<run>/runs/`. The shipped folder is checked by assembling it back before it replaces the
old one (see `modeling_speechct.training.benchmark_teacher`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modeling_speechct.files.provenance import this_machine
from modeling_speechct.training.benchmark_teacher import SHIPPED_TEACHER, export_teacher, read_eval_history


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="train/pretrain.py's output_dir")
    parser.add_argument("--command", action="append", required=True, help="a command that made it (in order)")
    parser.add_argument("--dest", type=Path, default=SHIPPED_TEACHER)
    parser.add_argument("--wall_minutes", type=float, default=None, help="default: from the TensorBoard log")
    parser.add_argument("--hardware", default=None, help="default: this machine")
    args = parser.parse_args(argv)
    final = args.run / "final"
    if not (final / "config.json").is_file():
        raise FileNotFoundError(f"{final} holds no finished teacher (config.json): let the run finish first")
    run_args = json.loads((args.run / "run_args.json").read_text())
    history, minutes = read_eval_history(args.run)
    if not history:
        raise ValueError(f"{args.run}/runs holds no validation scores: was the run evaluated (--eval_every)?")
    dest = export_teacher(
        final,
        args.dest,
        run_args,
        history,
        args.command,
        args.wall_minutes if args.wall_minutes is not None else minutes,
        args.hardware or this_machine(),
    )
    last = history[-1]
    print(f"shipped {final} → {dest}: step {last['step']}, validation AUROC {last.get('zero_shot_auroc', 0):.3f}")
    return dest


if __name__ == "__main__":
    main()
