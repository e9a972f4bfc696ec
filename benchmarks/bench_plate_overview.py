"""The Plate map dock's overview at RxRx19a's size: 4 experiments x 50 plates x 384 wells x 4 sites.

Opens a screen of that size in napari (by default ``.bench/scale/rxrx19a``, which
``benchmarks/scale_fixture.py`` builds by hard links from the synthetic test plate when it is
missing), waits until the viewer has listed its files, adds an SVM-like score and a hit column,
then measures on the GUI thread (best and median of 5):

- the view-model alone: ``PlateMap`` (wells of every plate), ``PlateOverview``, the colours of a
  categorical and of a continuous column, every plate's picture, the per-plate summary (Z');
- the dock: ``PlateMapWidget(viewer)`` docked until its overview is painted (the map, colours,
  summary table, 200 pictures, the whole dock painted by ``grab``): what a user waits for;
- moves, each with the dock painted again: opening a plate and back, recolouring, a well and
  a compound search.

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1920x1200x24" python benchmarks/bench_plate_overview.py [SCREEN]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / ".bench" / "scale" / "rxrx19a"


def timed(fn, repeats: int = 5) -> dict:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"best_s": round(min(times), 4), "median_s": round(statistics.median(times), 4)}


def build_screen(dest: Path) -> None:
    """The 307,200-site screen, hard links to the tiles of the synthetic test plate."""
    from napari_gandl.synthetic import write_sample_plate

    source = dest.parent / "small-test" / "rxrx19a"
    if not (source / "metadata.csv").exists():
        write_sample_plate(source, preset="test", seed=0)
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale_fixture.py"), str(source), str(dest)], check=True)


def score_columns(table) -> dict:
    """A score that separates the controls (C+ near 1, C- near -1) on most plates, noise on every
    tenth plate, and one compound's wells as hits."""
    from napari_gandl import columns as cols
    from napari_gandl.tables import control_labels

    frame = table.frame
    rng = np.random.default_rng(0)
    control = control_labels(frame)
    score = np.where(control == "C+", 1.0, np.where(control == "C-", -1.0, 0.0)) + rng.normal(0, 0.15, len(frame))
    plate = frame.groupby([cols.EXPERIMENT, cols.PLATE], sort=False, observed=True).ngroup().to_numpy()
    noisy = plate % 10 == 7
    score[noisy] = rng.normal(0, 1, noisy.sum())
    hit = (frame[cols.COMPOUND] == frame[cols.COMPOUND].dropna().iloc[0]).to_numpy()
    return {"svm_Cpos_vs_Cneg": score, cols.HIT: hit}


def wait(app, condition, timeout: float = 600) -> None:
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise RuntimeError("timed out")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("screen", nargs="?", type=Path, default=DEFAULT)
    args = parser.parse_args()
    if not (args.screen / "metadata.csv").exists():
        build_screen(args.screen)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_gandl import columns as cols
    from napari_gandl._viewer import site_table
    from napari_gandl._widgets.plate_map import PlateMapWidget
    from napari_gandl.viewmodels.plate_map import PlateMap
    from napari_gandl.viewmodels.plate_overview import PlateOverview, plate_summary

    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer()
    viewer.window.resize(1600, 1000)
    start = time.perf_counter()
    viewer.open(str(args.screen), plugin="napari-gandl")
    table = site_table(viewer)
    opened = time.perf_counter() - start
    wait(app, lambda: table.plate.files_checked)  # the viewer lists the files in a worker: not during the timing
    wait(app, lambda: cols.PROBLEM in table.frame.columns)
    app.processEvents()
    table.set_columns(score_columns(table))

    results: dict = {"sites": len(table), "open_s": round(opened, 2), "load": os.getloadavg()}
    pm = PlateMap(table)
    results.update(plates=len(pm.plates), wells=len(pm.wells))
    results["PlateMap"] = timed(lambda: PlateMap(table))
    results["PlateOverview"] = timed(lambda: PlateOverview(pm))
    results["colour_condition"] = timed(lambda: pm.colour_by(cols.CONDITION))
    results["colour_score"] = timed(lambda: pm.colour_by("svm_Cpos_vs_Cneg"))
    condition = pm.colour_by(cols.CONDITION)
    results["plate_images"] = timed(lambda: pm.plate_images(condition))
    results["plate_summary"] = timed(lambda: plate_summary(pm, condition))
    summary = plate_summary(pm, condition)
    results["flagged_plates"] = int((summary["flag"] != "").sum())

    docks = []

    def dock():
        widget = PlateMapWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Plate map", area="right")
        wait(app, widget.canvas.isVisible)
        widget.native.grab()  # paints the whole dock, as shown, into a pixmap
        docks.append(widget)

    def undock():
        while docks:
            viewer.window.remove_dock_widget(docks.pop().native)
        app.processEvents()

    times = []
    for _ in range(5):
        start = time.perf_counter()
        dock()
        times.append(time.perf_counter() - start)
        undock()
    results["dock_overview_painted"] = {"best_s": round(min(times), 4), "median_s": round(statistics.median(times), 4)}

    dock()
    widget = docks[-1]
    results["dock_grab"] = timed(widget.native.grab)
    from qtpy.QtGui import QImage

    whole = QImage(widget.canvas.size(), QImage.Format.Format_RGB32)
    results["canvas_render_all_200_plates"] = timed(lambda: widget.canvas.render(whole))

    def open_and_back():
        widget.overview.open(123)
        widget.native.grab()
        widget.overview.back()
        widget.native.grab()

    results["open_plate_and_back"] = timed(open_and_back)

    def recolour(column):
        widget.colour_by.value = column
        widget.native.grab()

    results["recolour_condition_then_score"] = timed(lambda: (recolour(cols.CONDITION), recolour("svm_Cpos_vs_Cneg")))
    results["search_well"] = timed(lambda: (widget.search("B02"), widget.native.grab()))
    compound = str(table.frame[cols.COMPOUND].dropna().iloc[0])
    results["search_compound"] = timed(lambda: (widget.search(compound), widget.native.grab()))
    results["canvas"] = [widget.canvas.width(), widget.canvas.height(), widget.canvas.cell, widget.canvas.per_line]
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    viewer.close()


if __name__ == "__main__":
    main()
