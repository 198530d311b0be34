"""SpeechCLIP's main job on a CPU: the five variants on the embedded scenes, one table with 95 % intervals.

    bash scripts/run_main.sh speechclip                  # README's command (≈ 20 min on 2 cores from a fresh clone)
    python train/run_speechclip_benchmark.py --max_steps 1000 --output_dir outputs/speechclip_long

1. Build the scenes with speech into --data_dir if missing (seed 1: none of these images is among the 4,000 seed-0
   scenes the shipped scenes CLIP was trained on, so its bar is measured on images it never saw).
2. Train parallel, cascaded, cascaded+ (CIF), hybrid and hybrid+ with `train/train_speechclip.py` against the
   shipped frozen CLIP and the shipped CTC speech tower (its every layer cached once, shared by the five).
3. Evaluate all five on the test split with `eval/speechclip.py`: speech ↔ image and zero-shot speech ↔ text
   R@k, keyword hit rates, CLIP's own written caption → image bar, the ratios and paired differences the papers'
   claims rest on; intervals resample images.

Each stage resumes (a finished variant is reused). Results: <output_dir>/results.md and results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from modeling_speechct.data.scenes_build import ScenesConfig, build_scenes
from modeling_speechct.files.provenance import write_json_atomic, write_text_atomic
from modeling_speechct.training.stages import run_script, stage

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("parallel", "cascaded", "cascaded_plus", "hybrid", "hybrid_plus")
R10 = "speech→image R@10"
# The papers' claims, as (what, how it is read from eval/speechclip.py's record).
RATIOS = (("parallel", f"parallel {R10}"), ("cascaded", f"cascaded {R10}"))
COMPARISONS = (
    ("cascaded_plus", "cascaded", "cascaded keyword hit top-5"),
    ("cascaded_plus", "cascaded", f"cascaded {R10}"),
    ("hybrid", "parallel", f"parallel {R10}"),
    ("hybrid_plus", "parallel", f"parallel {R10}"),
)


def claims(record: dict) -> list[tuple[str, bool, str]]:
    """Issue 17's bars: (claim, met, the figure with its interval)."""
    ratios, paired = record["ratios"], record["comparisons"]
    parallel = ratios[f"parallel parallel {R10} / CLIP text→image R@10"]
    cascaded = ratios[f"cascaded cascaded {R10} / CLIP text→image R@10"]
    keywords = record["models"]["cascaded"]["cascaded keyword hit top-5"]
    cif = paired["cascaded_plus vs cascaded: cascaded keyword hit top-5"]
    hybrid = paired[f"hybrid vs parallel: parallel {R10}"]

    def interval(r: dict, key: str = "value") -> str:
        return f"{r[key]:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"

    return [
        ("parallel speech → image R@10 ≥ 80 % of CLIP's text → image", parallel["value"] >= 0.8, interval(parallel)),
        ("cascaded speech → image R@10 ≥ 50 % of CLIP's text → image", cascaded["value"] >= 0.5, interval(cascaded)),
        ("cascaded keyword hit rate (top-5) ≥ 30 %", keywords["value"] >= 0.3, interval(keywords)),
        ("cascaded+ (CIF) keyword top-5 above cascaded, interval above 0", cif["ci95"][0] > 0,
         interval(cif, "difference")),
        ("hybrid's parallel R@10 above parallel alone, interval above 0", hybrid["ci95"][0] > 0,
         interval(hybrid, "difference")),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="data/scenes_benchmark")
    parser.add_argument("--num_images", type=int, default=1000)
    parser.add_argument("--scenes_seed", type=int, default=1, help="≠ 0: images the shipped scenes CLIP never saw")
    parser.add_argument("--output_dir", default="outputs/speechclip")
    parser.add_argument("--cache_dir", default="outputs/cache")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--frame_stride", type=int, default=4,
                        help="tower frames averaged before the branch layer (1: the papers' 50 a second; 4 makes a "
                             "CPU step 5.7–9.2× cheaper: docs/speechclip.md)")  # fmt: skip
    parser.add_argument("--cif_scaling_steps", type=int, default=100)
    parser.add_argument("--n_resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.output_dir)
    start = time.perf_counter()
    timings: dict[str, float] = {}

    data = Path(args.data_dir)
    if not (data / "speech_manifest.csv").is_file():
        print(f"[build] {args.num_images} scenes with speech into {data}", flush=True)
        t = time.perf_counter()
        build_scenes(ScenesConfig(out=data, num_images=args.num_images, seed=args.scenes_seed))
        timings["build"] = time.perf_counter() - t

    for variant in args.variants:
        timings[variant] = stage(variant, out / variant / "final", REPO / "train" / "train_speechclip.py", [
            "--output_dir", str(out / variant), "--data_dir", str(data), "--cache_dir", args.cache_dir,
            "--mode", variant, "--max_steps", str(args.max_steps), "--per_device_batch_size", str(args.batch_size),
            "--warmup_steps", "30", "--frame_stride", str(args.frame_stride),
            "--cif_scaling_steps", str(args.cif_scaling_steps), "--eval_every", str(args.max_steps),
            "--save_every", "100", "--log_every", "20", "--seed", str(args.seed),
            "--resume_from_checkpoint", "latest"])  # fmt: skip

    t = time.perf_counter()
    evaluation = out / "evaluation"
    models = [f"{v}={out / v / 'final'}" for v in args.variants]
    argv = ["--models", *models, "--data_dir", str(data), "--split", "test", "--cache_dir", args.cache_dir,
            "--n_resamples", str(args.n_resamples), "--seed", str(args.seed),
            "--output_dir", str(evaluation)]  # fmt: skip
    ratios = [f"{m}:{f}" for m, f in RATIOS if m in args.variants]
    compares = [f"{a}:{b}:{f}" for a, b, f in COMPARISONS if a in args.variants and b in args.variants]
    argv += (["--ratio", *ratios] if ratios else []) + (["--compare", *compares] if compares else [])
    print(f"[evaluation] python eval/speechclip.py {' '.join(argv)}", flush=True)  # always: the variants may be new
    run_script(REPO / "eval" / "speechclip.py", argv)
    timings["evaluation"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start

    record = json.loads((evaluation / "speechclip_eval.json").read_text())
    record["markdown"] = (evaluation / "speechclip_eval.md").read_text()
    markdown = record["markdown"]
    if set(args.variants) == set(VARIANTS):
        rows = claims(record)
        markdown += "\n| the papers' claim, on these scenes | met | figure [95 % CI] |\n|---|---|---|\n" + "".join(
            f"| {c} | {'yes' if ok else 'no'} | {fig} |\n" for c, ok, fig in rows)  # fmt: skip
        record["claims"] = [{"claim": c, "met": ok, "figure": fig} for c, ok, fig in rows]
    markdown += (
        f"\nThe test split of {data}: images no stage saw, the shipped CLIP included; intervals resample "
        f"images ({args.n_resamples} draws). Speech → text is zero-shot: the speech side never saw text.\n"
    )
    write_text_atomic(out / "results.md", markdown)
    write_json_atomic(out / "results.json", {**{k: v for k, v in record.items() if k != "markdown"},
                                             "timings_s": timings, "arguments": vars(args)})  # fmt: skip
    print("\n" + markdown)
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
