"""Render the Plate map and Site navigator docks on a screen of RxRx19a's size (200 plates).

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1920x1200x24" python docs/make_plate_map_screenshots.py [SCREEN]

SCREEN (default ``.bench/scale/rxrx19a``; built by ``benchmarks/scale_fixture.py`` from the
synthetic test plate when missing) is 4 experiments x 50 plates x 384 wells x 4 sites. The score
is made up (``bench_plate_overview.score_columns``: controls apart on most plates, noise on every
tenth plate) so that the summary has something to flag. Writes docs/images/plate_map_overview.png,
plate_map_plate.png, plate_map_search.png, site_navigator_filled.png and site_navigator.png.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_plate_overview as bench  # noqa: E402  (the screen and the made-up score)


def settle(app, seconds: float = 0.6) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)


def grab(widget) -> np.ndarray:
    image = widget.grab().toImage()
    image = image.convertToFormat(image.Format.Format_RGBA8888)
    buffer = image.constBits()
    buffer.setsize(image.height() * image.bytesPerLine())
    return np.frombuffer(buffer, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)[:, :image.width()]


def save(array: np.ndarray, name: str) -> None:
    Image.fromarray(np.ascontiguousarray(array)).save(IMAGES / name)
    print(IMAGES / name, array.shape)


def grab_screen(app, widget, below: int = 0) -> np.ndarray:
    """The screen where ``widget`` is, ``below`` px taller (popups are windows of their own)."""
    top_left = widget.mapToGlobal(widget.rect().topLeft())
    pixmap = app.primaryScreen().grabWindow(0, top_left.x(), top_left.y(), widget.width(), widget.height() + below)
    image = pixmap.toImage().convertToFormat(pixmap.toImage().Format.Format_RGBA8888)
    buffer = image.constBits()
    buffer.setsize(image.height() * image.bytesPerLine())
    return np.frombuffer(buffer, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)[:, :image.width()]


def main(screen: Path) -> None:
    if not (screen / "metadata.csv").exists():
        bench.build_screen(screen)
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_gandl import columns as cols
    from napari_gandl._viewer import site_table
    from napari_gandl._widgets.navigator import SiteNavigator
    from napari_gandl._widgets.plate_map import PlateMapWidget

    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(title="napari-gandl")
    viewer.window.resize(1700, 1150)
    viewer.open(str(screen), plugin="napari-gandl")
    table = site_table(viewer)
    bench.wait(app, lambda: table.plate.files_checked)
    settle(app)
    table.set_columns(bench.score_columns(table))
    dock = PlateMapWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Plate map", area="right")
    dock.native.parent().setMinimumWidth(560)
    dock.colour_by.value = "svm_Cpos_vs_Cneg"
    site = int(np.flatnonzero((table.frame[cols.EXPERIMENT] == "HRCE-2") & (table.frame[cols.PLATE] == 18))[40])
    viewer.dims.set_current_step(0, site)
    settle(app, 1.0)
    save(grab(dock.native), "plate_map_overview.png")

    dock.overview.open(dock.overview.plate)
    dock.canvas.setFocus()
    dock.key("right")
    dock.key("right")
    settle(app)
    save(grab(dock.native), "plate_map_plate.png")

    dock.key("escape")
    dock.find.value = "rescue-potent VERO-1"
    dock.search(dock.find.value)
    settle(app)
    save(grab(dock.native), "plate_map_search.png")
    dock.find.value = ""
    dock.search("")

    viewer.window.remove_dock_widget(dock.native)
    navigator = SiteNavigator(viewer)
    viewer.window.add_dock_widget(navigator, name="Site navigator", area="right")
    navigator.native.parent().setMinimumWidth(560)
    settle(app)
    navigator.boxes[cols.PLATE].value = "27"
    navigator.boxes[cols.WELL].value = "G14"
    settle(app)
    summary = navigator.summary.native
    filled_height = summary.mapTo(navigator.native, summary.rect().bottomLeft()).y() + 12
    save(grab(navigator.native)[:filled_height], "site_navigator_filled.png")
    navigator.native.window().activateWindow()
    navigator.find.native.setFocus()
    navigator.find.native.setText("rescue-potent vero-2_3")
    navigator._search(navigator.find.value)  # what typing does (textEdited)
    navigator._completer.complete()          # shown on typing when the box has the focus
    settle(app, 1.0)
    popup = navigator._completer.popup()
    bottom = max(popup.mapToGlobal(popup.rect().bottomLeft()).y() if popup.isVisible() else 0,
                 navigator.summary.native.mapToGlobal(navigator.summary.native.rect().bottomLeft()).y())
    height = bottom - navigator.native.mapToGlobal(navigator.native.rect().topLeft()).y() + 12
    save(grab_screen(app, navigator.native, max(0, height - navigator.native.height()))[:height], "site_navigator.png")
    popup.hide()
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else bench.DEFAULT)
