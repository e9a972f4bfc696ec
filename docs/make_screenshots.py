"""Render the documentation screenshots with a real napari window.

    QT_QPA_PLATFORM=xcb xvfb-run -a python docs/make_screenshots.py

Writes docs/images/reader.png from the synthetic demo screen (written to a
cache folder on first use); docs/make_synthetic_figures.py draws the figures
of the synthetic screens.
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
    viewer.window.resize(1400, 800)
    viewer.open(str(sample_plate_path("demo")), plugin="napari-gandl")
    viewer.window.add_plugin_dock_widget("napari-gandl", "Site navigator")
    viewer.dims.set_current_step(0, 3)
    settle()
    viewer.reset_view()
    save(viewer.screenshot(canvas_only=False, flash=False), "reader.png")
    viewer.close()


if __name__ == "__main__":
    reader_screenshot()
