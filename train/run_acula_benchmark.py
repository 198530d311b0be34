"""AcuLa's main job on a CPU: the shipped MAE before and after alignment to MiniLM, with the ablation rows.

    bash scripts/run_main.sh acula                 # README's command (≤ 20 min on 2 cores from a fresh clone)
    python train/run_acula_benchmark.py --max_steps 1000 --output_dir outputs/acula_long

1. Build the embedded auscultation benchmark into --data_dir if missing (seed 0; the shipped MAE was pre-trained on
   another build, seed 1, so none of these recordings was heard before).
2. Post-train the shipped MAE three ways with `train/train_acula.py`, the same steps, batch and seed each:
   self-supervised only (the control: as many more steps of the MAE loss on these recordings), alignment only
   (InfoNCE against MiniLM's embeddings of the reports; `--align_loss cka` for the reference code's 1 − CKA) and both
   terms (AcuLa).
3. Probe the four towers — before, ssl_only, align_only, both — with `eval/acula.py`: per task linear probes, 5 seeds,
   C on validation; paired differences over seeds and a patient bootstrap of the test split.

Each stage resumes (a finished row is reused). Results: <output_dir>/results.md and results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from modeling_speechct.data.auscultation.benchmark import AuscultationConfig, build_auscultation
from modeling_speechct.data.auscultation.manifest import MANIFEST
from modeling_speechct.files.provenance import write_json_atomic, write_text_atomic
from modeling_speechct.training.stages import run_script, stage

REPO = Path(__file__).resolve().parents[1]
ROWS = {"ssl_only": ["--align_weight", "0"], "align_only": ["--ssl_weight", "0"], "both": []}
COMPARE = ("both:before", "align_only:before", "ssl_only:before", "both:ssl_only", "both:align_only")
PAPER = "the paper (OPERA-GT → AcuLa, 18 tasks): 0.68 → 0.79, +0.11"


def claims(record: dict) -> list[tuple[str, bool, str]]:
    """Issue 18's bars: (claim, met, the figure with its interval)."""
    gain = record["comparisons"]["both − before"]

    def interval(entry: dict) -> str:
        return f"{entry['difference']:+.3f} [{entry['ci95'][0]:+.3f}, {entry['ci95'][1]:+.3f}]"

    acoustic = [t for t, kind in zip(record["tasks"], record["depends_on"], strict=True) if kind == "acoustics"]
    falls = [t for t in acoustic if gain[t]["ci95"][1] < 0]
    worst = min(acoustic, key=lambda t: gain[t]["difference"])
    return [
        ("mean AUROC over tasks rises by ≥ 0.08, interval excluding 0", gain["all tasks"]["difference"] >= 0.08
         and gain["all tasks"]["ci95"][0] > 0, interval(gain["all tasks"])),
        ("no acoustics-only task falls beyond its interval (every upper end ≥ 0)", not falls,
         f"lowest: {worst} {interval(gain[worst])}" + (f"; falls: {', '.join(falls)}" if falls else "")),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="data/auscultation")
    parser.add_argument("--num_patients", type=int, default=AuscultationConfig.num_patients)
    parser.add_argument("--audio_tower", default="shipped", help="the 'before' tower (default: the shipped MAE)")
    parser.add_argument("--output_dir", default="outputs/acula")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--max_steps", type=int, default=400)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=3e-4)
    # Chosen on a development build (seed 2, never the reported one), the shipped MAE post-trained 400 steps. Mean
    # probe AUROC − before: alignment alone +0.007 with CKA (the reference code's loss), +0.041 with InfoNCE (the
    # paper's wording); both terms +0.036 (CKA) and +0.028 (InfoNCE), inside each other's noise. InfoNCE wins on
    # what the shared space is for: test audio → report R@10 0.61 against CKA's 0.05 (CKA matches the batch's
    # similarity structure, not each report), so the demo's nearest reports mean something. lr 1e-3 instead of
    # 3e-4: +0.009 (acoustic tasks fell). Figures: docs/acula.md.
    parser.add_argument("--align_loss", default="infonce", choices=["cka", "infonce"])
    # λ_ssl of the "both" row. The paper's 1.0 is for its losses' scales; here InfoNCE is ≈ 1.2 and the MAE's
    # masked MSE ≈ 0.03, so at 1.0 the SSL term is ~3 % of the loss and acoustic detail is not kept (development
    # build: acoustics tasks +0.013 at 1.0, +0.040 at 30; all tasks +0.028 → +0.034; R@10 0.61 → 0.60). Adam is
    # invariant to a loss's overall scale, so the single-term rows need no weight.
    parser.add_argument("--ssl_weight", type=float, default=30.0)
    parser.add_argument("--n_resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.output_dir)
    start = time.perf_counter()
    timings: dict[str, float] = {}

    data = Path(args.data_dir)
    if not (data / MANIFEST).is_file():
        print(f"[build] {args.num_patients} patients' recordings into {data}", flush=True)
        t = time.perf_counter()
        build_auscultation(AuscultationConfig(out=data, num_patients=args.num_patients, seed=0))
        timings["build"] = time.perf_counter() - t

    if args.audio_tower == "shipped":
        from modeling_speechct.training.acula_training import shipped_mae

        before = shipped_mae()
    else:
        before = Path(args.audio_tower)
    for row in args.rows:
        timings[row] = stage(row, out / row / "final", REPO / "train" / "train_acula.py", [
            "--output_dir", str(out / row), "--data_dir", str(data), "--audio_tower", str(before), *ROWS[row],
            *(["--ssl_weight", str(args.ssl_weight)] if row == "both" else []),
            "--max_steps", str(args.max_steps), "--per_device_batch_size", str(args.batch_size),
            "--learning_rate", str(args.learning_rate), "--align_loss", args.align_loss,
            "--warmup_steps", str(max(1, args.max_steps // 10)),
            "--eval_every", str(args.max_steps), "--save_every", "100", "--log_every", "20",
            "--seed", str(args.seed), "--resume_from_checkpoint", "latest"])  # fmt: skip

    t = time.perf_counter()
    evaluation = out / "evaluation"
    models = [f"before={before}", *(f"{row}={out / row / 'final'}" for row in args.rows)]
    compare = [c for c in COMPARE if set(c.split(":")) <= {"before", *args.rows}]
    argv = ["--models", *models, "--data_dir", str(data), "--n_resamples", str(args.n_resamples),
            "--seed", str(args.seed), "--output_dir", str(evaluation), "--quiet", "--compare", *compare]  # fmt: skip
    print(f"[evaluation] python eval/acula.py {' '.join(argv)}", flush=True)
    run_script(REPO / "eval" / "acula.py", argv)
    timings["evaluation"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start

    record = json.loads((evaluation / "acula_eval.json").read_text())
    markdown = (evaluation / "acula_eval.md").read_text()
    if "both − before" in record["comparisons"]:
        rows = claims(record)
        markdown += "\n| AcuLa's claim, on the embedded benchmark | met | figure [95 % CI] |\n|---|---|---|\n"
        markdown += "".join(f"| {c} | {'yes' if ok else 'no'} | {fig} |\n" for c, ok, fig in rows)
        record["claims"] = [{"claim": c, "met": ok, "figure": fig} for c, ok, fig in rows]
    markdown += (f"\nBefore: {before}. Each row post-trains it {args.max_steps} steps (batch {args.batch_size}, lr "
                 f"{args.learning_rate:g}, {args.align_loss}; both: λ_ssl {args.ssl_weight:g}) on the training split "
                 f"of {data}; {PAPER}.\n")  # fmt: skip
    write_text_atomic(out / "results.md", markdown)
    write_json_atomic(out / "results.json", {**record, "timings_s": timings, "arguments": vars(args)})
    print("\n" + markdown)
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
