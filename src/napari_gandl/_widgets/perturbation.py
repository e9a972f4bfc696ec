"""Perturbation-axis plot widget: the E2 / C2 scatter linked to the viewer.

The space (``analysis.axes.fit_e2`` / ``fit_c2``) is fitted in a worker; the
plot is a :class:`ScatterPlot` (plain matplotlib, no Qt, so the benchmark
drives the same code on an Agg canvas):

* one marker-only ``Line2D`` per colour, re-filled in place with
  ``set_data`` on a recolour: Agg draws the markers of one artist by stamping
  one cached marker, several times faster than one ``PathCollection`` with
  per-point colours (timings for 300,000 points in ``docs/benchmarks.md``);
  categories beyond the 20-colour palette share their colour's artist;
* the current site (following the viewer's slider) and the hover label are
  animated artists drawn by blitting over a cached background: a slider move
  or a hover never redraws the points;
* nearest-point lookup (hover, click) uses a KD-tree built once per space.

Click a point: the viewer jumps to that site. Lasso (tick "lasso"): the
enclosed sites become a boolean column of the site table, stepped through
with ◀ / ▶.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container, LineEdit

from napari_gandl import columns as cols
from napari_gandl.analysis.axes import color_groups, color_values
from napari_gandl.viewmodels import perturbation as model
from napari_gandl.viewmodels.perturbation import build_tree

from napari_gandl._widgets._analysis import AnalysisWidget, SiteStepper, add_native, themed_figure
from napari_gandl._viewer import show_site, site_table
from napari_gandl._widgets.common import style_axes

if TYPE_CHECKING:
    import napari

SPACES = model.SPACES
MAX_LEGEND = 14


class ScatterPlot:
    """A large scatter whose colours, current site and hover label update in place."""

    def __init__(self, figure, ax, colors: dict | None = None):
        colors = colors or getattr(figure, "gandl_colors", {"background": "white", "foreground": "black"})
        self.figure, self.ax, self.colors = figure, ax, colors
        self.canvas = figure.canvas
        self.coords = np.zeros((0, 2))
        self.lines = []
        self.markersize = 4.0
        self._tree = None
        self._scale = np.ones(2)
        self._background = None
        fg, bg = colors["foreground"], colors["background"]
        self.selected = ax.plot([], [], ls="none", marker="o", mfc="none", mec=fg, mew=0.8,
                                zorder=5, label="_selected")[0]
        self.current = ax.plot([], [], ls="none", marker="s", ms=14, mfc="none", mec="#ff00ff", mew=2.2,
                               zorder=10, animated=True, label="_current")[0]
        self.annotation = ax.annotate("", (0, 0), xytext=(12, 12), textcoords="offset points",
                                      fontsize=9, color=fg, zorder=11, animated=True, visible=False,
                                      bbox={"boxstyle": "round", "fc": bg, "ec": fg, "alpha": 0.9})
        from matplotlib.transforms import blended_transform_factory

        at_top = blended_transform_factory(ax.transData, ax.transAxes)
        self.level_labels = {}
        for x in (-1, 1):
            ax.axvline(x, ls="--", lw=0.7, color="grey", zorder=0)
            # each label opens away from the other line, so they never overlap
            self.level_labels[x] = ax.text(x, 0.99, f"{x:+d}", transform=at_top, ha="right" if x < 0 else "left",
                                           va="top",
                                           fontsize=9, color=fg, zorder=2,
                                           bbox={"boxstyle": "round,pad=0.15", "fc": bg, "ec": "none", "alpha": 0.8})
        self.canvas.mpl_connect("draw_event", self._on_draw)

    # ------------------------------------------------------------------ data
    def set_points(self, coords: np.ndarray, xlabel: str = "on-perturbation",
                   ylabel: str = "off-perturbation", tree=None, ends: tuple[str, str] = ("", "")) -> None:
        """New coordinates (then call :meth:`set_groups`); the caller redraws.
        ``tree``: a prebuilt ``build_tree`` result, else built on the first hover.
        ``ends``: the classes whose centres are at -1 and +1, labelled on those lines."""
        for x, name in zip((-1, 1), ends):
            self.level_labels[x].set_text(f"{name} {x:+d}".strip())
        self.coords = np.asarray(coords, np.float64)
        n = len(self.coords)
        self.markersize = float(np.clip(np.sqrt(4e4 / max(n, 1)), 1.0, 6.0))
        self._tree, self._scale = tree if tree is not None else (None, np.ones(2))
        if n:
            lo, hi = self.coords.min(axis=0), self.coords.max(axis=0)
            pad = 0.05 * (hi - lo) + 1e-9
            self.ax.set_xlim(min(lo[0] - pad[0], -1.2), max(hi[0] + pad[0], 1.2))
            self.ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        self.ax.set_xlabel(xlabel)
        self.ax.set_ylabel(ylabel)
        self.selected.set_data([], [])
        self.current.set_data([], [])
        self.annotation.set_visible(False)

    def set_groups(self, groups, title: str = "") -> None:
        """Re-fill the per-colour artists (created once, reused) and the legend; the
        caller redraws. Groups sharing a colour (categories beyond the palette's 20)
        share one artist, so 1,672 compounds cost 20 artists, not 1,672."""
        from matplotlib.colors import to_rgba
        from matplotlib.lines import Line2D

        merged: dict[tuple, list] = {}
        for _, color, idx in groups:
            merged.setdefault(to_rgba(color), []).append(idx)
        while len(self.lines) < len(merged):
            self.lines.append(self.ax.plot([], [], ls="none", marker="o", mew=0, zorder=1,
                                           label=f"_group{len(self.lines)}")[0])
        for i, line in enumerate(self.lines):
            if i < len(merged):
                color, parts = list(merged.items())[i]
                idx = parts[0] if len(parts) == 1 else np.concatenate(parts)
                line.set_data(self.coords[idx, 0], self.coords[idx, 1])
                line.set_color(color)
                line.set_markersize(self.markersize)
                line.set_zorder(1 + i / 1000)
                line.set_visible(True)
            else:
                line.set_data([], [])
                line.set_visible(False)
        handles = [Line2D([], [], ls="none", marker="o", ms=6, mew=0, color=color, label=f"{label} ({len(idx)})")
                   for label, color, idx in groups[:MAX_LEGEND]]
        if len(groups) > MAX_LEGEND:
            handles.append(Line2D([], [], ls="none", label=f"… {len(groups) - MAX_LEGEND} more"))
        legend = self.ax.get_legend()
        if legend is not None:
            legend.remove()
        if handles:
            # below the plot, in two columns: the points keep the dock's width
            legend = self.ax.legend(handles=handles, fontsize=9, loc="upper center", ncols=2,
                                    bbox_to_anchor=(0.5, -0.16), borderaxespad=0, frameon=False)
            for text in legend.get_texts():
                text.set_color(self.colors["foreground"])
        self.ax.set_title(title, fontsize=9, color=self.colors["foreground"])

    def set_selected(self, idx) -> None:
        idx = np.asarray(idx, np.int64)
        self.selected.set_data(self.coords[idx, 0], self.coords[idx, 1])
        self.selected.set_markersize(self.markersize + 2)

    # ------------------------------------------------------------------ lookups
    def nearest(self, x_px: float, y_px: float, tolerance_px: float = 6.0) -> int | None:
        """Index of the point nearest to display position (x_px, y_px), if close enough."""
        if not len(self.coords):
            return None
        if self._tree is None:
            self._tree, self._scale = build_tree(self.coords)
        x, y = self.ax.transData.inverted().transform((x_px, y_px))
        k = min(32, len(self.coords))
        _, cand = self._tree.query(np.array([x, y]) / self._scale, k=k)
        cand = np.atleast_1d(cand)
        cand = cand[cand < len(self.coords)]
        px = self.ax.transData.transform(self.coords[cand])
        d = np.hypot(px[:, 0] - x_px, px[:, 1] - y_px)
        best = int(np.argmin(d))
        return int(cand[best]) if d[best] <= tolerance_px else None

    # ------------------------------------------------------------------ animated artists
    def set_current(self, i: int | None) -> None:
        if i is None:
            self.current.set_data([], [])
        else:
            self.current.set_data([self.coords[i, 0]], [self.coords[i, 1]])
        self.blit()

    def hover(self, i: int | None, text: str = "") -> None:
        if i is None:
            if not self.annotation.get_visible():
                return
            self.annotation.set_visible(False)
        else:
            # the label opens towards the middle of the plot, so it never covers the legend beside it
            x, y = self.ax.transAxes.inverted().transform(self.ax.transData.transform(self.coords[i]))
            right, above = x < 0.5, y < 0.5
            self.annotation.xy = tuple(self.coords[i])
            self.annotation.set_text(text)
            self.annotation.set_position((12 if right else -12, 12 if above else -12))
            self.annotation.set_horizontalalignment("left" if right else "right")
            self.annotation.set_verticalalignment("bottom" if above else "top")
            self.annotation.set_visible(True)
        self.blit()

    def _on_draw(self, event=None) -> None:
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self._draw_animated()

    def _draw_animated(self) -> None:
        for artist in (self.current, self.annotation):
            if artist.get_visible():
                self.ax.draw_artist(artist)

    def blit(self) -> None:
        """Redraw only the animated artists over the cached background."""
        if self._background is None:
            self.canvas.draw_idle()
            return
        self.canvas.restore_region(self._background)
        self._draw_animated()
        self.canvas.blit(self.figure.bbox)


def site_text(table: pd.DataFrame, row: int) -> str:
    columns = [c for c in ("site_id", "cell_type", "disease_condition", "treatment", "treatment_conc")
               if c in table.columns]
    r = table.iloc[row, table.columns.get_indexer(columns)]
    parts = [str(r.get("site_id", row))]
    for c in ("cell_type", "disease_condition", "treatment", "treatment_conc"):
        v = r.get(c)
        if v is not None and not (isinstance(v, float) and np.isnan(v)) and v != "":
            parts.append(f"{v:g} µM" if c == "treatment_conc" else str(v))
    return "\n".join(parts)


# --------------------------------------------------------------------------- the widget

class PerturbationPlotWidget(AnalysisWidget):
    """E2 / C2 scatter of every site: hover, click to go, lasso to select."""

    kind = "axes"
    title = "Perturbation plot"
    run_text = "Compute space"

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.sites = site_table(viewer)  # the choices below read it
        self.space = ComboBox(label="space", choices=list(SPACES), value=SPACES[0])
        self.color_by = ComboBox(label="colour by", choices=self._color_choices, value="condition")
        self.lasso = CheckBox(text="lasso selects sites (off: click a point to go to its site)", value=False)
        self.selection_name = LineEdit(label="selection column", value=cols.SELECTED)
        self.stepper = SiteStepper(viewer, "selected sites")
        super().__init__(viewer, [self.space])
        from matplotlib.backends.backend_qtagg import NavigationToolbar2QT

        self.figure, self.canvas = themed_figure(viewer, (5.2, 4.2))
        self.ax = self.figure.add_subplot()
        style_axes(self.figure, self.ax)
        self.plot = ScatterPlot(self.figure, self.ax)
        self.toolbar = NavigationToolbar2QT(self.canvas, self.native)
        self.canvas.setMinimumHeight(460)  # the legend sits below the points
        add_native(self, Container(widgets=[self.color_by, self.lasso, self.selection_name]))
        add_native(self, self.toolbar)
        add_native(self, self.canvas)
        add_native(self, self.stepper)
        self.rows = np.zeros(0, np.int64)
        self._point_of_row = np.zeros(0, np.int64)
        self.lasso_selector = None
        self.lasso.changed.connect(self._lasso_mode)
        self.color_by.changed.connect(self.recolor)
        self.canvas.mpl_connect("motion_notify_event", self._on_motion)
        self.canvas.mpl_connect("button_press_event", self._on_press)
        self._bind_current()
        self.refresh_choices()
        self.restore()

    # ---------------------------------------------------------------- choices
    def _color_choices(self, *_) -> list[str]:
        return model.color_choices(getattr(self, "sites", None))

    def refresh_choices(self) -> None:
        self.color_by.reset_choices()

    def on_layers_changed(self) -> None:
        self._bind_current()
        self.refresh_choices()

    def on_table_changed(self, names: tuple) -> None:
        if not set(names) <= set(self.sites.embedding_columns):
            self.refresh_choices()
            if self.color_by.value in names:
                self.recolor()

    def _bind_current(self) -> None:
        """Follow the site table's current site (a new plate: its table)."""
        bound = getattr(self, "_current_table", None)
        if bound is self.sites:
            return
        if bound is not None:
            bound.current_changed.disconnect(self._follow_slider)
        self._current_table = self.sites
        if self.sites is not None:
            self.sites.current_changed.connect(self._follow_slider)

    # ---------------------------------------------------------------- compute
    def params(self) -> dict:
        params = super().params()
        params["space"] = self.space.value
        return params

    def compute(self, table, params: dict, report) -> dict:
        return model.run(table, params, report)

    def show_record(self, record: dict) -> None:
        self.space.value = record["params"]["space"]
        self.rows = np.asarray(record["rows"], np.int64)
        table = self.sites.frame
        self._point_of_row = np.full(len(table), -1, np.int64)
        self._point_of_row[self.rows] = np.arange(len(self.rows))
        space = record["space"]
        self.plot.set_points(record["coords"], f"on-perturbation ({space['negative']} −1 → {space['positive']} +1)",
                             "off-perturbation", tree=record.get("tree"), ends=(space["negative"], space["positive"]))
        self.refresh_choices()
        self.recolor()
        selection = record.get("selection")
        if selection is not None and selection["name"] in table.columns:
            self._apply_selection(selection["name"], np.asarray(selection["rows"], np.int64), go=False)
        else:
            self.stepper.set_rows([], "", go=False)
        n_fit = ", ".join(f"{k}: {v}" for k, v in space["n_fit"].items())
        lines = [f"{space['name']} space, {len(self.rows)} sites — {record['label']}, "
                 f"{record['params']['embedding']['normalisation']}",
                 f"fitted on {n_fit}; click a point to go to its site, tick lasso to select"]
        if record.get("notes"):
            lines.append(record["notes"])
        self.status.value = "\n".join(lines)
        self._follow_slider()

    def clear_record(self) -> None:
        self.rows = np.zeros(0, np.int64)
        self._point_of_row = np.zeros(0, np.int64)
        self.plot.set_points(np.zeros((0, 2)))
        self.plot.set_groups([])
        self.canvas.draw_idle()
        self.stepper.set_rows([], "", go=False)

    def recolor(self, *_) -> None:
        if self.record is None or not len(self.rows):
            return
        if self.sites is None:
            return
        self.plot.hover(None)  # a label from before the recolour would describe the old colours
        values, kind = color_values(self.sites.frame, self.rows, self.color_by.value)
        self.plot.set_groups(color_groups(values, kind), f"{self.record['space']['name']} — {self.color_by.value}")
        self.canvas.draw_idle()

    # ---------------------------------------------------------------- interaction
    def _toolbar_busy(self) -> bool:
        return bool(getattr(self.toolbar, "mode", ""))

    def _on_motion(self, event) -> None:
        if event.inaxes is not self.ax or not len(self.rows) or event.button is not None:
            self.plot.hover(None)
            return
        i = self.plot.nearest(event.x, event.y)
        if i is None:
            self.plot.hover(None)
            return
        self.plot.hover(i, site_text(self.sites.frame, int(self.rows[i])))

    def _on_press(self, event) -> None:
        if (event.inaxes is not self.ax or event.button != 1 or self.lasso.value
                or self._toolbar_busy() or not len(self.rows)):
            return
        i = self.plot.nearest(event.x, event.y)
        if i is not None:
            show_site(self._viewer, int(self.rows[i]))

    def _follow_slider(self, *_) -> None:
        try:
            if not len(self._point_of_row):
                return
            row = self.sites.current
            i = int(self._point_of_row[row]) if 0 <= row < len(self._point_of_row) else -1
            self.plot.set_current(i if i >= 0 else None)
        except RuntimeError:  # widget deleted
            pass

    def _lasso_mode(self, on) -> None:
        """A ``LassoSelector`` exists only in lasso mode: with blitting it re-renders
        its background on every full draw when animated artists (the current-site
        marker) are visible, which would double every redraw of the points."""
        from matplotlib.widgets import LassoSelector

        if on and self.lasso_selector is None:
            self.lasso_selector = LassoSelector(self.ax, onselect=self.select_polygon, useblit=True,
                                                props={"color": self.figure.gandl_colors["foreground"]})
        elif not on and self.lasso_selector is not None:
            self.lasso_selector.disconnect_events()
            for artist in self.lasso_selector.artists:
                artist.remove()
            self.lasso_selector = None
            self.canvas.draw_idle()

    def select_polygon(self, vertices) -> np.ndarray:
        """Lasso callback: the sites inside ``vertices`` become the selection column."""
        from matplotlib.path import Path

        if self.record is None or len(vertices) < 3:
            return np.zeros(0, np.int64)
        inside = Path(np.asarray(vertices, float)).contains_points(self.plot.coords)
        rows = self.rows[inside]
        name = (self.selection_name.value or cols.SELECTED).strip()
        self._apply_selection(name, rows, go=True)
        self.record["selection"] = {"name": name, "rows": rows}
        return rows

    def _apply_selection(self, name: str, rows: np.ndarray, go: bool) -> None:
        mask = np.zeros(len(self.sites), bool)
        mask[rows] = True
        self.sites.set_columns({name: mask})
        self.plot.set_selected(self._point_of_row[rows])
        self.canvas.draw_idle()
        self.stepper.set_rows(rows, f"column '{name}' ({len(rows)} sites)", go=go)
        self.refresh_choices()


__all__ = ["PerturbationPlotWidget", "ScatterPlot"]
