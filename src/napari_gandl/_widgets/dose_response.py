"""Dose-response widget: 4PL curves of the E2 on-perturbation score per compound.

Thin: the E2 space is ``analysis.fit_e2``, the per-dose aggregation, the
batched 4PL fits, F-test q-values and hit calls are
``analysis.dose_response``. The widget runs them in a worker and shows:

* a searchable compound list and, for the chosen compound, one curve per cell
  type: dose means ± s.e.m. (over wells), the fitted 4PL, the EC50 marked;
  clicking a dose point steps the viewer through that dose's sites;
* a sortable table of every compound x cell type (EC50, Hill, top, q-value,
  hit, rank); clicking a row shows that compound;
* export of the table (CSV) and of the figure (PNG or SVG).

The per-site E2 score and hit flag go into the site table as ``e2_score`` and ``hit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import Container, FloatSpinBox, LineEdit, PushButton, SpinBox

from napari_gandl import columns as cols
from napari_gandl.viewmodels import dose as model

from napari_gandl.analysis.dose_plots import plot_compound

from napari_gandl._widgets._analysis import AnalysisWidget, SiteStepper, add_native, themed_figure
from napari_gandl._widgets.common import style_axes

if TYPE_CHECKING:
    import napari

TABLE_COLUMNS = (  # what decides first (rank, hit), the flags last: they can be long
    ("rank", "rank"), ("compound", "compound"), ("cell_type", "cell type"), ("hit", "hit"),
    ("ec50_uM", "EC50 (µM)"), ("efficacy", "efficacy"), ("q_value", "q-value"), ("hill", "Hill"),
    ("status", "status"), ("top", "top"), ("bottom", "bottom"), ("flag", "flags"),
)
COMPOUND_COLUMN = 1
def _table_widget_classes():
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QTableWidgetItem

    class Item(QTableWidgetItem):
        """A cell that sorts by its value (numbers numerically, NaN last)."""

        def __init__(self, value):
            self.key = value
            if isinstance(value, (bool, np.bool_)):
                text = "yes" if value else ""
            elif isinstance(value, (float, np.floating)):
                text = "" if not np.isfinite(value) else f"{value:.3g}"
            else:
                text = str(value)
            super().__init__(text)
            self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

        def __lt__(self, other):
            a, b = self.key, getattr(other, "key", None)
            if isinstance(a, str) or isinstance(b, str):
                return str(a) < str(b)
            a = np.inf if a is None or (isinstance(a, float) and np.isnan(a)) else float(a)
            b = np.inf if b is None or (isinstance(b, float) and np.isnan(b)) else float(b)
            return a < b

    return Item


class DoseResponseWidget(AnalysisWidget):
    """Dose-response of every compound on the E2 axis: curves, EC50 table, export."""

    kind = "dose"
    title = "Dose-response"
    run_text = "Fit dose-response"

    def __init__(self, viewer: napari.viewer.Viewer):
        from qtpy.QtWidgets import QAbstractItemView, QListWidget, QTableWidget

        self.min_doses = SpinBox(label="min doses", value=4, min=3, max=20)
        self.alpha = FloatSpinBox(label="FDR (q <)", value=0.05, min=0.001, max=0.5, step=0.01)
        self.min_effect = FloatSpinBox(label="min efficacy", value=0.2, min=0.0, max=4.0, step=0.05)
        self.search = LineEdit(label="search compound", value="")
        self.stepper = SiteStepper(viewer, "dose-point sites")
        self.export_table_button = PushButton(text="Export table (CSV)…")
        self.export_figure_button = PushButton(text="Export figure (PNG/SVG)…")
        super().__init__(viewer, [self.min_doses, self.alpha, self.min_effect])
        self.compound_list = QListWidget()
        self.compound_list.setMaximumHeight(110)
        self.figure, self.canvas = themed_figure(viewer, (5.0, 3.6))
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([h for _, h in TABLE_COLUMNS])
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setMinimumHeight(230)  # about 7 rows
        self.canvas.setMinimumHeight(280)
        add_native(self, Container(widgets=[self.search]))
        add_native(self, self.compound_list)
        add_native(self, self.canvas)
        add_native(self, self.stepper)
        add_native(self, self.table)
        add_native(self, Container(widgets=[self.export_table_button, self.export_figure_button],
                                   layout="horizontal", labels=False))
        self.compound = None
        self._pickable = {}
        self.search.changed.connect(self._filter)
        self.compound_list.currentTextChanged.connect(self._list_chosen)
        self.table.cellClicked.connect(self._row_clicked)
        self.canvas.mpl_connect("button_press_event", self._on_press)
        self.export_table_button.changed.connect(self._ask_export_table)
        self.export_figure_button.changed.connect(self._ask_export_figure)
        self.export_table_button.enabled = self.export_figure_button.enabled = False
        self.restore()

    # ---------------------------------------------------------------- compute
    def params(self) -> dict:
        params = super().params()
        params.update(min_doses=int(self.min_doses.value), alpha=float(self.alpha.value),
                      min_effect=float(self.min_effect.value))
        return params

    def compute(self, table, params: dict, report) -> dict:
        return model.run(table, params, report)

    def show_record(self, record: dict) -> None:
        curves = record["curves"]
        self.sites.set_columns(record["scores"])
        self._fill_table(curves)
        order = curves.groupby("compound", sort=False)["rank"].min().sort_values().index.tolist()
        self._compounds = order
        self._filter()
        fitted = curves["status"] == "fitted"
        lines = [f"{curves['compound'].nunique()} compounds, {len(curves)} curves ({int(fitted.sum())} fitted), "
                 f"{int(curves['hit'].sum())} hit(s) at q < {record['params']['alpha']:g}",
                 f"{record['label']}, {record['params']['embedding']['normalisation']}",
                 f"per-site E2 score and hit → site table columns '{cols.E2_SCORE}', '{cols.HIT}'",
                 "click a dose point to see its sites"]
        if record.get("notes"):
            lines.append(record["notes"])
        self.status.value = "\n".join(lines)
        self.export_table_button.enabled = self.export_figure_button.enabled = True
        self.show_compound(record.get("compound") or (order[0] if order else None))

    def clear_record(self) -> None:
        self.compound_list.clear()
        self.table.setRowCount(0)
        self.figure.clear()
        self.canvas.draw_idle()
        self.compound = None
        self._pickable = {}
        self.stepper.set_rows([], "", go=False)
        self.export_table_button.enabled = self.export_figure_button.enabled = False

    # ---------------------------------------------------------------- table & list
    def _fill_table(self, curves: pd.DataFrame) -> None:
        Item = _table_widget_classes()
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(curves))
        for r, (_, row) in enumerate(curves.iterrows()):
            for c, (key, _) in enumerate(TABLE_COLUMNS):
                value = row[key]
                if key == "hit":
                    value = bool(value)
                elif key == "rank":
                    value = int(value)
                self.table.setItem(r, c, Item(value))
        self.table.setSortingEnabled(True)
        self.table.sortItems(0)
        self.table.resizeColumnsToContents()

    def table_rows(self) -> pd.DataFrame:
        """The table as displayed (current sort order), as text."""
        rows = [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]
        return pd.DataFrame(rows, columns=[k for k, _ in TABLE_COLUMNS])

    def _filter(self, *_) -> None:
        needle = (self.search.value or "").strip().lower()
        names = [c for c in getattr(self, "_compounds", []) if needle in str(c).lower()]
        current = self.compound
        self.compound_list.blockSignals(True)
        self.compound_list.clear()
        self.compound_list.addItems([str(c) for c in names])
        if current in names:
            self.compound_list.setCurrentRow(names.index(current))
        self.compound_list.blockSignals(False)

    def _list_chosen(self, text: str) -> None:
        if text:
            self.show_compound(text)

    def _row_clicked(self, row: int, column: int) -> None:
        item = self.table.item(row, COMPOUND_COLUMN)
        if item is not None:
            self.show_compound(item.text())

    # ---------------------------------------------------------------- figure
    def show_compound(self, compound: str | None) -> None:
        self.figure.clear()
        self._pickable = {}
        self.compound = compound
        if self.record is not None:
            self.record["compound"] = compound
        if compound is None or self.record is None:
            self.canvas.draw_idle()
            return
        ax = self.figure.add_subplot()
        self._pickable = plot_compound(ax, compound, self.record["curves"], self.record["points"],
                                       **self.figure.gandl_colors)
        style_axes(self.figure, ax)
        self.canvas.draw_idle()
        from qtpy.QtCore import Qt

        items = self.compound_list.findItems(compound, Qt.MatchFlag.MatchExactly)
        if items:
            self.compound_list.blockSignals(True)
            self.compound_list.setCurrentItem(items[0])
            self.compound_list.blockSignals(False)

    def _on_press(self, event, tolerance_px: float = 8.0) -> None:
        """A click on a dose point (the nearest one of any cell type) shows its sites."""
        if event.button != 1 or not self._pickable:
            return
        best = (tolerance_px, None)
        for line, (compound, cell, doses) in self._pickable.items():
            xy = np.column_stack(line.get_data()).astype(float)
            px = line.axes.transData.transform(xy)
            d = np.hypot(px[:, 0] - event.x, px[:, 1] - event.y)
            k = int(np.argmin(d))
            if d[k] <= best[0]:
                best = (d[k], (compound, cell, float(doses[k])))
        if best[1] is not None:
            self.show_dose_point(*best[1])

    def dose_point_rows(self, compound: str, cell_type: str, dose: float) -> np.ndarray:
        """Site-table positions (embedded sites) of one dose point."""
        return model.dose_point_rows(self.sites, self.record["rows"], compound, cell_type, dose)

    def show_dose_point(self, compound: str, cell_type: str, dose: float) -> np.ndarray:
        rows = self.dose_point_rows(compound, cell_type, dose)
        table = self.sites.frame
        wells = sorted(table["well_id"].iloc[rows].astype(str).unique()) if "well_id" in table else []
        self.stepper.set_rows(rows, f"{compound} {dose:g} µM on {cell_type}\nwells {', '.join(wells)}")
        return rows

    # ---------------------------------------------------------------- export
    def export_table(self, path) -> Path:
        """All curves (the analysis backend's full table) as CSV."""
        if self.record is None:
            raise ValueError("nothing to export yet: fit the dose-response first")
        path = Path(path)
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        self.record["curves"].to_csv(path, index=False)
        return path

    def export_figure(self, path) -> Path:
        """The current compound's curves, on a white background, as PNG or SVG."""
        from matplotlib.figure import Figure

        if self.record is None or self.compound is None:
            raise ValueError("nothing to export yet: fit the dose-response and choose a compound")
        path = Path(path)
        if path.suffix.lower() not in (".png", ".svg"):
            raise ValueError(f"{path.name}: export the figure as .png or .svg")
        figure = Figure(figsize=(6, 4.2), dpi=150, layout="constrained")
        plot_compound(figure.add_subplot(), self.compound, self.record["curves"], self.record["points"])
        figure.savefig(path)
        return path

    def _ask(self, title: str, filters: str, default: str):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.native, title, default, filters)
        return path or None

    def _ask_export_table(self, *_) -> None:
        from napari.utils.notifications import show_error, show_info

        path = self._ask("Export the dose-response table", "CSV (*.csv)", "dose_response.csv")
        if path:
            try:
                show_info(f"wrote {self.export_table(path)}")
            except (OSError, ValueError) as exc:
                show_error(f"export failed: {exc}")

    def _ask_export_figure(self, *_) -> None:
        from napari.utils.notifications import show_error, show_info

        path = self._ask("Export the figure", "PNG (*.png);;SVG (*.svg)", f"{self.compound or 'curves'}.png")
        if path:
            try:
                show_info(f"wrote {self.export_figure(path)}")
            except (OSError, ValueError) as exc:
                show_error(f"export failed: {exc}")


__all__ = ["DoseResponseWidget"]
