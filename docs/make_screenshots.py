"""Render the documentation screenshots with a real napari window.

    QT_QPA_PLATFORM=xcb xvfb-run -a python docs/make_screenshots.py

Writes docs/images/*.png from the synthetic demo screen (written to a cache
folder on first use).
"""

from __future__ import annotations

from pathlib import Path

import napari
from PIL import Image

from napari_gandl._sample_data import sample_plate_path

IMAGES = Path(__file__).resolve().parent / "images"


def save(array, name: str) -> None:
    IMAGES.mkdir(exist_ok=True)
    Image.fromarray(array).save(IMAGES / name)
    print(IMAGES / name)


def settle() -> None:
    """Let Qt lay out new dock widgets before a screenshot."""
    from qtpy.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()


def reader_screenshot() -> None:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 800)
    viewer.open(str(sample_plate_path("demo")), plugin="napari-gandl")
    viewer.window.add_plugin_dock_widget("napari-gandl", "Site navigator")
    viewer.dims.set_current_step(0, 3)
    settle()
    viewer.reset_view()
    save(viewer.screenshot(canvas_only=False, flash=False), "reader.png")
    viewer.close()


def phenotype_figure() -> None:
    """Mock against active-virus sites of both cell types, as stain composites."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from napari_gandl.plate import open_plate

    plate = open_plate(sample_plate_path("demo"))
    sites = plate.sites
    colors = np.array([s.color for s in plate.stains])
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.2))
    conditions = ["Mock", "UV Inactivated SARS-CoV-2", "Active SARS-CoV-2"]
    for r, cell_type in enumerate(["HRCE", "VERO"]):
        for c, condition in enumerate(conditions):
            pick = sites[(sites.cell_type == cell_type) & (sites.disease_condition == condition) & sites.treatment.isna()]
            tile = plate.read_site(int(pick.index[0])).astype(float)
            tile /= np.percentile(tile, 99.7, axis=(1, 2), keepdims=True)
            rgb = np.clip(np.tensordot(tile, colors, axes=(0, 0)), 0, 1)
            axes[r, c].imshow(rgb)
            axes[r, c].set_title(f"{cell_type}: {condition}", fontsize=9)
            axes[r, c].axis("off")
    fig.tight_layout()
    IMAGES.mkdir(exist_ok=True)
    fig.savefig(IMAGES / "synthetic_phenotypes.png", dpi=110)
    print(IMAGES / "synthetic_phenotypes.png")


if __name__ == "__main__":
    reader_screenshot()
    phenotype_figure()
