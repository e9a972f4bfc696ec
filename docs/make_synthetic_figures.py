"""Draw docs/images/synthetic_suite.png: C+ (Mock) against C- (active virus) cells of every benchmark screen.

Each row is one screen of the suite; the four panels show the central
128 x 128 px (a quarter) of one Mock and one untreated active-virus site per
cell type, as a composite of the five stains (each scaled to the site's 99.7th
percentile above its 1st, i.e. background removed), so the cells are seen at the suite's own resolution.

    python docs/make_synthetic_figures.py [--screens /work/bench-cache/suite]

Screens missing under ``--screens`` are written there first (python -m
napari_gandl.synthetic DEST --suite writes them all).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from napari_gandl.plate import open_plate  # noqa: E402
from napari_gandl.synthetic import ACTIVE, MOCK, SUITE, write_sample_plate  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


def composite(plate, index: int, crop: int = 128) -> np.ndarray:
    tile = plate.read_site(index).astype(float)
    low, high = np.percentile(tile, [1, 99.7], axis=(1, 2), keepdims=True)
    tile = (tile - low) / np.maximum(high - low, 1)
    h, w = tile.shape[1:]
    tile = tile[:, (h - crop) // 2 : (h + crop) // 2, (w - crop) // 2 : (w + crop) // 2]
    colors = np.array([s.color for s in plate.stains]) * 0.6  # five stains share three colours
    return np.clip(np.tensordot(tile, colors, axes=(0, 0)), 0, 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--screens", type=Path, default=Path("/work/bench-cache/suite"))
    args = ap.parse_args(argv)
    fig, axes = plt.subplots(len(SUITE), 4, figsize=(10, 2.6 * len(SUITE)))
    for row, name in enumerate(SUITE):
        root = args.screens / name / "plate"
        if not (root / "ground_truth" / "sites.csv").is_file():
            write_sample_plate(root, name)
        plate = open_plate(root)
        sites = plate.sites
        for col, (cell_type, condition) in enumerate(
            [(c, k) for c in ("HRCE", "VERO") for k in (MOCK, ACTIVE)]
        ):
            pick = sites[(sites.cell_type == cell_type) & (sites.disease_condition == condition)
                         & sites.treatment.isna()]
            ax = axes[row, col]
            ax.imshow(composite(plate, int(pick.index[0])), interpolation="nearest")
            label = "C+ Mock" if condition == MOCK else "C- active virus"
            ax.set_title(f"{name}\n{cell_type} {label}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    IMAGES.mkdir(exist_ok=True)
    fig.savefig(IMAGES / "synthetic_suite.png", dpi=90)
    print(IMAGES / "synthetic_suite.png")


if __name__ == "__main__":
    main()
