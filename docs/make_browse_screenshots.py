"""Render the screenshots of `gandl view` and the browsing docks, and of the report in Chromium.

    QT_QPA_PLATFORM=xcb xvfb-run -a python docs/make_browse_screenshots.py gandl-demo

DEMO is a `gandl demo` output folder (synthetic screen, trained GAN-DL
embedding, report). Writes docs/images/{view,plate_map,similar_sites,montage,
report}.png: the window as `gandl view DEMO` opens it, the plate map coloured
by the E2 score, the sites nearest to an active-virus control, a compound's
doses beside the controls, and the report page as headless Chromium draws it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
from PIL import Image
from qtpy.QtWidgets import QApplication

from napari_gandl import columns as cols
from napari_gandl._view import find_inputs, open_view
from napari_gandl._viewer import show_site, site_table
from napari_gandl._widgets.montage import MontageWidget
from napari_gandl.analysis.browser import screenshot as browser_screenshot
from napari_gandl.viewmodels.montage import DOSES

IMAGES = Path(__file__).resolve().parent / "images"


def settle(seconds: float = 0.5) -> None:
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def wait(condition, what: str, timeout: float = 300) -> None:
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.05)
    settle()


def shot(viewer, name: str) -> None:
    settle(0.8)
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(IMAGES / name)
    print(IMAGES / name)


def main(demo: str) -> None:
    IMAGES.mkdir(exist_ok=True)
    inputs = find_inputs(demo)
    viewer = napari.Viewer(title="napari-gandl")
    viewer.window.resize(2300, 1250)
    docks = open_view(viewer, inputs)
    table = site_table(viewer)
    wait(lambda: table.embedding_columns and all(docks[n].record is not None for n in
                                                ("Similar sites", "Perturbation-axis plot", "Dose-response")),
         "the embedding and the analyses")
    plate_map = docks["Plate map"]
    shot(viewer, "view.png")

    if cols.E2_SCORE in plate_map.colour_by.choices:
        plate_map.colour_by.value = cols.E2_SCORE
    active = int(table.frame.index[(table.frame[cols.CONDITION] == "Active SARS-CoV-2")
                                   & table.frame[cols.COMPOUND].isna()][0])
    show_site(viewer, active)
    settle()
    Image.fromarray(_grab(plate_map.native)).save(IMAGES / "plate_map.png")
    print(IMAGES / "plate_map.png")

    for name in ("Perturbation-axis plot", "Dose-response", "GAN-DL embeddings"):
        viewer.window.remove_dock_widget(docks[name].native)
    similar = docks["Similar sites"]
    similar.k.value = 12
    similar.find()
    wait(lambda: similar.found is not None, "the similar sites")
    shot(viewer, "similar_sites.png")

    for layer in [layer for layer in viewer.layers if layer.name.startswith("similar sites")]:
        viewer.layers.remove(layer)
    viewer.window.remove_dock_widget(similar.native)
    montage = MontageWidget(viewer)
    viewer.window.add_dock_widget(montage, name="Montage", area="right")
    montage.mode.value = DOSES
    montage.which.value = montage.which.choices[0]
    montage.per_group.value = 4
    montage.build()
    wait(lambda: montage.montage is not None, "the montage")
    shot(viewer, "montage.png")
    viewer.close()

    if inputs.report is not None:
        browser_screenshot(inputs.report, IMAGES / "report.png", width=1200, height=1500)
        print(IMAGES / "report.png")


def _grab(widget):
    import numpy as np

    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGBA8888)
    buffer = image.constBits()
    buffer.setsize(image.height() * image.bytesPerLine())
    return np.frombuffer(buffer, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)[:, :image.width()]


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "gandl-demo")
