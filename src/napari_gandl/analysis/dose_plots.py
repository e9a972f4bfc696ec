"""Dose-response figures: dose means ± s.e.m. with the fitted four-parameter logistic.

The report's small multiples (:func:`plot_curves`) and the Dose-response dock's
per-compound plot (:func:`plot_compound`) draw every curve with
:func:`draw_curve` over the C+ / C- levels of :func:`draw_levels`, from the
``curves`` and ``points`` tables of :mod:`napari_gandl.analysis.dose`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from napari_gandl.analysis.dose import logistic4
from napari_gandl.palettes import CONTROL_COLORS


def draw_levels(ax, fontsize: float = 8) -> None:
    """The C+ (+1) and C- (-1) levels as dashed lines, each labelled at its right end."""
    from matplotlib.transforms import blended_transform_factory

    at_right = blended_transform_factory(ax.transAxes, ax.transData)
    for y, color, text in ((1, CONTROL_COLORS["C+"], "C+ (uninfected) +1"),
                           (-1, CONTROL_COLORS["C-"], "C- (infected) −1")):
        ax.axhline(y, ls="--", lw=0.8, color=color, zorder=0)
        ax.text(0.99, y, text, transform=at_right, ha="right", va="bottom", fontsize=fontsize, color=color)


def draw_curve(ax, points: pd.DataFrame, fit: pd.Series | None, color, label: str = "",
               ec50: bool = True, edge: str = "black"):
    """One curve on ``ax``: dose means ± s.e.m. (``points`` of one compound x cell type), the
    fitted 4PL when ``fit`` is a fitted row, its EC50 marked. Returns the dose points' Line2D."""
    p = points.sort_values("dose")
    container = ax.errorbar(p["dose"], p["mean"], yerr=p["sem"].fillna(0).to_numpy(), fmt="o", ms=5,
                            color=color, capsize=2, label="_nolegend_" if fit is not None else label)
    if fit is not None:
        xs = np.linspace(np.log10(p["dose"].min()) - 0.3, np.log10(p["dose"].max()) + 0.3, 200)
        ax.plot(10 ** xs, logistic4(xs, fit["bottom"], fit["top"], fit["log10_ec50"], fit["hill"]), color=color,
                lw=1.5, label=label)
        if ec50:
            y50 = (fit["bottom"] + fit["top"]) / 2
            ax.axvline(fit["ec50_uM"], color=color, ls=":", lw=1)
            ax.plot([fit["ec50_uM"]], [y50], marker="D", ms=7, color=color, mec=edge, ls="none")
    ax.set_xscale("log")
    return container.lines[0]


def plot_compound(ax, compound: str, curves: pd.DataFrame, points: pd.DataFrame,
                  foreground: str = "black", background: str = "white") -> dict:
    """Every cell type's curve of ``compound`` on ``ax``, labelled with EC50, Hill, q and flags.

    Returns ``{Line2D of the dose points: (compound, cell type, doses)}`` (to pick a dose)."""
    from napari_gandl.palettes import category_colors

    pts = points[points["compound"] == compound]
    cells = sorted(pts["cell_type"].unique())
    fits = curves[curves["compound"] == compound].set_index("cell_type")
    draw_levels(ax)
    pickable = {}
    for color, cell in zip(category_colors(cells), cells):
        p = pts[pts["cell_type"] == cell]
        fit = fits.loc[cell] if cell in fits.index and fits.loc[cell, "status"] == "fitted" else None
        if fit is None:
            label = f"{cell} (not fitted)"
        else:
            label = (f"{cell}: EC50 {fit['ec50_uM']:.3g} µM, Hill {fit['hill']:.2g}, q {fit['q_value']:.2g}"
                     f"{' (hit)' if fit['hit'] else ''}")
            if fit.get("flag"):
                label += f"\n  ⚠ {fit['flag']}"
        line = draw_curve(ax, p, fit, color, label, edge=foreground)
        pickable[line] = (compound, cell, p.sort_values("dose")["dose"].to_numpy())
    ax.set_xlabel("dose (µM)", color=foreground)
    ax.set_ylabel("E2 on-perturbation score", color=foreground)
    ax.set_title(compound, fontsize=10, color=foreground)
    legend = ax.legend(fontsize=8, loc="upper left", framealpha=0.7)
    legend.get_frame().set_facecolor(background)
    for text in legend.get_texts():
        text.set_color(foreground)
    return pickable


def plot_curves(curves: pd.DataFrame, points: pd.DataFrame, keys: Sequence[tuple[str, str]],
                path=None, ncols: int = 4, title: str | None = None):
    """Small multiples: dose means ± s.e.m. and the fitted 4PL for each
    (compound, cell_type); C+ (+1) and C- (-1) levels dashed. Returns the Figure."""
    from matplotlib.figure import Figure

    keys = list(keys)
    n = max(len(keys), 1)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3.0 * ncols, 2.5 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cidx = curves.set_index(["compound", "cell_type"])
    for ax, (comp, cell) in zip(axes.ravel(), keys):
        p = points[(points["compound"] == comp) & (points["cell_type"] == cell)]
        row = cidx.loc[(comp, cell)] if (comp, cell) in cidx.index else None
        fit = row if row is not None and row["status"] == "fitted" and len(p) else None
        draw_levels(ax, fontsize=6)
        draw_curve(ax, p, fit, "black", ec50=False)
        label = f"{comp} ({cell})"
        if fit is not None:
            label += f"\nEC50 {fit['ec50_uM']:.3g} µM, q {fit['q_value']:.2g}"
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("dose (µM)", fontsize=7)
        ax.set_ylabel("on-perturbation", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        fig.savefig(path)
    return fig
