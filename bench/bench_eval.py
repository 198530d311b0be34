"""Evaluation cost: chunked retrieval ranks vs a full similarity matrix, and zero-shot with cached embeddings vs
CT-CLIP's per-label re-encoding. One process; each baseline is measured in the same run as the path it is compared
with. Prints ratios with the absolute seconds and memory beside them and writes bench/results/eval.json.

(a) Retrieval over pools of N paired, L2-normalised float32 embeddings of width 512 (query i ↔ gallery i):
    * chunked — `metrics.retrieval_ranks(chunk_size=4096)`, the library path (float64 inside);
    * full f32 — the baseline a user writes: one N × N float32 similarity matrix, same pessimistic tie rule;
    * full f64 — `retrieval_ranks(chunk_size=N)`: the same code and arithmetic as chunked, one chunk, so the
      ratio isolates chunking from precision.
    A full variant is skipped (and said so) where its N × N matrix in its own dtype exceeds --max_full_gb.
    Peak memory is tracemalloc's peak over the call: NumPy registers its array buffers with tracemalloc, so this
    is what the method allocates (inputs excluded, allocated before tracing starts; BLAS scratch space and the
    interpreter are not counted). Times are the wall and the process-CPU seconds of that traced call (tracing
    costs nothing measurable for a few large NumPy allocations), best of --repeats. The machine is shared, so CPU
    seconds are the steadier figure: other jobs stretch wall time, not the work a method does.

(b) Zero-shot time per volume, with a CT-ViT of CT-CLIP's architecture (width 512, 4 + 4 layers, 20 × 20 × 10
    tubelets, codebook on) and a tiny random text tower:
    * cached — the volume's CT embedding once, the 18 prompt pairs' embeddings once per model (timed apart and
      not charged to the volume), then 18 softmaxes over cosine pairs (`zero_shot.pair_probabilities`);
    * per-label — CT-CLIP's zero_shot.py: for every label the volume and the label's prompt pair go through the
      model again (18 × (CT forward + text forward of 2 prompts)).
    The default grid (`--ct_grid small`) is 240 × 240 × 120 voxels (12 × 12 × 12 tokens, 1/8 of CT-CLIP's): the
    CT-CLIP-sized forward takes 7.6–12 s on 2 cores (bench/results/ct_tower*.json), so the per-label baseline
    alone would be 18 × that ≈ 2.5–4 minutes per volume. `--ct_grid ctclip` runs the real 480 × 480 × 240 input.
    The two paths' probabilities are compared (max abs difference) so the speed-up is not bought with a change.

    python bench/bench_eval.py                                  # 10k / 50k / 100k pools (100k chunked: ~8 GB)
    python bench/bench_eval.py --sizes 10000 50000              # ~2.5 CPU-minutes (bench/results/eval.json)
    python bench/bench_eval.py --sizes 2000 --skip_zero_shot    # seconds
    python bench/bench_eval.py --ct_grid ctclip --volumes 1     # CT-CLIP's real input size
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from modeling_speechct.evaluation.metrics import retrieval_ranks

WIDTH = 512
CHUNK = 4096
CT_GRIDS = {
    # name: (CTViTConfig overrides beyond CT-CLIP's defaults, input (depth, height, width))
    "small": ({"image_size": 240, "num_slices": 120, "use_codebook": True}, (120, 240, 240)),
    "ctclip": ({"use_codebook": True}, (240, 480, 480)),
}


# ----------------------------------------------------------------------------------------------------------------
# (a) retrieval


def paired_pool(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Queries and a gallery that resembles them (gallery i = query i + noise), both L2-normalised float32, as a
    trained model's are; the cost of either method does not depend on the ranks."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, WIDTH), dtype=np.float32)
    g = q + 1.5 * rng.standard_normal((n, WIDTH), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return q, g


def full_f32_ranks(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Paired ranks from one N × N float32 similarity matrix: 1 + #(other items with similarity >= the correct
    one's), the pessimistic tie rule of `retrieval_ranks`."""
    sim = q @ g.T
    best = sim.diagonal().copy()
    np.fill_diagonal(sim, -np.inf)
    return 1 + (sim >= best[:, None]).sum(axis=1)


def timed(fn, repeats: int, trace: bool = False) -> tuple[object, dict[str, float]]:
    """(result, {"seconds", "cpu_seconds"[, "peak_mb"]}) of `fn()`: best wall and process-CPU time over `repeats`
    calls, and the largest tracemalloc peak in MB. CPU time is reported beside wall time because this machine is
    shared: other jobs stretch wall time, not the CPU work a method does."""
    walls, cpus, peaks = [], [], []
    for _ in range(repeats):
        if trace:
            tracemalloc.start()
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if trace:
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
    return out, {"seconds": min(walls), "cpu_seconds": min(cpus), **({"peak_mb": max(peaks)} if trace else {})}


def bench_retrieval(sizes: list[int], max_full_gb: float, repeats: int) -> list[dict]:
    rows = []
    print(f"(a) retrieval, paired pools of width {WIDTH}; ratios = full / chunked (> 1: chunked is cheaper)")
    print(f"{'pool':>7} {'method':<9} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'wall ratio':>10} {'CPU ratio':>9} "
          f"{'mem ratio':>9}")  # fmt: skip
    for n in sizes:
        q, g = paired_pool(n)
        ranks, chunked = timed(lambda q=q, g=g: retrieval_ranks(q, g, chunk_size=CHUNK), repeats, trace=True)
        chunked = {"pool": n, "method": "chunked", "chunk_size": CHUNK, **chunked}
        chunked["median_rank"] = float(np.median(ranks))
        rows.append(chunked)
        print(f"{n:>7} {'chunked':<9} {chunked['seconds']:>8.2f} {chunked['cpu_seconds']:>8.2f} "
              f"{chunked['peak_mb']:>8.0f} {'1.00':>10} {'1.00':>9} {'1.00':>9}", flush=True)  # fmt: skip
        full = {
            "full_f32": (4, lambda q=q, g=g: full_f32_ranks(q, g)),
            "full_f64": (8, lambda q=q, g=g: retrieval_ranks(q, g, chunk_size=len(q))),
        }
        for method, (itemsize, fn) in full.items():
            matrix_gb = n * n * itemsize / 1e9
            row = {"pool": n, "method": method, "matrix_gb": matrix_gb}
            if matrix_gb > max_full_gb:
                row["skipped"] = f"N × N matrix {matrix_gb:.1f} GB > --max_full_gb {max_full_gb:g}"
                print(f"{n:>7} {method:<9} skipped: {row['skipped']}", flush=True)
            else:
                full_ranks, figures = timed(fn, repeats, trace=True)
                row.update(figures)
                for key in ("seconds", "cpu_seconds", "peak_mb"):
                    row[f"{key}_ratio_vs_chunked"] = row[key] / chunked[key]
                row["ranks_equal_to_chunked"] = float(np.mean(full_ranks == ranks))
                print(f"{n:>7} {method:<9} {row['seconds']:>8.2f} {row['cpu_seconds']:>8.2f} {row['peak_mb']:>8.0f} "
                      f"{row['seconds_ratio_vs_chunked']:>10.2f} {row['cpu_seconds_ratio_vs_chunked']:>9.2f} "
                      f"{row['peak_mb_ratio_vs_chunked']:>9.2f}   ranks equal to chunked: "
                      f"{100 * row['ranks_equal_to_chunked']:.2f} %", flush=True)  # fmt: skip
            rows.append(row)
        del q, g
    return rows


# ----------------------------------------------------------------------------------------------------------------
# (b) zero-shot


def bench_zero_shot(grid: str, volumes: int, repeats: int) -> dict:
    import torch

    from modeling_speechct import SpeechCTClipModel
    from modeling_speechct.configuration_ct_vit import CTViTConfig
    from modeling_speechct.labels import CT_RATE_LABELS
    from modeling_speechct.training.tiny import tiny_speechct_config
    from modeling_speechct.zero_shot import pair_probabilities, prompt_pairs

    overrides, shape = CT_GRIDS[grid]
    torch.manual_seed(0)
    config = tiny_speechct_config(ct_config=CTViTConfig(**overrides), projection_dim=WIDTH)
    model = SpeechCTClipModel(config).eval()
    scale = model.logit_scale.exp().item()
    generator = torch.Generator().manual_seed(0)
    vocab = config.text_config.vocab_size
    pairs = prompt_pairs(CT_RATE_LABELS)
    # Token ids stand in for the tokenizer: one id sequence per prompt, as long as the prompt has words (+ 2).
    tokens = [[torch.randint(5, vocab, (1, len(p.split()) + 2), generator=generator) for p in pair] for pair in pairs]

    def encode_text(ids: list[torch.Tensor]) -> torch.Tensor:
        width = max(t.shape[1] for t in ids)
        batch = torch.zeros(len(ids), width, dtype=torch.long)
        mask = torch.zeros_like(batch)
        for i, t in enumerate(ids):
            batch[i, : t.shape[1]], mask[i, : t.shape[1]] = t[0], 1
        return model.get_text_features(batch, mask).pooler_output

    def prompts_once() -> tuple[torch.Tensor, torch.Tensor]:
        return encode_text([t[0] for t in tokens]), encode_text([t[1] for t in tokens])

    def cached(volume: torch.Tensor, prompts) -> torch.Tensor:
        ct = model.get_ct_features(volume).pooler_output
        return pair_probabilities(ct, *prompts, scale)[0]

    def per_label(volume: torch.Tensor) -> torch.Tensor:
        out = []
        for pair_tokens in tokens:  # CT-CLIP: model(text_pair, volume) once per label
            ct = model.get_ct_features(volume).pooler_output
            text = encode_text(pair_tokens)
            out.append(pair_probabilities(ct, text[:1], text[1:], scale)[0, 0])
        return torch.stack(out)

    print(f"(b) zero-shot, CT grid {grid} {shape}, {len(pairs)} labels, {volumes} volume(s), best of {repeats}")
    with torch.no_grad():
        prompts, prompt_figures = timed(prompts_once, repeats)
        figures: dict[str, list[dict[str, float]]] = {"cached": [], "per_label": []}
        max_diff = 0.0
        for v in range(volumes):
            volume = torch.rand(1, 1, *shape, generator=torch.Generator().manual_seed(100 + v)) * 2 - 1
            p_cached, f_cached = timed(lambda volume=volume: cached(volume, prompts), repeats)
            p_label, f_label = timed(lambda volume=volume: per_label(volume), repeats)
            figures["cached"].append(f_cached)
            figures["per_label"].append(f_label)
            max_diff = max(max_diff, float((p_cached - p_label).abs().max()))
            print(
                f"  volume {v}: cached {f_cached['seconds']:.2f} s wall / {f_cached['cpu_seconds']:.2f} s CPU, "
                f"per-label {f_label['seconds']:.2f} s wall / {f_label['cpu_seconds']:.2f} s CPU",
                flush=True,
            )

    def mean(path: str, key: str) -> float:
        return float(np.mean([f[key] for f in figures[path]]))

    result = {
        "ct_grid": grid,
        "input_shape": list(shape),
        "ct_config_overrides": overrides,
        "ct_tokens": int(np.prod([s // p for s, p in zip(shape, (10, 20, 20), strict=True)])),
        "labels": len(pairs),
        "volumes": volumes,
        "prompt_embeddings_once": prompt_figures,
        "cached_per_volume": {"seconds": mean("cached", "seconds"), "cpu_seconds": mean("cached", "cpu_seconds")},
        "per_label_per_volume": {"seconds": mean("per_label", "seconds"),
                                 "cpu_seconds": mean("per_label", "cpu_seconds")},
        "speedup_wall": mean("per_label", "seconds") / mean("cached", "seconds"),
        "speedup_cpu": mean("per_label", "cpu_seconds") / mean("cached", "cpu_seconds"),
        "max_abs_probability_difference": max_diff,
        "forward_passes_per_volume": {"cached": {"ct": 1, "text": 0},
                                      "per_label": {"ct": len(pairs), "text": 2 * len(pairs)}},
    }  # fmt: skip
    print(
        f"  per volume: cached is {result['speedup_wall']:.1f}x faster in wall time, {result['speedup_cpu']:.1f}x "
        f"in CPU time; prompts once per model {prompt_figures['seconds']:.3f} s; max |ΔP| {max_diff:.1e}"
    )
    return result


# ----------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000], help="retrieval pools")
    parser.add_argument("--max_full_gb", type=float, default=4.0, help="largest N × N matrix the full paths may make")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ct_grid", choices=tuple(CT_GRIDS), default="small")
    parser.add_argument("--volumes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (NumPy's BLAS keeps its own setting)")
    parser.add_argument("--skip_retrieval", action="store_true")
    parser.add_argument("--skip_zero_shot", action="store_true")
    parser.add_argument("--output", default="bench/results/eval.json")
    args = parser.parse_args()

    record: dict = {
        "command": " ".join(["python", *sys.argv]),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "memory_measure": "tracemalloc peak of the call (NumPy buffers; inputs, BLAS scratch, interpreter excluded)",
    }
    start = time.perf_counter()
    if not args.skip_retrieval:
        record["retrieval"] = bench_retrieval(args.sizes, args.max_full_gb, args.repeats)
    if not args.skip_zero_shot:
        import torch

        torch.set_num_threads(args.threads)
        record["zero_shot"] = bench_zero_shot(args.ct_grid, args.volumes, args.repeats)
    record["total_seconds"] = time.perf_counter() - start
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record["load_average_at_end"] = list(os.getloadavg())
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1))
    print(f"total {record['total_seconds']:.0f} s; written {args.output}")


if __name__ == "__main__":
    main()
