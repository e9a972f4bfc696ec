"""What the three analysis widgets (SVM, perturbation plot, dose-response) share.

* :class:`EmbeddingPicker`: which embedding and which plate normalisation (the
  choices and their reading are ``viewmodels.embedding_choice``);
* :class:`AnalysisWidget`: picker + parameters + Run, a worker, and the last
  analysis kept in the plate's ``SiteTable.session`` for the session: a
  re-opened widget shows it again, unless the embedding it was computed from
  changed (the site table's ``changed`` event; then it is dropped, saying so);
* :class:`SiteStepper`: previous / next buttons over a list of sites;
* :func:`themed_figure`: a matplotlib Qt canvas in napari's theme colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton

from napari_gandl.viewmodels.embedding_choice import (
    FILE, NORMALISATION_HELP, NORMALISATIONS, SITE_TABLE, SOURCES, precheck, stale_reason,
)

from napari_gandl._widgets.common import scroll_area
from napari_gandl._viewer import show_site, site_table

if TYPE_CHECKING:
    import napari

    from napari_gandl.viewmodels import SiteTable


class EmbeddingPicker(Container):
    """Embedding source, optional file and normalisation."""

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.source = ComboBox(label="embedding", choices=list(SOURCES), value=SITE_TABLE)
        self.path = FileEdit(label="table file", mode="r", filter="*.parquet *.csv *.csv.gz")
        self.normalisation = ComboBox(label="normalisation", choices=list(NORMALISATIONS),
                                      value="centerscale", tooltip=NORMALISATION_HELP)
        super().__init__(widgets=[self.source, self.path, self.normalisation], labels=True)
        self.margins = (0, 0, 0, 0)
        self.source.changed.connect(self._show_path)
        self._show_path()

    def _show_path(self, *_):
        self.path.visible = self.source.value == FILE

    def params(self) -> dict:
        return {"source": self.source.value,
                "path": str(self.path.value) if self.source.value == FILE else None,
                "normalisation": self.normalisation.value}

    def set_params(self, params: dict) -> None:
        self.source.value = params["source"]
        if params.get("path"):
            self.path.value = params["path"]
        self.normalisation.value = params["normalisation"]


class SiteStepper(Container):
    """◀ / ▶ through a list of site-table positions, moving the viewer's slider."""

    def __init__(self, viewer: napari.viewer.Viewer, what: str = "sites"):
        self._viewer = viewer
        self._what = what
        self.rows = np.zeros(0, np.int64)
        self.position = -1
        self.previous = PushButton(text="◀ previous")
        self.next = PushButton(text="next ▶")
        self.text = Label(value=f"no {what}")
        super().__init__(widgets=[Container(widgets=[self.previous, self.next], layout="horizontal",
                                            labels=False), self.text], labels=False)
        self.margins = (0, 0, 0, 0)
        self.previous.changed.connect(lambda: self.step(-1))
        self.next.changed.connect(lambda: self.step(+1))
        self._update_label()

    def set_rows(self, rows, description: str = "", go: bool = True, at: int | None = None) -> None:
        """Step through ``rows``; ``go``: show the first now; ``at``: the row shown already."""
        self.rows = np.asarray(rows, np.int64)
        self._description = description
        self.position = int(np.flatnonzero(self.rows == at)[0]) if at is not None and at in self.rows else -1
        if go and len(self.rows):
            self.step(+1)
        else:
            self._update_label()

    def step(self, direction: int) -> None:
        if not len(self.rows):
            return
        self.position = (self.position + direction) % len(self.rows)
        show_site(self._viewer, int(self.rows[self.position]))
        self._update_label()

    def _update_label(self) -> None:
        n = len(self.rows)
        desc = getattr(self, "_description", "")
        if not n:
            self.text.value = f"no {self._what}" + (f" ({desc})" if desc else "")
        else:
            where = f"{self.position + 1} / {n}" if self.position >= 0 else f"{n}"
            self.text.value = f"{self._what} {where}" + (f": {desc}" if desc else "")
        self.previous.enabled = self.next.enabled = n > 0


def themed_figure(viewer: napari.viewer.Viewer, figsize=(5, 4)):
    """A matplotlib ``(figure, canvas)`` in napari's theme, to put inside a widget."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure
    from napari.utils.theme import get_theme

    theme = get_theme(viewer.theme)
    background = theme.background.as_hex()
    foreground = theme.text.as_hex()
    figure = Figure(figsize=figsize, facecolor=background, layout="constrained")
    canvas = FigureCanvasQTAgg(figure)
    canvas.setMinimumHeight(int(figsize[1] * 60))
    figure.gandl_colors = {"background": background, "foreground": foreground}
    return figure, canvas


def add_native(container: Container, widget) -> None:
    """Append a widget below everything a magicgui container holds (inside its scrolling
    ``body`` when it has one), full width.

    ``widget`` is a plain Qt widget (canvas, table, list) or a magicgui widget
    (its ``native``); adding them in order this way keeps that order on screen.
    """
    layout = getattr(container, "body", container).native.layout()
    last = layout.itemAt(layout.count() - 1) if layout.count() else None
    at = layout.count() - 1 if last is not None and last.spacerItem() is not None else layout.count()
    layout.insertWidget(at, getattr(widget, "native", widget))  # above a trailing stretch


# --------------------------------------------------------------------------- the widgets' common base


def _relay_class():
    from qtpy.QtCore import QObject, Signal, Slot

    class Relay(QObject):
        """Carries progress from a worker thread to the GUI thread: the slot is a
        method of this GUI-thread QObject, so the connection is queued."""

        progress = Signal(int, int, str)

        def __init__(self, callback):
            super().__init__()
            self._callback = callback
            self.progress.connect(self._deliver)

        @Slot(int, int, str)
        def _deliver(self, done, total, text):
            self._callback(done, total, text)

    return Relay


class AnalysisWidget(Container):
    """Embedding picker + parameters + Run, a worker, and the session record.

    Subclasses set ``kind`` and ``title`` and implement ``compute(table,
    params, report)`` (worker thread: returns the record, a dict; ``table`` is
    the plate's :class:`SiteTable`), ``show_record`` (GUI thread) and
    ``clear_record``; ``on_table_changed(names)`` hears about new site-table
    columns.
    """

    kind = "analysis"
    title = "analysis"
    run_text = "Run"

    def __init__(self, viewer: napari.viewer.Viewer, widgets: list):
        from magicgui.widgets import ProgressBar
        from qtpy.QtCore import Qt

        self._viewer = viewer
        self.sites = site_table(viewer)  # (subclasses may have set it already, to fill their choices)
        self.picker = EmbeddingPicker(viewer)
        self.run_button = PushButton(text=self.run_text)
        self.progress = ProgressBar(value=0, min=0, max=1, visible=False, label="")
        self.status = Label(value="")
        self.status.native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.record: dict | None = None
        self.busy = False
        self._accept_progress = False
        self.worker = None
        # everything scrolls inside the dock: docks never ask for more height than the screen has
        self.body = Container(widgets=[self.picker, *widgets, self.run_button, self.progress, self.status])
        super().__init__(widgets=[])
        self.margins = (0, 0, 0, 0)
        self.native.layout().addWidget(scroll_area(self.body))
        self._relay = _relay_class()(self._on_progress)
        self.run_button.changed.connect(self.run)
        viewer.layers.events.inserted.connect(self._layers_changed)
        viewer.layers.events.removed.connect(self._layers_changed)
        self._bind_table()

    # ---------------------------------------------------------------- the plate's site table
    def _bind_table(self) -> None:
        table = site_table(self._viewer)
        bound = getattr(self, "_bound", None)
        self.sites = table
        if table is bound:
            return
        if bound is not None:
            bound.changed.disconnect(self._table_changed)
        self._bound = table
        if table is not None:
            table.changed.connect(self._table_changed)

    def _table_changed(self, names: tuple) -> None:
        try:
            if self.record is not None:
                reason = stale_reason(self.sites, self.record)
                if reason:
                    self.invalidate(reason)
            elif self.status.value.startswith("no embedding yet") and self.sites.embedding_columns:
                n = len(self.sites.embedding_columns)
                self.status.value = f"embedding attached ({n} columns): press {self.run_text}"
            self.on_table_changed(tuple(names))
        except RuntimeError:  # the widget was deleted
            pass

    def on_table_changed(self, names: tuple) -> None:
        pass

    # ---------------------------------------------------------------- parameters & running
    def params(self) -> dict:
        return {"embedding": self.picker.params()}

    def compute(self, table: SiteTable, params: dict, report: Callable[[int, int, str], None]) -> dict:
        raise NotImplementedError

    def show_record(self, record: dict) -> None:
        raise NotImplementedError

    def clear_record(self) -> None:
        pass

    def precheck(self, params: dict) -> str | None:
        """A reason not to start (checked on the GUI thread), or None."""
        emb = params["embedding"]
        return precheck(self.sites, emb["source"], emb.get("path"))

    def run(self, *_) -> None:
        from napari.utils.notifications import show_error

        if self.busy:
            return
        self._bind_table()
        params = self.params()
        reason = self.precheck(params)
        if reason:
            self.status.value = reason
            show_error(f"{self.title}: {reason}")
            return
        relay, table = self._relay, self.sites

        def report(done: int, total: int, text: str = "") -> None:
            relay.progress.emit(int(done), int(total), str(text))

        def work():
            try:
                return self.compute(table, params, report)
            except Exception as exc:  # noqa: BLE001 - shown to the user in _returned
                return _Failed(exc)  # (napari re-raises a *returned* exception: wrap it)

        self.busy = True
        self._accept_progress = True
        self.status.value = "running…"
        self.progress.visible = True
        self.progress.max, self.progress.value = 1, 0
        self.worker = start_worker_(work, buttons=[self.run_button], title=self.title,
                                    on_returned=lambda result: self._returned(table, result),
                                    on_finished=self._finished)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        if not self._accept_progress:  # a late message of a run that has already returned
            return
        try:
            if total > 0:
                self.progress.max = total
                self.progress.value = min(done, total)
            if text:
                self.status.value = text
        except RuntimeError:  # widget already deleted
            pass

    def _finished(self) -> None:
        self.busy = False
        try:
            self.progress.visible = False
        except RuntimeError:
            pass

    def _returned(self, table: SiteTable, result) -> None:
        from napari.utils.notifications import show_error

        self._accept_progress = False
        if isinstance(result, _Failed):
            message = str(result.exc) or type(result.exc).__name__
            show_error(f"{self.title} failed: {message}")
            try:
                self.status.value = f"failed: {message}"
            except RuntimeError:  # the widget was closed meanwhile
                pass
            return
        table.session[self.kind] = result  # kept for the session even if the widget was closed
        try:
            if table is self.sites:
                self.record = result
                self.show_record(result)
        except RuntimeError:  # the widget was closed while the worker ran
            pass

    # ---------------------------------------------------------------- session state
    def restore(self) -> None:
        """Show the last analysis of this kind for the open plate, if still valid."""
        saved = self.sites.session.get(self.kind) if self.sites is not None else None
        if saved is None:
            if self.sites is None:
                self.status.value = "open a plate folder"
            return
        reason = stale_reason(self.sites, saved)
        if reason:
            self.invalidate(reason, saved)
            return
        self.picker.set_params(saved["embedding"])
        self.record = saved
        self.show_record(saved)

    def invalidate(self, reason: str, saved: dict | None = None) -> None:
        saved = saved or self.record
        if self.sites is not None and self.sites.session.get(self.kind) is saved:
            self.sites.session.pop(self.kind)
        self.record = None
        self.clear_record()
        label = saved["label"] if saved else "?"
        self.status.value = (f"{reason} since the last {self.title} analysis ({label}); "
                             "its results were cleared: press Run again")

    def _layers_changed(self, *_) -> None:
        try:
            before = self.sites
            self._bind_table()
            if self.sites is not before:
                self.record = None
                self.clear_record()
                self.restore()
            self.on_layers_changed()
        except RuntimeError:
            pass

    def on_layers_changed(self) -> None:
        pass


@dataclass
class _Failed:
    exc: Exception


def start_worker_(*args, **kwargs):
    from napari_gandl._widgets.common import start_worker

    return start_worker(*args, **kwargs)
