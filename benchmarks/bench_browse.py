"""Browsing a screen: plate-map drawing on the GUI thread, similar-site search at RxRx19a scale.

- Plate map: 4 plates x 1,536 wells (32 x 48), 4 sites per well (24,576 sites),
  the dock's canvas at a docked size; each step is GUI-thread time, best of 5:
  building the map (once per plate opened), recolouring by a categorical and by
  a continuous column (colours + a synchronous repaint), moving the current
  site, and a hover (hit test + the well's text).
- Similar sites: 300,000 sites x 512 features (random, float32), scikit-learn
  NearestNeighbors (brute force, cosine order through unit rows): building the
  index and a query for the 12 nearest sites of one site, of a 50-site
  selection, and within one plate (its index built on first use); the dock
  runs both in workers.

    QT_QPA_PLATFORM=xcb xvfb-run -a python benchmarks/bench_browse.py [--no-report]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def synthetic_table(plates: int = 4, rows: int = 32, cols: int = 48, sites: int = 4):
    """A SiteTable of ``plates`` 1,536-well plates (no pixels: the plate map needs only the table)."""
    from napari_gandl.plate.model import Plate
    from napari_gandl.viewmodels import SiteTable

    rng = np.random.default_rng(0)
    letters = [chr(ord("A") + r) if r < 26 else "A" + chr(ord("A") + r - 26) for r in range(rows)]
    records = []
    for p in range(1, plates + 1):
        for r in letters:
            for c in range(1, cols + 1):
                condition = rng.choice(["Mock", "UV Inactivated SARS-CoV-2", "Active SARS-CoV-2"], p=[.1, .1, .8])
                compound = f"cmpd-{rng.integers(1672)}" if rng.random() < 0.7 else None
                for s in range(1, sites + 1):
                    records.append({"site_id": f"HRCE-{p}_{p}_{r}{c:02d}_{s}", "well_id": f"HRCE-{p}_{p}_{r}{c:02d}",
                                    "cell_type": "HRCE", "experiment": f"HRCE-{p}", "plate": p, "well": f"{r}{c:02d}",
                                    "site": s, "disease_condition": condition, "treatment": compound,
                                    "treatment_conc": float(rng.choice([0.01, 0.1, 1, 10])) if compound else np.nan,
                                    "problem": ""})
    sites = pd.DataFrame(records)
    plate = Plate(root=Path("."), kind="rxrx", sites=sites, stains=[], tile_shape=(64, 64),
                  dtype=np.dtype(np.uint8), read_tile_strict=None, read_tile_lenient=lambda *_: None)
    table = SiteTable(plate)
    table.set_columns({"svm_Cpos_vs_Cneg": rng.normal(size=len(sites))})
    return table


def bench_plate_map() -> dict:
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QApplication

    from napari_gandl._widgets._plate_canvas import canvas_classes
    from napari_gandl.viewmodels.plate_map import PlateMap
    from napari_gandl.viewmodels.plate_overview import PlateOverview

    app = QApplication.instance() or QApplication([])
    table = synthetic_table()
    build = best(lambda: PlateMap(table), repeats=3)
    pm = PlateMap(table)
    overview = PlateOverview(pm)
    overview.open(0)  # one plate, well by well (the overview draws the same pictures smaller)
    canvas = canvas_classes()[0](lambda where: None, lambda where: "", lambda key: None)
    canvas.resize(560, 640)
    canvas.show()
    app.processEvents()

    def recolour(column):
        canvas.show_state(overview, pm.colour_by(column))
        canvas.repaint()

    results = {"n_sites": len(table), "n_wells": len(pm.wells), "build": build,
               "recolour_condition": best(lambda: recolour("disease_condition")),
               "recolour_compound": best(lambda: recolour("treatment")),
               "recolour_score": best(lambda: recolour("svm_Cpos_vs_Cneg"))}
    colour_only = best(lambda: pm.colour_by("svm_Cpos_vs_Cneg"))
    results["colours_score"] = colour_only

    def current():
        canvas.current_well = pm.well_of_site(int(np.random.default_rng().integers(len(table))))
        canvas.repaint()

    results["current_site"] = best(current)
    colouring = pm.colour_by("disease_condition")
    canvas.show_state(overview, colouring)
    canvas.repaint()
    centre = canvas.well_centre(int(pm.wells_of(0)[len(pm.wells_of(0)) // 2]))
    results["hover"] = best(lambda: pm.describe_well(canvas.hit(QPoint(centre))[1], colouring))
    return results


def bench_similar(n: int = 300_000, dim: int = 512) -> dict:
    from napari_gandl.viewmodels.similar import NeighbourIndex

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, dim), dtype=np.float32)
    plates = np.repeat(np.arange(n // 1536 + 1), 1536)[:n].astype(str).astype(object)
    rows = np.arange(n)
    start = time.perf_counter()
    index = NeighbourIndex(X, rows, plates)
    build = time.perf_counter() - start
    one = best(lambda: index.query(12345, k=12), repeats=5)
    selection = rng.choice(n, 50, replace=False)
    many = best(lambda: index.query(selection, k=12), repeats=5)
    start = time.perf_counter()
    index.query(12345, k=12, within_plate=True)
    first_within = time.perf_counter() - start
    within = best(lambda: index.query(12345, k=12, within_plate=True), repeats=5)
    found = index.query(12345, k=12)
    assert found["site"].iloc[0] == 12345
    return {"n": n, "dim": dim, "build": build, "one": one, "selection": many, "first_within": first_within,
            "within": within}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-report", action="store_true", help="print the section, leave docs/benchmarks.md alone")
    args = ap.parse_args()
    from _report import publish

    pm = bench_plate_map()
    print("plate map", pm, flush=True)
    sim = bench_similar()
    print("similar", sim, flush=True)
    ms = lambda s: f"{s * 1000:.0f} ms" if s >= 0.01 else f"{s * 1000:.1f} ms"  # noqa: E731
    lines = [
        f"### Plate map: {pm['n_wells']:,} wells on 4 plates of 1,536 wells ({pm['n_sites']:,} sites)",
        "",
        "GUI-thread time of the dock's steps (best of 5), canvas 560 x 640 px; a recolour is the "
        "well colours from the site table plus a synchronous repaint of the four plates and the legend.",
        "",
        "| step | time |",
        "|---|---|",
        f"| build the map (once per plate opened) | {ms(pm['build'])} |",
        f"| recolour by condition (categorical) | {ms(pm['recolour_condition'])} |",
        f"| recolour by compound (1,672 categories) | {ms(pm['recolour_compound'])} |",
        f"| recolour by an SVM score (continuous; of which colours {ms(pm['colours_score'])}) | "
        f"{ms(pm['recolour_score'])} |",
        f"| slider move: outline the current site's well + repaint | {ms(pm['current_site'])} |",
        f"| hover: well under the cursor + its text | {ms(pm['hover'])} |",
        "",
        f"Goal: no GUI-thread stall over 100 ms. Longest step above: "
        f"{ms(max(v for k, v in pm.items() if k not in ('n_sites', 'n_wells')))}.",
        "",
        f"### Similar sites: {sim['n']:,} sites x {sim['dim']} features",
        "",
        "scikit-learn `NearestNeighbors(algorithm='brute')` on rows scaled to unit length (euclidean order = "
        "cosine order), random float32 features, 12 nearest, one BLAS thread; queries best of 5. The dock "
        "builds the index and runs each query in a worker, so neither stalls the GUI.",
        "",
        "| step | time |",
        "|---|---|",
        f"| build the index (worker) | {ms(sim['build'])} |",
        f"| query: one site, across plates (worker) | {ms(sim['one'])} |",
        f"| query: a 50-site selection (mean direction), across plates | {ms(sim['selection'])} |",
        f"| query within the site's plate, first time (builds that plate's index) | {ms(sim['first_within'])} |",
        f"| query within the site's plate | {ms(sim['within'])} |",
        "",
        f"Load average (1 min) when the run ended: {os.getloadavg()[0]:.1f}.",
    ]
    publish("browse", "Browsing: plate map and similar sites (bench_browse.py)", "\n".join(lines),
            write=not args.no_report)


if __name__ == "__main__":
    main()
