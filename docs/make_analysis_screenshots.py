"""Render the analysis-widget screenshots with a real napari window.

    QT_QPA_PLATFORM=xcb xvfb-run -a python docs/make_analysis_screenshots.py

Opens the synthetic demo screen (written to a cache folder on first use),
uses its handcrafted features as the embedding (no GAN training needed), and
writes docs/images/analysis_{svm,axes,dose}.png: each widget docked and in use.
"""

from __future__ import annotations

import time
from pathlib import Path

import napari
import numpy as np
from matplotlib.backend_bases import MouseEvent
from PIL import Image
from qtpy.QtWidgets import QApplication

from napari_gandl._sample_data import sample_plate_path
from napari_gandl.viewmodels.embedding_choice import HANDCRAFTED
from napari_gandl._widgets.perturbation import PerturbationPlotWidget
from napari_gandl._widgets.dose_response import DoseResponseWidget
from napari_gandl._widgets.svm import SVMWidget

IMAGES = Path(__file__).resolve().parent / "images"


def settle(seconds: float = 0.3) -> None:
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def run(widget) -> None:
    widget.run()
    while widget.busy:
        QApplication.processEvents()
        time.sleep(0.05)
    if widget.record is None:
        raise RuntimeError(f"{widget.title}: {widget.status.value}")
    settle()


def shot(viewer, name: str) -> None:
    IMAGES.mkdir(exist_ok=True)
    settle(0.5)
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(IMAGES / name)
    print(IMAGES / name)


def dock(viewer, widget, name: str):
    widget.picker.source.value = HANDCRAFTED
    widget.picker.normalisation.value = "none"
    d = viewer.window.add_dock_widget(widget, name=name, area="right")
    d.setMinimumWidth(620)
    return d


def main() -> None:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1920, 1080)
    viewer.open(str(sample_plate_path("demo")), plugin="napari-gandl")

    svm = SVMWidget(viewer)
    d = dock(viewer, svm, "SVM classification")
    svm.task.value = "C+ vs C- (merged)"
    run(svm)
    shot(viewer, "analysis_svm.png")
    viewer.window.remove_dock_widget(d)

    axes = PerturbationPlotWidget(viewer)
    d = dock(viewer, axes, "Perturbation-axis plot")
    run(axes)
    coords = axes.plot.coords
    axes.canvas.draw()
    # lasso around the rescued-looking treated sites, then hover one point
    x0, x1 = 0.4, coords[:, 0].max() + 0.5
    y0, y1 = np.percentile(coords[:, 1], [5, 95])
    axes.selection_name.value = "rescued_like"
    axes.lasso.value = True
    axes.select_polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    axes.lasso.value = False
    # step to the selected site lowest on the off-axis (magenta square), hover the left-most point
    chosen = axes.stepper.rows
    low = int(np.argmin(coords[axes._point_of_row[chosen], 1]))
    for _ in range(low):
        axes.stepper.step(+1)
    settle(0.8)
    axes.canvas.draw()
    settle()
    i = int(np.argmin(coords[:, 0]))
    x, y = axes.ax.transData.transform(coords[i])
    MouseEvent("motion_notify_event", axes.canvas, x, y)._process()
    shot(viewer, "analysis_axes.png")
    axes.color_by.value = "dose"
    settle()
    shot(viewer, "analysis_axes_dose.png")
    viewer.window.remove_dock_widget(d)

    dose = DoseResponseWidget(viewer)
    d = dock(viewer, dose, "Dose-response")
    run(dose)
    dose.show_compound("rescue-potent")
    dose.show_dose_point("rescue-potent", "HRCE", 0.1)
    shot(viewer, "analysis_dose.png")
    viewer.close()


if __name__ == "__main__":
    main()
