"""Figure of every abnormality the chest CT phantom draws: one row per label, axial and coronal slices through the
lesion's centre (window −1000…1000 HU), to check by eye that each lesion is recognisable where it belongs.

    python processing/render_abnormalities.py --out figure.png [--seed 0] [--shape 48 96 96]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

from modeling_speechct.data.phantom import RENDERED_LABELS, example_case, lesion_views


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0, help="cases are reproducible from (seed, label)")
    parser.add_argument("--shape", type=int, nargs=3, default=[48, 96, 96], metavar=("D", "H", "W"))
    args = parser.parse_args(argv)

    fig = Figure(figsize=(6.4, 2.9 * len(RENDERED_LABELS)))
    axes = fig.subplots(len(RENDERED_LABELS), 2, squeeze=False)
    for row, label in zip(axes, RENDERED_LABELS, strict=True):
        views = lesion_views(example_case(label, args.seed, tuple(args.shape)), label)
        panels = (
            ("axial", views.axial, views.axial_aspect, views.axial_point),
            ("coronal", views.coronal, views.coronal_aspect, views.coronal_point),
        )
        for ax, (name, image, aspect, (r, c)) in zip(row, panels, strict=True):
            ax.imshow(image, cmap="gray", vmin=-1000, vmax=1000, aspect=aspect, interpolation="nearest")
            ax.scatter([c], [r], s=250, facecolors="none", edgecolors="red", linewidths=0.8)  # lesion centre
            ax.set_title(f"{label} ({name})", fontsize=8)
            ax.set_axis_off()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
