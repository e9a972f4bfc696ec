"""What the three analysis widgets (SVM, perturbation plot, dose-response) share.

* :class:`EmbeddingPicker`: which embedding (the site table's feature columns,
  handcrafted features computed from the plate, or a table file) and which
  plate normalisation; :meth:`EmbeddingPicker.resolve` turns the choice into
  an :class:`~napari_gandl.analysis.EmbeddingTable` row-aligned with a subset
  of the site table, plus a fingerprint of the features.
* :data:`STATE`: the last analysis of each widget kind, per plate, for the
  session: a re-opened widget shows it again, unless the embedding it was
  computed from changed (then the widget drops it and says so).
* :class:`SiteStepper`: previous / next buttons over a list of sites.
* :func:`themed_figure`: a matplotlib Qt canvas in napari's theme colours,
  to be placed inside a widget (``common.docked_figure`` docks its own).
"""

from __future__ import annotations

import hashlib
import re
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton

from .common import current_plate, show_site, site_table

if TYPE_CHECKING:
    import napari

    from napari_gandl.analysis import EmbeddingTable

SITE_TABLE = "site table: embedding columns"
HANDCRAFTED = "handcrafted features (computed from the images)"
FILE = "embedding table file"
SOURCES = (SITE_TABLE, HANDCRAFTED, FILE)
NORMALISATIONS = ("centerscale", "tvn", "none")

# metadata columns of the site table carried into the analysis
META_COLUMNS = ("site_id", "well_id", "cell_type", "experiment", "plate", "well", "site",
                "disease_condition", "treatment", "treatment_conc")
GANDL_FEATURE = re.compile(r"^f\d{3,}$")
# per-plate session state: plate -> {"svm": ..., "axes": ..., "dose": ..., "handcrafted": DataFrame,
# "result_columns": set of site-table columns written by these widgets}
# (keyed by id: a Plate is an unhashable dataclass; the entry goes when the plate does)
STATE: dict[int, dict] = {}


class NoEmbedding(ValueError):
    """There is no embedding to analyse (yet)."""


def plate_state(viewer: napari.viewer.Viewer) -> dict | None:
    plate = current_plate(viewer)
    if plate is None:
        return None
    key = id(plate)
    if key not in STATE:
        STATE[key] = {"result_columns": set()}
        weakref.finalize(plate, STATE.pop, key, None)
    return STATE[key]


def result_column(viewer: napari.viewer.Viewer, name: str) -> None:
    """Remember that ``name`` is a result column (never taken as an embedding feature)."""
    state = plate_state(viewer)
    if state is not None:
        state["result_columns"].add(name)


def site_table_features(table: pd.DataFrame, exclude=()) -> list[str]:
    """The embedding columns of the site table: ``f000…`` when present (GAN-DL,
    attached by the embed widget), otherwise its numeric non-metadata columns
    minus the result columns written by the analysis widgets."""
    gandl = [c for c in table.columns if isinstance(c, str) and GANDL_FEATURE.match(c)]
    if gandl:
        return gandl
    from napari_gandl.analysis.tables import feature_columns

    skip = set(exclude) | {"problem"}
    return [c for c in feature_columns(table) if c not in skip]


def fingerprint(X: np.ndarray, features, site_ids) -> str:
    """A short hash of an embedding: names, shape, column sums and a row sample."""
    h = hashlib.blake2b(digest_size=8)
    h.update("\x00".join(map(str, features)).encode())
    h.update(np.asarray(X.shape, np.int64).tobytes())
    h.update("\x00".join(map(str, site_ids[:: max(1, len(site_ids) // 997)])).encode())
    X = np.asarray(X)
    h.update(np.nansum(X, axis=0, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(X[:: max(1, len(X) // 2000)]).tobytes())
    return h.hexdigest()


@dataclass
class Embedding:
    """An embedding row-aligned with the site table rows ``rows``."""

    table: EmbeddingTable        # normalised
    rows: np.ndarray             # site-table position of each embedding row
    fingerprint: str             # of the raw (unnormalised) features
    label: str                   # e.g. "site table: 512 columns f000…f511"
    normalisation: str
    notes: str = ""


def _meta_of(table: pd.DataFrame) -> pd.DataFrame:
    return table[[c for c in META_COLUMNS if c in table.columns]]


def _raw_site_table(viewer) -> tuple:
    table = site_table(viewer)
    if table is None:
        raise NoEmbedding("no plate is open: open a plate folder first")
    state = plate_state(viewer)
    from . import common

    attached = common.embedding_columns(viewer) if hasattr(common, "embedding_columns") else []
    feats = attached or site_table_features(table, state["result_columns"])
    if not feats:
        raise NoEmbedding("no embedding yet: the site table has no feature columns. Embed the plate "
                          "(Embed widget), choose a table file, or use handcrafted features")
    X = table[feats].to_numpy(np.float32)
    ok = np.isfinite(X).all(axis=1)
    if not ok.any():
        raise NoEmbedding(f"no embedding yet: the {len(feats)} feature columns of the site table "
                          "are empty (NaN) for every site")
    rows = np.flatnonzero(ok)
    label = f"site table: {len(feats)} columns {feats[0]}…{feats[-1]}"
    notes = f"{int((~ok).sum())} site(s) without features skipped" if (~ok).any() else ""
    return _meta_of(table).iloc[rows].reset_index(drop=True), X[rows], feats, rows, label, notes


def _raw_handcrafted(viewer, progress=None) -> tuple:
    from napari_gandl.analysis.features import handcrafted_features

    plate = current_plate(viewer)
    if plate is None:
        raise NoEmbedding("no plate is open: open a plate folder first")
    state = plate_state(viewer)
    frame = state.get("handcrafted")
    if frame is None:
        frame = handcrafted_features(plate, progress=progress)
        state["handcrafted"] = frame
    feats = [c for c in frame.columns if c not in plate.sites.columns]
    return _align_frame(viewer, frame, feats, f"handcrafted: {len(feats)} features")


def _align_frame(viewer, frame: pd.DataFrame, feats, label) -> tuple:
    table = site_table(viewer)
    position = pd.Series(np.arange(len(table)), index=table["site_id"].astype(str))
    ids = frame["site_id"].astype(str)
    known = ids.isin(position.index).to_numpy()
    if not known.any():
        raise NoEmbedding(f"{label}: none of its {len(frame)} site ids belong to the open plate "
                          f"(e.g. {ids.iloc[0]!r} vs {table['site_id'].iloc[0]!r})")
    X = frame.loc[known, feats].to_numpy(np.float32)
    rows = position.loc[ids[known]].to_numpy()
    ok = np.isfinite(X).all(axis=1)
    rows, X = rows[ok], X[ok]
    notes = []
    if (~known).sum():
        notes.append(f"{int((~known).sum())} row(s) of other plates ignored")
    if (~ok).sum():
        notes.append(f"{int((~ok).sum())} site(s) with NaN features skipped")
    return _meta_of(table).iloc[rows].reset_index(drop=True), X, list(feats), rows, label, "; ".join(notes)


def _raw_file(viewer, path) -> tuple:
    from napari_gandl.analysis import load_embeddings
    from napari_gandl.analysis.tables import feature_columns, read_table

    if path is None or not str(path) or not Path(path).is_file():
        raise NoEmbedding(f"embedding table file not found: {path!s}; choose a .parquet or .csv file")
    if site_table(viewer) is None:
        raise NoEmbedding("no plate is open: open a plate folder first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = load_embeddings(read_table(path), on_nonfinite="drop", drop_constant_columns=False)
    frame = table.to_frame()
    feats = [f for f in table.features if f in feature_columns(frame)] or table.features
    return _align_frame(viewer, frame, feats, f"file {Path(path).name}: {len(feats)} features")


def embedding_token(viewer) -> tuple:
    """Cheap identity of the site table's embedding (changes when one is attached)."""
    table = site_table(viewer)
    if table is None:
        return ()
    attrs = table.attrs.get("napari_gandl_embedding")
    cols = tuple(c for c in table.columns if isinstance(c, str) and GANDL_FEATURE.match(c))
    if attrs and attrs.get("columns"):
        cols = tuple(c for c in attrs["columns"] if c in table.columns)
    sample = ()
    if cols and len(table):
        # three rows' values: catches embeddings rewritten in place under the same names
        picks = sorted({0, len(table) // 2, len(table) - 1})
        values = table.iloc[picks, table.columns.get_indexer(list(cols))].to_numpy(np.float64)
        sample = tuple(np.nan_to_num(values).sum(axis=1))
    return (id(table), len(table), id(attrs), cols, sample)


def file_fingerprint(path) -> str:
    p = Path(path)
    st = p.stat()
    return hashlib.blake2b(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode(), digest_size=8).hexdigest()


def resolve_embedding(viewer, source: str, path=None, normalisation: str = "centerscale",
                      progress: Callable | None = None) -> Embedding:
    """Read the chosen embedding for the open plate and normalise it (worker-safe)."""
    from napari_gandl.analysis import EmbeddingTable, normalise

    if source == SITE_TABLE:
        meta, X, feats, rows, label, notes = _raw_site_table(viewer)
    elif source == HANDCRAFTED:
        meta, X, feats, rows, label, notes = _raw_handcrafted(viewer, progress)
    elif source == FILE:
        meta, X, feats, rows, label, notes = _raw_file(viewer, path)
    else:
        raise ValueError(f"unknown embedding source {source!r}")
    fp = fingerprint(X, feats, meta["site_id"].astype(str).to_numpy()) if "site_id" in meta else ""
    table = EmbeddingTable(meta, X, [str(f) for f in feats], label)
    # a constant column carries nothing and breaks per-feature scaling
    keep = np.ptp(X, axis=0) > 1e-7 * np.maximum(np.abs(X).max(axis=0), 1e-30)
    if not keep.all():
        if not keep.any():
            raise NoEmbedding(f"{label}: every feature column is constant")
        table = EmbeddingTable(meta, np.ascontiguousarray(X[:, keep]),
                               [f for f, k in zip(table.features, keep) if k], label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = normalise(table, normalisation)
    return Embedding(table, np.asarray(rows, np.int64), fp, label, normalisation, notes)


def current_fingerprint(viewer, source: str, path=None) -> str | None:
    """The fingerprint the chosen embedding has now (None when there is none)."""
    try:
        if source == SITE_TABLE:
            meta, X, feats, *_ = _raw_site_table(viewer)
        elif source == HANDCRAFTED:
            state = plate_state(viewer)
            if state is None or state.get("handcrafted") is None:
                return None
            meta, X, feats, *_ = _raw_handcrafted(viewer)
        else:
            meta, X, feats, *_ = _raw_file(viewer, path)
    except (NoEmbedding, ValueError, OSError):
        return None
    return fingerprint(X, feats, meta["site_id"].astype(str).to_numpy())


class EmbeddingPicker(Container):
    """Embedding source, optional file and normalisation."""

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.source = ComboBox(label="embedding", choices=list(SOURCES), value=SITE_TABLE)
        self.path = FileEdit(label="table file", mode="r", filter="*.parquet *.csv *.csv.gz")
        self.normalisation = ComboBox(label="normalisation", choices=list(NORMALISATIONS),
                                      value="centerscale")
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

    def resolve(self, params: dict | None = None, progress=None) -> Embedding:
        params = params or self.params()
        return resolve_embedding(self._viewer, params["source"], params.get("path"),
                                 params["normalisation"], progress)


def stale_reason(viewer, saved: dict) -> str | None:
    """Why a saved analysis no longer matches the embedding (None when it does).

    A site-table embedding whose cheap identity (:func:`embedding_token`) is the
    one it had when the analysis ran is taken as unchanged without hashing it
    (re-opening a widget on a 300,000 x 512 table stays instant)."""
    params = saved["embedding"]
    if params["source"] == SITE_TABLE and saved.get("token") and saved["token"] == embedding_token(viewer):
        return None
    if params["source"] == FILE:
        try:
            now = file_fingerprint(params["path"])
        except OSError:
            return f"the embedding file {params['path']} is gone"
        return None if now == saved.get("file_fingerprint") else \
            f"the embedding file {Path(params['path']).name} changed"
    now = current_fingerprint(viewer, params["source"], params.get("path"))
    if now is None:
        return "the embedding it used is no longer there"
    return None if now == saved["fingerprint"] else "the embedding changed"


def saved_record(picker_params: dict, emb: Embedding, **results) -> dict:
    rec = {"embedding": dict(picker_params), "fingerprint": emb.fingerprint, "label": emb.label}
    if picker_params["source"] == FILE:
        rec["file_fingerprint"] = file_fingerprint(picker_params["path"])
    rec.update(results)
    return rec


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

    def set_rows(self, rows, description: str = "", go: bool = True) -> None:
        self.rows = np.asarray(rows, np.int64)
        self._description = description
        self.position = -1
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
    """Append a widget below everything a magicgui container holds, full width.

    ``widget`` is a plain Qt widget (canvas, table, list) or a magicgui widget
    (its ``native``); adding them in order this way keeps that order on screen.
    """
    container.native.layout().addWidget(getattr(widget, "native", widget))


def slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z+-]+", "_", text).strip("_").replace("+", "pos").replace("-", "neg")


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

    Subclasses set ``kind`` and ``title`` and implement ``compute(params,
    report)`` (worker thread: returns the record, a dict), ``show_record``
    (GUI thread) and ``clear_record``.
    """

    kind = "analysis"
    title = "analysis"
    run_text = "Run"

    def __init__(self, viewer: napari.viewer.Viewer, widgets: list):
        from magicgui.widgets import ProgressBar

        self._viewer = viewer
        self.picker = EmbeddingPicker(viewer)
        self.run_button = PushButton(text=self.run_text)
        self.progress = ProgressBar(value=0, min=0, max=1, visible=False, label="")
        self.status = Label(value="")
        self.record: dict | None = None
        self.busy = False
        self._accept_progress = False
        self.worker = None
        super().__init__(widgets=[self.picker, *widgets, self.run_button, self.progress, self.status])
        self._relay = _relay_class()(self._on_progress)
        self._token = embedding_token(viewer)
        self.run_button.changed.connect(self.run)
        viewer.dims.events.current_step.connect(self.check_embedding)
        viewer.layers.events.inserted.connect(self._layers_changed)
        viewer.layers.events.removed.connect(self._layers_changed)

    # ---------------------------------------------------------------- parameters & running
    def params(self) -> dict:
        return {"embedding": self.picker.params()}

    def read_embedding(self, params: dict, report: Callable[[int, int, str], None], total: int = 3) -> Embedding:
        """The chosen embedding, read and normalised in the worker, reporting as it goes."""
        choice = params["embedding"]
        report(0, total, "reading the embedding…")
        return resolve_embedding(self._viewer, choice["source"], choice.get("path"), choice["normalisation"],
                                 progress=lambda d, t: report(0, total, f"handcrafted features {d} / {t}…"))

    def compute(self, params: dict, report: Callable[[int, int, str], None]) -> dict:
        raise NotImplementedError

    def show_record(self, record: dict) -> None:
        raise NotImplementedError

    def clear_record(self) -> None:
        pass

    def precheck(self, params: dict) -> str | None:
        """A reason not to start (checked on the GUI thread), or None."""
        if site_table(self._viewer) is None:
            return "no plate is open: open a plate folder (or File ▸ Open Sample ▸ napari-gandl) first"
        emb = params["embedding"]
        if emb["source"] == SITE_TABLE:
            from . import common

            table = site_table(self._viewer)
            attached = common.embedding_columns(self._viewer) if hasattr(common, "embedding_columns") else []
            if not attached and not site_table_features(table, plate_state(self._viewer)["result_columns"]):
                return ("no embedding yet: embed the plate with the Embed widget, choose an embedding "
                        "table file, or use handcrafted features")
        if emb["source"] == FILE and not (emb.get("path") and Path(emb["path"]).is_file()):
            return f"choose an embedding table file (.parquet or .csv); {emb.get('path')!s} is not a file"
        return None

    def run(self, *_) -> None:
        from napari.utils.notifications import show_error

        if self.busy:
            return
        params = self.params()
        reason = self.precheck(params)
        if reason:
            self.status.value = reason
            show_error(f"{self.title}: {reason}")
            return
        relay = self._relay

        def report(done: int, total: int, text: str = "") -> None:
            relay.progress.emit(int(done), int(total), str(text))

        def work():
            try:
                return self.compute(params, report)
            except Exception as exc:  # noqa: BLE001 - shown to the user in _returned
                return _Failed(exc)  # (napari re-raises a *returned* exception: wrap it)

        self._run_token = embedding_token(self._viewer)
        self.busy = True
        self._accept_progress = True
        self.status.value = "running…"
        self.progress.visible = True
        self.progress.max, self.progress.value = 1, 0
        self.worker = start_worker_(work, buttons=[self.run_button], title=self.title,
                                    on_returned=self._returned, on_finished=self._finished)

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

    def _returned(self, result) -> None:
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
        result["token"] = self._run_token
        state = plate_state(self._viewer)
        if state is not None:
            state[self.kind] = result  # kept for the session even if the widget was closed
        try:
            self.record = result
            self._token = embedding_token(self._viewer)
            self.show_record(result)
        except RuntimeError:  # the widget was closed while the worker ran
            pass

    # ---------------------------------------------------------------- session state
    def restore(self) -> None:
        """Show the last analysis of this kind for the open plate, if still valid."""
        state = plate_state(self._viewer)
        saved = state.get(self.kind) if state else None
        if saved is None:
            if site_table(self._viewer) is None:
                self.status.value = "open a plate folder"
            return
        reason = stale_reason(self._viewer, saved)
        if reason:
            self.invalidate(reason, saved)
            return
        self.picker.set_params(saved["embedding"])
        self.record = saved
        self.show_record(saved)

    def invalidate(self, reason: str, saved: dict | None = None) -> None:
        saved = saved or self.record
        state = plate_state(self._viewer)
        if state is not None and state.get(self.kind) is saved:
            state.pop(self.kind)
        self.record = None
        self.clear_record()
        label = saved["label"] if saved else "?"
        self.status.value = (f"{reason} since the last {self.title} analysis ({label}); "
                             "its results were cleared: press Run again")

    def check_embedding(self, *_) -> None:
        """Cheap test on every slider move / layer change; hashes only when the table's
        embedding identity changed."""
        try:
            token = embedding_token(self._viewer)
            if token == self._token:
                return
            self._token = token
            if self.record is not None and self.record["embedding"]["source"] != FILE:
                reason = stale_reason(self._viewer, self.record)
                if reason:
                    self.invalidate(reason)
        except RuntimeError:  # widget deleted
            pass

    def _layers_changed(self, *_) -> None:
        try:
            if self.record is None:
                self.restore()
            else:
                self.check_embedding()
            self.on_layers_changed()
        except RuntimeError:
            pass

    def on_layers_changed(self) -> None:
        pass


@dataclass
class _Failed:
    exc: Exception


def start_worker_(*args, **kwargs):
    from .common import start_worker

    return start_worker(*args, **kwargs)


def category_colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
