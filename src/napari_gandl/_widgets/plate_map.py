"""Plate map dock: every plate of a screen as a small heat map, one plate's wells, a search box and
a per-plate summary.

A thin view over :class:`~napari_gandl.viewmodels.plate_overview.PlateOverview` (what is shown,
selected and matched; the keys) and :func:`~napari_gandl.viewmodels.plate_overview.plate_summary`.
The *overview* shows each plate as a small picture of the chosen column, grouped under its
experiment's name and labelled with its number; a click (or Enter) opens a plate, well by well.
On a plate, hovering shows a well's metadata, a click moves the viewer to the well's first site
and the ◀ / ▶ buttons step through its sites; the well of the site shown is outlined and follows
the slider. Escape goes back, Page Up / Page Down go to the previous / next plate. The search box
marks the wells of a well name or compound; Enter goes to the next one. Plates whose controls
overlap (Z' < 0) or that miss files are outlined and listed first in the summary table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton

from napari_gandl import columns as cols
from napari_gandl.viewmodels.plate_map import PlateMap
from napari_gandl.viewmodels.plate_overview import PlateOverview, plate_summary

from napari_gandl._widgets._analysis import SiteStepper, add_native
from napari_gandl._widgets._plate_canvas import canvas_classes
from napari_gandl._viewer import site_table

if TYPE_CHECKING:
    import napari

#: the summary table: (header, plate_summary's column, header tooltip)
SUMMARY_COLUMNS = (("plate", "plate", "experiment and plate number"),
                   ("Z'", "Z'", ""),
                   ("C+ mean", "C+ mean", "mean score of the plate's healthy control wells (mock, UV-inactivated virus)"),
                   ("C- mean", "C- mean", "mean score of the plate's infected control wells (active virus, no compound)"),
                   ("hits", "hit wells", "wells whose compound is a dose-response hit (the hit column)"),
                   ("missing", "sites missing files", "sites with at least one image file missing"),
                   ("flag", "flag", "why the plate looks wrong"))
SEARCH_DELAY_MS = 250  # a search of 300,000 sites' ids takes ~0.1 s: not at every key typed
Z_PRIME_HELP = ("Z' = 1 - 3 (sd C+ + sd C-) / |mean C+ - mean C-|, over the plate's control wells' mean "
                "score: 1 is perfect, above 0.5 an excellent plate, 0 to 0.5 usable, below 0 the controls "
                "overlap and the plate's scores cannot be trusted")


class PlateMapWidget(Container):
    """Every plate as a heat map of a site-table column; a plate's wells; search; a summary per plate."""

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.table = None
        self.plate_map: PlateMap | None = None
        self.overview: PlateOverview | None = None
        self.colouring = None
        self.summary = None
        self.colour_by = ComboBox(label="colour wells by", choices=self._colour_choices, nullable=True,
                                  tooltip="any site-table column: metadata (condition, compound, dose, cell type) "
                                          "or a dock's result (SVM score, E2 score, hit, selection)")
        self.find = LineEdit(label="find", tooltip="a well (B02, or b2) or any part of a compound or site id; "
                                                   "words narrow each other ('remdesivir VERO-1'); "
                                                   "Enter goes to the next match")
        self.previous_match = PushButton(text="◀", tooltip="the previous match")
        self.next_match = PushButton(text="▶", tooltip="the next match (Enter in the find box)")
        self.matches = Label(value="")
        self.back = PushButton(text="◀ all plates", tooltip="back to the overview (Escape)")
        self.where = Label(value="")
        self.stepper = SiteStepper(viewer, what="sites of the well")
        self.status = Label(value="")
        search_row = Container(widgets=[self.find, self.previous_match, self.next_match], layout="horizontal",
                               labels=False, label="find")
        search_row.margins = (0, 0, 0, 0)
        for button in (self.previous_match, self.next_match):
            button.native.setMaximumWidth(36)
        header = _row(self.back.native, self.where.native)  # the button as narrow as its text, the label the rest
        self.where.native.setWordWrap(True)
        super().__init__(widgets=[self.colour_by, search_row, self.matches], labels=True)
        canvas_class, legend_class = canvas_classes()
        self.canvas = canvas_class(self.click, self.hover_text, self.key)
        self.legend = legend_class()
        self.scroll = _scroll_area(self.canvas)
        self.table_view = _summary_table(self.open_plate_of_row)
        for widget in (header, self.scroll, self.legend, self.stepper, self.table_view, self.status):
            add_native(self, widget)
        self.colour_by.changed.connect(self.recolour)
        self._typed = _single_shot(SEARCH_DELAY_MS, lambda: self.search(self.find.value))
        self.find.native.textEdited.connect(lambda _: self._typed.start())  # search when typing pauses
        self.find.native.returnPressed.connect(lambda: self.go_to_match(+1))
        self.next_match.changed.connect(lambda: self.go_to_match(+1))
        self.previous_match.changed.connect(lambda: self.go_to_match(-1))
        self.back.changed.connect(lambda: self.key("escape"))
        viewer.layers.events.inserted.connect(self._bind_table)
        viewer.layers.events.removed.connect(self._bind_table)
        self._bind_table()

    # ---------------------------------------------------------------- the plate's site table
    def _bind_table(self, *_) -> None:
        table = site_table(self._viewer)
        if table is self.table:
            return
        if self.table is not None:
            self.table.changed.disconnect(self._table_changed)
            self.table.current_changed.disconnect(self._follow)
        self.table = table
        self.plate_map = self.overview = None
        if table is not None:
            try:
                self.plate_map = PlateMap(table)
                self.overview = PlateOverview(self.plate_map)
                self.overview.changed.connect(self._shown)
            except ValueError as exc:
                self.status.value = str(exc)
            table.changed.connect(self._table_changed)
            table.current_changed.connect(self._follow)
        self._refresh_choices()
        self.recolour()

    def _colour_choices(self, *_) -> list[str]:
        plate_map = getattr(self, "plate_map", None)
        return plate_map.colour_columns() if plate_map is not None else []

    def _refresh_choices(self) -> None:
        current = self.colour_by.value
        with self.colour_by.changed.blocked():
            self.colour_by.reset_choices()
            choices = self._colour_choices()
            if current in choices:
                self.colour_by.value = current
            elif choices:
                self.colour_by.value = cols.CONDITION if cols.CONDITION in choices else choices[0]

    def _table_changed(self, names: tuple) -> None:
        before = self.colour_by.value
        self._refresh_choices()
        if self.colour_by.value != before or before in names:
            self.recolour()
        else:
            self._summarise()  # a new score, hits or the files' check change the summary, not the colours

    # ---------------------------------------------------------------- drawing
    def recolour(self, *_) -> None:
        """Colour the wells by the chosen column, summarise the plates and repaint."""
        column = self.colour_by.value
        if self.overview is None or not column:
            self.colouring = None
            self.canvas.show_state(None, None)
            self.legend.set_colouring(None)
            return
        self.colouring = self.plate_map.colour_by(column)
        self.legend.set_colouring(self.colouring)
        self._summarise(paint=False)
        self.canvas.show_state(self.overview, self.colouring, self.summary["flag"].to_numpy() != "")
        self._follow(self.table.current)
        self._shown()

    def _summarise(self, paint: bool = True) -> None:
        if self.overview is None:
            return
        self.summary = plate_summary(self.plate_map, self.colouring)
        _fill_summary(self.table_view, self.summary)
        if paint:
            self.canvas.flagged = self.summary["flag"].to_numpy() != ""
            self._shown()

    def _shown(self) -> None:
        """The view-model moved (zoom, selection, matches): relabel, relayout and keep the selection in view."""
        ov = self.overview
        if ov is None:
            return
        self.canvas.visible_height = self.scroll.viewport().height()
        self.canvas.relayout()
        self.back.visible = ov.zoomed is not None and len(self.plate_map.plates) > 1
        self.where.value = self._where_text()
        if ov.zoomed is None and self.canvas.rects:
            rect = self.canvas.rects[ov.plate]
            self.scroll.ensureVisible(int(rect.center().x()), int(rect.center().y()), 10, int(rect.height()))
        n = len(ov.matched_wells)
        plates = int((ov.matches_per_plate() > 0).sum())
        self.matches.value = (f"{n} well{'s' if n != 1 else ''} on {plates} plate{'s' if plates != 1 else ''} match"
                              if ov.search_text.strip() else "")
        self.matches.visible = bool(ov.search_text.strip())
        self.previous_match.enabled = self.next_match.enabled = n > 0

    def _where_text(self) -> str:
        ov, pm = self.overview, self.plate_map
        if ov.zoomed is None:
            flagged = int(self.canvas.flagged.sum())
            return (f"{len(pm.plates)} plates · {len(ov.sections)} experiment{'s' if len(ov.sections) != 1 else ''}"
                    + (f" · {flagged} flagged" if flagged else "")
                    + " · click a plate, or arrows and Enter")
        row = self.summary.iloc[ov.zoomed] if self.summary is not None else None
        parts = [f"{pm.plates[ov.zoomed]} ({ov.zoomed + 1}/{len(pm.plates)})"]
        if row is not None:
            parts += _summary_words(row)
        return " · ".join(parts)

    def _follow(self, site: int) -> None:
        if self.overview is None:
            return
        well = self.plate_map.well_of_site(int(site))
        self.canvas.current_well = well
        self.overview.follow(int(site))
        if well is not None:  # ◀ / ▶ step through the shown site's well, however the slider got there
            info = self.plate_map.wells.iloc[well]
            self.stepper.set_rows(self.plate_map.sites_of(well), f"{info['plate']} {info['well']}", go=False,
                                  at=int(site))
        self.canvas.update()

    # ---------------------------------------------------------------- hover, click, keys, search
    def hover_text(self, where) -> str:
        if self.overview is None or where is None:
            return ""
        kind, index = where
        if kind == "well":
            return self.plate_map.describe_well(index, self.colouring)
        lines = [self.plate_map.plates[index]]
        if self.summary is not None:
            lines += _summary_words(self.summary.iloc[index])
        matched = int(self.overview.matches_per_plate()[index])
        if matched:
            lines.append(f"{matched} well{'s' if matched != 1 else ''} match “{self.overview.search_text.strip()}”")
        return "\n".join(lines)

    def click(self, where) -> None:
        """A plate of the overview: open it. A well: go to its first site; the stepper then steps through its sites."""
        if self.overview is None or where is None:
            return
        kind, index = where
        if kind == "plate":
            self.overview.open(index)
        else:
            self.go_to_well(index)

    def key(self, name: str) -> None:
        if self.overview is None:
            return
        well = self.overview.key(name, self.canvas.per_line)
        if well is not None:
            self.go_to_well(well)

    def go_to_well(self, well: int) -> None:
        info = self.plate_map.wells.iloc[well]
        self.overview.select_well(well)
        self.stepper.set_rows(self.plate_map.sites_of(well), f"{info['plate']} {info['well']}", go=True)

    def search(self, text: str) -> None:
        """Mark the matches; in the overview, scroll to the first plate that has one."""
        if self.overview is None:
            return
        found = self.overview.search(text)
        if len(found) and self.overview.zoomed is None and self.canvas.rects:
            plate = int(self.plate_map.wells.at[int(found[0]), "plate_index"])
            top = self.canvas.rects[plate].top() - self.canvas.TITLE - self.canvas.MARGIN  # with its experiment's name
            self.scroll.verticalScrollBar().setValue(int(top))

    def go_to_match(self, step: int) -> None:
        """The next (previous) matched well: show its plate and go to its first site."""
        if self.overview is None:
            return
        if self.find.value != self.overview.search_text:
            self.overview.search(self.find.value)
        well = self.overview.next_match(step)
        if well is not None:
            self.go_to_well(well)

    def open_plate_of_row(self, plate: int) -> None:
        if self.overview is not None:
            self.overview.open(plate)


# -------------------------------------------------------------------- Qt parts
def _row(fixed, stretched):
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QHBoxLayout, QSizePolicy, QWidget

    fixed.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    stretched.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(fixed, 0, Qt.AlignmentFlag.AlignLeft)
    layout.addWidget(stretched, 1)
    return row


def _single_shot(ms: int, then):
    from qtpy.QtCore import QTimer

    timer = QTimer()
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(then)
    return timer


def _scroll_area(canvas):
    from qtpy.QtWidgets import QFrame, QScrollArea

    scroll = QScrollArea()
    scroll.setWidget(canvas)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setMinimumHeight(260)
    return scroll


def _summary_table(on_open):
    from qtpy.QtWidgets import QAbstractItemView, QTableWidget

    table = QTableWidget(0, len(SUMMARY_COLUMNS))
    table.setHorizontalHeaderLabels([header for header, _, _ in SUMMARY_COLUMNS])
    for c, (_, _, tip) in enumerate(SUMMARY_COLUMNS):
        table.horizontalHeaderItem(c).setToolTip(tip or Z_PRIME_HELP)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setStretchLastSection(True)
    table.setMaximumHeight(170)
    table.setWordWrap(False)
    table.setToolTip("one row per plate, flagged plates first, then the lowest Z'; click a row to open the plate")
    table.plates = np.zeros(0, np.int64)
    table.cellClicked.connect(lambda row, _: on_open(int(table.plates[row])))
    return table


def _fill_summary(table, summary) -> None:
    """Flagged plates first, then by Z' (lowest first), then in slider order."""
    from qtpy.QtWidgets import QTableWidgetItem

    z = summary["Z'"].to_numpy(float) if "Z'" in summary else np.full(len(summary), np.nan)
    order = np.lexsort((np.arange(len(summary)), np.nan_to_num(z, nan=np.inf), summary["flag"].to_numpy() == ""))
    table.plates = order
    table.setUpdatesEnabled(False)
    table.setRowCount(len(summary))
    for r, p in enumerate(order):
        row = summary.iloc[p]
        for c, (_, name, _) in enumerate(SUMMARY_COLUMNS):
            value = row.get(name, "")
            text = f"{value:.3g}" if isinstance(value, float) and np.isfinite(value) else (
                "" if isinstance(value, float) else str(value))
            table.setItem(r, c, QTableWidgetItem(text))
    table.setUpdatesEnabled(True)
    table.resizeColumnsToContents()
    if "score" in summary.attrs:
        table.horizontalHeaderItem(1).setToolTip(f"{Z_PRIME_HELP} (score: {summary.attrs['score']})")


def _summary_words(row) -> list[str]:
    """A plate's summary as short phrases: Z' and the control means, hits, missing files, the flag."""
    words = []
    z = row.get("Z'", np.nan)
    if np.isfinite(z):
        words.append(f"Z' {z:.2f} (C+ {row['C+ mean']:.3g}, C- {row['C- mean']:.3g})")
    if "hit wells" in row:
        words.append(f"{int(row['hit wells'])} hit wells")
    if row.get("sites missing files", 0):
        words.append(f"{int(row['sites missing files'])} sites missing files")
    if row["flag"]:
        words.append(f"! {row['flag']}")
    return words
