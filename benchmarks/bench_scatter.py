"""Perturbation-axis scatter with 300,000 points: first draw, recolour, slider, hover.

    python benchmarks/bench_scatter.py [--points 300000] [--repeats 3]

Drives the widget's plotting code (``napari_gandl._widgets.perturbation.ScatterPlot``,
the same object the dock widget draws with) on an Agg canvas of the widget's
size, and compares it with the obvious alternative, one ``PathCollection``
(``ax.scatter``) recoloured with ``set_facecolors``. Writes its section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import write_section  # noqa: E402


def synthetic_space(n: int, seed: int = 0, n_compounds: int = 1672):
    """(on, off) coordinates and per-site labels shaped like an RxRx19a E2 space."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, n, p=[0.05, 0.05, 0.1, 0.8])  # Mock, UV, active, treated
    on = np.select([kind < 2, kind == 2], [rng.normal(1, 0.4, n), rng.normal(-1, 0.4, n)],
                   rng.normal(-0.6, 0.7, n))
    off = rng.normal(0, 1, n)
    names = np.array(["Mock", "UV Inactivated SARS-CoV-2", "Active SARS-CoV-2", "compound-treated"], object)
    condition = names[kind]
    compound = np.where(kind == 3, np.char.add("cpd-", rng.integers(0, n_compounds, n).astype(str)), "")
    dose = np.where(kind == 3, rng.choice([0.01, 0.03, 0.1, 0.3, 1.0, 3.0], n), np.nan)
    return np.column_stack([on, off]), condition.astype(object), compound.astype(object), dose


def timed(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(n: int, repeats: int) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from napari_gandl._widgets.perturbation import ScatterPlot
    from napari_gandl.analysis.axes import color_groups
    from napari_gandl.viewmodels.perturbation import build_tree

    coords, condition, compound, dose = synthetic_space(n)
    out = {}

    def new_plot():
        figure = Figure(figsize=(5.2, 4.2), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        plot = ScatterPlot(figure, figure.add_subplot())
        return figure, plot

    by_condition = color_groups(condition, "category")
    colourings = {"condition": (condition, "category"), "dose": (dose, "dose"),
                  "compound": (compound, "category")}
    for name, (values, kind) in colourings.items():
        out[f"colour groups by {name} (part of each recolour below)"] = timed(
            lambda: color_groups(values, kind), repeats)

    def first_draw():
        figure, plot = new_plot()
        plot.set_points(coords)
        plot.set_groups(color_groups(condition, "category"))
        figure.canvas.draw()

    out["first draw (set points, colour groups by condition, draw)"] = timed(first_draw, repeats)
    figure, plot = new_plot()
    plot.set_points(coords)
    plot.set_groups(by_condition)
    figure.canvas.draw()
    state = {"k": 0}

    def recolour():
        state["k"] ^= 1
        plot.set_groups(color_groups(*(colourings["dose"] if state["k"] else colourings["condition"])))
        figure.canvas.draw()

    out["recolour condition ↔ dose (7 groups): groups + set_data + draw"] = timed(recolour, repeats)

    def recolour_compound():
        state["k"] ^= 1
        plot.set_groups(color_groups(*(colourings["compound"] if state["k"] else colourings["condition"])))
        figure.canvas.draw()

    out["recolour condition ↔ compound (1,673 groups, 20 colours): groups + set_data + draw"] = timed(recolour_compound, repeats)
    plot.set_groups(by_condition)
    figure.canvas.draw()
    rng = np.random.default_rng(1)
    targets = rng.integers(0, n, 200)

    def slider():
        for i in targets:
            plot.set_current(int(i))

    out["slider move: current-site marker by blitting (per move)"] = timed(slider, repeats) / len(targets)
    px = plot.ax.transData.transform(coords[targets])
    out["KD-tree for hover/click (built in the worker, once per space)"] = timed(
        lambda: build_tree(coords), repeats)
    plot.nearest(*px[0])

    def hover():
        for x, y in px:
            i = plot.nearest(x, y)
            plot.hover(i, "site")

    out["hover: nearest point + label by blitting (per event)"] = timed(hover, repeats) / len(targets)

    # what the widget does on the GUI thread besides drawing, on a site table of n sites
    # carrying a 512-d embedding: read the colouring column
    import pandas as pd

    from napari_gandl.analysis.axes import color_values

    emb = np.random.default_rng(4).normal(size=(n, 512)).astype(np.float32)
    table = pd.concat([pd.DataFrame({
        "site_id": np.arange(n).astype(str), "cell_type": np.where(np.arange(n) % 2, "HRCE", "VERO"),
        "disease_condition": np.where(condition == "compound-treated", "Active SARS-CoV-2", condition),
        "treatment": np.where(compound == "", None, compound), "treatment_conc": dose}),
        pd.DataFrame(emb, columns=[f"f{i:03d}" for i in range(512)])], axis=1)
    all_rows = np.arange(n)
    out["widget: colour values from the site table (dose)"] = timed(
        lambda: color_values(table, all_rows, "dose"), repeats)
    out["widget: colour values from the site table (compound)"] = timed(
        lambda: color_values(table, all_rows, "compound"), repeats)
    del table, emb

    # the alternative: one PathCollection with per-point colours
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    colours_a = cmap(np.searchsorted(np.unique(condition.astype(str)), condition.astype(str)))
    colours_b = cmap(rng.integers(0, 7, n))
    figure2 = Figure(figsize=(5.2, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure2)
    ax2 = figure2.add_subplot()

    def scatter_first():
        ax2.cla()
        ax2.scatter(coords[:, 0], coords[:, 1], s=plot.markersize ** 2, c=colours_a, linewidths=0)
        figure2.canvas.draw()

    out["alternative: ax.scatter first draw"] = timed(scatter_first, max(1, repeats - 1))
    collection = ax2.collections[0]
    state2 = {"k": 0}

    def scatter_recolour():
        state2["k"] ^= 1
        collection.set_facecolors(colours_b if state2["k"] else colours_a)
        figure2.canvas.draw()

    out["alternative: ax.scatter set_facecolors + draw"] = timed(scatter_recolour, max(1, repeats - 1))

    # projecting 300,000 sites of a 512-d embedding onto the space
    from napari_gandl.analysis import PerturbationSpace

    X = np.random.default_rng(2).normal(size=(n, 512)).astype(np.float32)
    space = PerturbationSpace("E2", "C+", "C-", np.random.default_rng(3).normal(size=(512, 2)),
                              np.zeros(2), np.zeros(512), np.zeros(512))
    out["projection of 300k x 512 embedding onto (on, off)"] = timed(lambda: space.transform(X), repeats)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    results = bench(args.points, args.repeats)
    rows = "\n".join(f"| {name} | {1000 * seconds:.1f} |" for name, seconds in results.items())
    body = (
        f"{args.points:,} points on an Agg canvas of the dock widget's size (520 x 420 px), "
        f"best of {args.repeats}; `python benchmarks/bench_scatter.py`.\n\n"
        "The widget draws one marker-only `Line2D` per colour group and re-fills them in place "
        "(`set_data`) on a recolour; the current site and the hover label are animated artists "
        "blitted over a cached background, so moving the site slider or hovering never redraws "
        "the points. The `ax.scatter` rows are the single-`PathCollection` alternative "
        "(per-point colours, `set_facecolors`) for comparison.\n\n"
        "| step | ms |\n|---|---|\n" + rows + "\n"
    )
    print(body)
    if not args.no_write:
        print(write_section("scatter", "Perturbation-axis scatter, 300,000 points", body))


if __name__ == "__main__":
    main()
