"""Draw the figures of docs/synthetic.md: the demo screen's phenotypes and C+ against C- of every suite screen.

``synthetic_phenotypes.png``: Mock, UV-inactivated and active-virus sites of
both cell types of the demo screen. ``synthetic_suite.png``: one row per
screen of the suite, the central 128 x 128 px (a quarter) of one Mock and one
untreated active-virus site per cell type, so the cells are seen at the
suite's own resolution. ``synthetic_decoys.png``: the central 128 x 128 px
of one untreated active-virus site and one site of each decoy at its top dose
on ``decoys-medium``, per cell type. Sites are composites of the five stains,
each scaled between its 1st and 99.7th percentile in the site.

    python docs/make_synthetic_figures.py [--screens /work/bench-cache/suite] [--decoys /work/bench-cache/decoys]

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

from napari_gandl._sample_data import sample_plate_path  # noqa: E402
from napari_gandl.plate import open_plate  # noqa: E402
from napari_gandl.synthetic import ACTIVE, DOSES_UM, MOCK, PRESETS, SUITE, UV, write_sample_plate  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


def composite(plate, cell_type: str, condition: str, crop: int | None = None, treatment: str | None = None,
              dose: float | None = None) -> np.ndarray:
    """RGB of the first site of ``cell_type`` and ``condition`` (its central ``crop`` px): untreated, or of
    ``treatment`` at ``dose``."""
    sites = plate.sites
    given = sites.treatment.isna() if treatment is None else (sites.treatment == treatment) & (
        sites.treatment_conc == dose)
    pick = sites[(sites.cell_type == cell_type) & (sites.disease_condition == condition) & given]
    tile = plate.read_site(int(pick.index[0])).astype(float)
    low, high = np.percentile(tile, [1, 99.7], axis=(1, 2), keepdims=True)
    tile = (tile - low) / np.maximum(high - low, 1)
    if crop:
        h, w = tile.shape[1:]
        tile = tile[:, (h - crop) // 2 : (h + crop) // 2, (w - crop) // 2 : (w + crop) // 2]
    colors = np.array([s.color for s in plate.stains]) * 0.6  # five stains share three colours
    return np.clip(np.tensordot(tile, colors, axes=(0, 0)), 0, 1)


def screen_plate(screens: Path, name: str):
    """The synthetic screen ``name`` opened from ``screens/name/plate``, written there first if missing."""
    root = screens / name / "plate"
    if not (root / "ground_truth" / "sites.csv").is_file():
        write_sample_plate(root, name)
    return open_plate(root)


def save(fig, name: str) -> None:
    fig.tight_layout()
    IMAGES.mkdir(exist_ok=True)
    fig.savefig(IMAGES / name, dpi=90)
    print(IMAGES / name)


def demo_figure() -> None:
    plate = open_plate(sample_plate_path("demo"))
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.2))
    for r, cell_type in enumerate(["HRCE", "VERO"]):
        for c, condition in enumerate([MOCK, UV, ACTIVE]):
            axes[r, c].imshow(composite(plate, cell_type, condition))
            axes[r, c].set_title(f"{cell_type}: {condition}", fontsize=9)
            axes[r, c].axis("off")
    save(fig, "synthetic_phenotypes.png")


def suite_figure(screens: Path) -> None:
    fig, axes = plt.subplots(len(SUITE), 4, figsize=(10, 2.6 * len(SUITE)))
    for row, name in enumerate(SUITE):
        plate = screen_plate(screens, name)
        for col, (cell_type, condition) in enumerate(
            [(c, k) for c in ("HRCE", "VERO") for k in (MOCK, ACTIVE)]
        ):
            ax = axes[row, col]
            ax.imshow(composite(plate, cell_type, condition, crop=128), interpolation="nearest")
            label = "C+ Mock" if condition == MOCK else "C- active virus"
            ax.set_title(f"{name}\n{cell_type} {label}", fontsize=8)
            ax.axis("off")
    save(fig, "synthetic_suite.png")


def decoy_figure(screens: Path, name: str = "decoys-medium") -> None:
    plate = screen_plate(screens, name)
    decoys = [c for c in PRESETS[name].compounds if c.off_target and not c.active]
    columns = [(None, "untreated")] + [(c.name, c.off_target) for c in decoys]
    fig, axes = plt.subplots(2, len(columns), figsize=(2.4 * len(columns), 5.9))
    for row, cell_type in enumerate(("HRCE", "VERO")):
        for col, (compound, label) in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(composite(plate, cell_type, ACTIVE, crop=128, treatment=compound, dose=max(DOSES_UM)),
                      interpolation="nearest")
            ax.set_title(f"{cell_type} active virus\n{label}" + (f" {max(DOSES_UM):g} µM" if compound else ""),
                         fontsize=8)
            ax.axis("off")
    save(fig, "synthetic_decoys.png")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--screens", type=Path, default=Path("/work/bench-cache/suite"))
    ap.add_argument("--decoys", type=Path, default=Path("/work/bench-cache/decoys"))
    ap.add_argument("--only-decoys", action="store_true", help="draw synthetic_decoys.png alone")
    args = ap.parse_args(argv)
    if not args.only_decoys:
        demo_figure()
        suite_figure(args.screens)
    decoy_figure(args.decoys)


if __name__ == "__main__":
    main()
