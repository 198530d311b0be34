"""Speed of the students' attention pooling: the factorised single-query form (`pooling.AttentionPooling`) against
`nn.MultiheadAttention` with the same parameters (the baseline, the form it replaced), in the same process.

    python bench/bench_pooling.py [--batch 64] [--frames 375 1500] [--hidden 384] [--heads 8] [--threads 2]

The main job's default: 32 reports × 2 windows of Whisper tiny.en (1,500 frames of 384, averaged 4 at a time → 375).
One training step's pooling = forward + backward. Prints the median of --repeats alternating runs, the ratio, and
the largest difference between the two outputs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from modeling_speechct.pooling import AttentionPooling


def multihead_reference(pooler: AttentionPooling, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    query = pooler.query.expand(frames.shape[0], -1, -1)
    out, _ = pooler.attention(query, frames, frames, key_padding_mask=~mask, need_weights=False)
    return out[:, 0]


def step_seconds(fn, frames: torch.Tensor, mask: torch.Tensor) -> float:
    start = time.perf_counter()
    fn(frames, mask).square().sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="windows per step")
    parser.add_argument("--frames", type=int, nargs="+", default=[375, 1500])
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pooler = AttentionPooling(args.hidden, args.heads)
    with torch.no_grad():
        pooler.query.normal_()
    print(f"attention pooling, {args.batch} windows × hidden {args.hidden}, {args.heads} heads, forward + backward")
    print("| frames | nn.MultiheadAttention (s) | factorised (s) | speed-up | max abs diff |")
    print("|---|---|---|---|---|")
    for frames_per_window in args.frames:
        frames = torch.randn(args.batch, frames_per_window, args.hidden, requires_grad=True)
        mask = torch.ones(args.batch, frames_per_window, dtype=torch.bool)
        mask[::2, frames_per_window // 3 :] = False  # every other window is a report's mostly-padded last one
        with torch.no_grad():
            diff = (pooler(frames, mask) - multihead_reference(pooler, frames, mask)).abs().max().item()
        times: dict[str, list[float]] = {"reference": [], "factorised": []}
        step_seconds(pooler, frames, mask)  # warm-up
        for _ in range(args.repeats):  # alternate, so drift in machine load hits both alike
            times["reference"].append(step_seconds(lambda x, m: multihead_reference(pooler, x, m), frames, mask))
            times["factorised"].append(step_seconds(pooler, frames, mask))
        reference, ours = (statistics.median(times[k]) for k in ("reference", "factorised"))
        print(f"| {frames_per_window} | {reference:.3f} | {ours:.3f} | {reference / ours:.1f}× | {diff:.1e} |")


if __name__ == "__main__":
    main()
