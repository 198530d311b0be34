"""CT preprocessing speed and memory: our CTFeatureExtractor against CT-CLIP's recipe as CT-CLIP runs it
(`modeling_speechct.training.ctclip_recipe`: nibabel `get_fdata` in float64, clip, `F.interpolate`, crop), on a
512 × 512 × 300 int16 volume at 0.7 × 0.7 × 1.0 mm stored as `.nii.gz`, to the default 240 × 480 × 480 tensor.

One process; runs alternate between the two; peak memory is the resident-set high point above the level before
each run, sampled every 2 ms (freed heap is handed back to the OS between runs with malloc_trim). Prints median time
ratio (CT-CLIP / ours) and each side's peak, and checks that both produce the same tensor.

    python bench/bench_ct_preprocess.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from modeling_speechct import CTFeatureExtractor
from modeling_speechct.training.ctclip_recipe import ctclip_preprocess

SHAPE, SPACING = (512, 512, 300), (0.7, 0.7, 1.0)  # stored (i → L, j → P, k → S), as CT-RATE files are


def synthetic_chest(seed: int = 0) -> np.ndarray:
    """Air, an elliptic soft-tissue body with darker lungs, a spine, and scanner noise: realistic compressibility."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    body = ((i - 256) / 200) ** 2 + ((j - 256) / 150) ** 2 < 1
    lungs = (((np.abs(i - 256) - 90) / 70) ** 2 + ((j - 240) / 100) ** 2) < 1
    spine = ((i - 256) / 25) ** 2 + ((j - 370) / 25) ** 2 < 1
    plane = np.where(body, 40, -1000) - np.where(lungs, 820, 0) + np.where(spine, 700, 0)
    volume = plane[:, :, None] + rng.normal(0, 20, SHAPE)
    return volume.astype(np.int16)


class PeakRSS:
    """Resident-set high point (MB) above the level at entry, sampled by a background thread."""

    def __enter__(self):
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        self.start = self._rss()
        self.peak, self._run = self.start, True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._run = False
        self._thread.join()

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    def _sample(self):
        while self._run:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    @property
    def mb(self) -> float:
        return self.peak - self.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chest.nii.gz"
        affine = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])  # L, P, S voxel axes
        nib.save(nib.Nifti1Image(synthetic_chest(), affine), str(path))
        print(f"volume {SHAPE} int16 at {SPACING} mm, {path.stat().st_size / 2**20:.0f} MB .nii.gz")

        extractor = CTFeatureExtractor()
        runs = {
            "ct-clip recipe": lambda: ctclip_preprocess(str(path), xy_spacing=SPACING[0], z_spacing=SPACING[2]),
            "ours": lambda: extractor(path, is_hu=True)["ct_values"][0, 0],
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, list[float]] = {name: [] for name in runs}
        outputs = {}
        for _ in range(args.repeats):
            for name, run in runs.items():
                with PeakRSS() as memory:
                    start = time.perf_counter()
                    outputs[name] = run()
                    times[name].append(time.perf_counter() - start)
                peaks[name].append(memory.mb)
        difference = (outputs["ours"] - outputs["ct-clip recipe"]).abs().max().item()

    base, ours = statistics.median(times["ct-clip recipe"]), statistics.median(times["ours"])
    base_mb, ours_mb = max(peaks["ct-clip recipe"]), max(peaks["ours"])
    print(f"{'':<16} {'median s':>9} {'peak MB':>8}")
    for name in runs:
        print(f"{name:<16} {statistics.median(times[name]):>9.2f} {max(peaks[name]):>8.0f}")
    print(
        f"speed-up (CT-CLIP / ours): {base / ours:.2f}x   peak memory ratio (ours / CT-CLIP): {ours_mb / base_mb:.2f}"
    )
    print(f"output shape {tuple(outputs['ours'].shape)}, max |ours − CT-CLIP| = {difference:.1e}")


if __name__ == "__main__":
    main()
