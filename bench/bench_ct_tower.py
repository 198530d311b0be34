"""CT tower speed and memory: PyTorch SDPA vs plain einsum-softmax attention on the same weights, with and without
gradient checkpointing, for a tiny and the CT-CLIP-sized configuration.

Every case runs in a fresh child process (so its peak RSS is its own); the baseline of each group is the einsum
path without checkpointing, measured in the same run. Prints ratios (time vs baseline) with absolute seconds and
peak memory beside them, and writes bench/results/ct_tower.json.

    python bench/bench_ct_tower.py                  # tiny + CT-CLIP size (about 6 minutes on 2 cores)
    python bench/bench_ct_tower.py --sizes tiny     # seconds
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time
from pathlib import Path

SIZES = {
    # name: (config overrides, input shape, repeats)
    "tiny": ({"image_size": 32, "num_slices": 8, "patch_size": 8, "tubelet_size": 4, "hidden_size": 32,
              "num_attention_heads": 4, "head_dim": 8, "intermediate_size": 48, "num_spatial_layers": 1,
              "num_temporal_layers": 1}, (8, 1, 8, 32, 32), 20),
    "ctclip": ({"use_codebook": True}, (1, 1, 240, 480, 480), 1),
}  # fmt: skip
CASES = [
    # (mode, attention, checkpointing)
    ("forward", "eager", False),
    ("forward", "sdpa", False),
    ("forward+backward", "eager", False),
    ("forward+backward", "sdpa", False),
    ("forward+backward", "eager", True),
    ("forward+backward", "sdpa", True),
]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _run_case(size: str, mode: str, attention: str, checkpointing: bool, threads: int, queue) -> None:
    import torch

    from modeling_speechct import CTViTConfig, CTViTModel

    torch.set_num_threads(threads)
    interpreter = _rss_mb()  # torch + transformers imported, nothing of ours allocated yet
    overrides, shape, repeats = SIZES[size]
    torch.manual_seed(0)
    model = CTViTModel(CTViTConfig(**overrides))  # same seed → same weights in every case
    model.set_attn_implementation(attention)
    if checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
    x = torch.randn(shape)
    model.train(mode != "forward")

    def step() -> None:
        if mode == "forward":
            with torch.no_grad():
                model(x)
        else:
            model.zero_grad(set_to_none=True)
            model(x).pooler_output.square().mean().backward()

    if repeats > 1:
        step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"seconds": statistics.median(times), "peak_rss_mb": peak, "peak_model_mb": peak - interpreter})


def measure(size: str, mode: str, attention: str, checkpointing: bool, threads: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_case, args=(size, mode, attention, checkpointing, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return {"size": size, "mode": mode, "attention": attention, "checkpointing": checkpointing, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,ctclip", help="comma list of " + ", ".join(SIZES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="bench/results/ct_tower.json")
    args = parser.parse_args()

    rows = []
    print(f"{'size':<7} {'mode':<17} {'attention':<9} {'ckpt':<5} {'time ratio':>10} {'seconds':>9} {'peak MB':>9}")
    print("(peak MB: peak resident memory above the interpreter with torch and transformers loaded)")
    for size in args.sizes.split(","):
        baseline: dict[str, float] = {}
        for mode, attention, checkpointing in CASES:
            row = measure(size, mode, attention, checkpointing, args.threads)
            baseline.setdefault(mode, row["seconds"])  # the first case of each mode: eager, no checkpointing
            row["time_ratio_vs_eager"] = row["seconds"] / baseline[mode]
            rows.append(row)
            print(
                f"{size:<7} {mode:<17} {attention:<9} {'yes' if checkpointing else 'no':<5} "
                f"{row['time_ratio_vs_eager']:>10.2f} {row['seconds']:>9.3f} {row['peak_model_mb']:>9.0f}",
                flush=True,
            )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(rows, indent=1))
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
