"""Embed widget: features of every site of the open plate, into its site table.

Thin: a worker thread loads the method chosen from the embedding registry
(``gandl`` with a trained run, ``handcrafted``, the comparators, ...) and runs
the embedding pipeline (``embedding.iterate_embedding``), with the plate's
stains fed as they are, matched to the model's by name (zero-shot on another
stain set) or by a stain-map file, yielding progress. The features (``f000``..)
are attached to the plate's site table (``SiteTable.set_columns(...,
embedding=True)``), so the other widgets use them without files. The table can be exported as
parquet, and an existing table (ours, or RxRx19a's ``embeddings.csv``) can be
loaded instead of computing one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from magicgui.widgets import ComboBox, Container, FileEdit, Label, ProgressBar, PushButton, SpinBox

from napari_gandl._viewer import current_plate, site_table
from napari_gandl._widgets.common import device_choices, remember, start_worker

if TYPE_CHECKING:
    import napari


STAIN_MAPS = ("as they are", "by stain name (zero-shot)", "stain-map file")


def stain_map_argument(choice: str, path) -> str | Path | None:
    """The pipeline's ``stain_map`` for a choice of :data:`STAIN_MAPS`."""
    if choice == STAIN_MAPS[1]:
        return "auto"
    if choice == STAIN_MAPS[2]:
        if path is None or not str(path).strip():
            raise ValueError("choose the stain-map file (CSV with columns model_stain,plate_stain)")
        return Path(path)
    return None


def embed_job(plate, method: str, run_dir, batch_size: int, device: str, stain_map=None):
    """Generator (worker thread): yields ``(done, total)`` per batch, returns the feature frame."""
    from napari_gandl.embedding import feature_columns, iterate_embedding, load_embedder

    embedder = load_embedder(method, run_dir, plate, device)
    frame = yield from iterate_embedding(plate, embedder, batch_size=batch_size, stain_map=stain_map)
    frame = frame[["site_id", *feature_columns(embedder.dim)]].assign(site_id=frame["site_id"].astype(str))
    return frame, f"{method}: {embedder.source}" if embedder.source is not None else method


def load_table_job(path):
    """Read an embedding table (ours or RxRx19a's ``embeddings.csv``): frame with ``site_id`` + features."""
    from napari_gandl.embedding import read_embedding_table

    return read_embedding_table(path), str(path)


def export_job(frame: pd.DataFrame, path):
    from napari_gandl.tables import write_table

    return write_table(frame, path)


class EmbedWidget(Container):
    """Embed the open plate with any registered method; export or load embedding tables."""

    def __init__(self, viewer: napari.viewer.Viewer):
        from napari_gandl.embedding import get_method, method_names

        self._viewer = viewer
        self.method = ComboBox(label="method", choices=method_names(), value="gandl",
                               tooltip="\n".join(f"{n}: {get_method(n).help}" for n in method_names()))
        self.run_dir = FileEdit(label="checkpoint (run folder)", mode="d", value=None, nullable=True)
        self.stain_map = ComboBox(label="stains", choices=list(STAIN_MAPS), value=STAIN_MAPS[0],
                                  tooltip="how the plate's stains feed the model's: in order (same stains), "
                                          "matched by name (a model trained on another stain set, e.g. "
                                          "RxRx1 -> RxRx19a zero-shot), or as a CSV file says")
        self.stain_map_file = FileEdit(label="stain-map file", mode="r", filter="*.csv", value=None,
                                       nullable=True)
        self.batch_size = SpinBox(label="sites per batch", value=32, min=1, max=4096)
        self.device = ComboBox(label="device", choices=device_choices(), value="auto")
        self.embed_button = PushButton(text="Embed open plate")
        self.progress_bar = ProgressBar(label="progress", min=0, max=1, value=0)
        self.export_path = FileEdit(label="export to", mode="w", filter="*.parquet", value=None, nullable=True)
        self.export_button = PushButton(text="Export parquet")
        self.table_path = FileEdit(label="embedding table", mode="r", filter="*.parquet *.csv *.csv.gz",
                                   value=None, nullable=True)
        self.load_button = PushButton(text="Load table")
        self.status = Label(value="")
        super().__init__(widgets=[self.method, self.run_dir, self.stain_map, self.stain_map_file,
                                  self.batch_size, self.device, self.embed_button, self.progress_bar,
                                  self.export_path, self.export_button, self.table_path, self.load_button,
                                  self.status])
        self.embed_button.changed.connect(self.embed)
        self.export_button.changed.connect(self.export)
        self.load_button.changed.connect(self.load_table)
        self.method.changed.connect(self._show_fields)
        self.stain_map.changed.connect(self._show_fields)
        remember(self, "embed", ["method", "run_dir", "stain_map", "stain_map_file", "batch_size", "device",
                                 "export_path", "table_path"])
        self._show_fields()
        self.worker = None
        self._buttons = [self.embed_button, self.export_button, self.load_button]

    def _show_fields(self, *_) -> None:
        from napari_gandl.embedding import get_method

        self.run_dir.visible = get_method(self.method.value).needs_weights
        self.stain_map_file.visible = self.stain_map.value == STAIN_MAPS[2]

    # ----------------------------------------------------------------- actions
    def _failed(self, exc: Exception) -> None:
        """A worker failed (napari already notified): the status says so instead of its last step."""
        self.status.value = f"failed: {exc}"

    def _error(self, message: str) -> None:
        from napari.utils.notifications import show_error

        show_error(message)
        self.status.value = message

    def embed(self):
        """Embed every site of the open plate in a worker; returns the worker or None."""
        from napari_gandl.embedding import get_method

        plate = current_plate(self._viewer)
        method = self.method.value
        if plate is None:
            return self._error(f"{method} embedding: no plate is open; open a plate folder first")
        needs_weights = get_method(method).needs_weights
        if needs_weights and (self.run_dir.value is None or not str(self.run_dir.value).strip()):
            return self._error(f"{method} embedding: choose the run folder of a trained model")
        try:
            stain_map = stain_map_argument(self.stain_map.value, self.stain_map_file.value)
        except ValueError as exc:
            return self._error(f"{method} embedding: {exc}")
        self.progress_bar.max = max(1, plate.n_sites)
        self.progress_bar.value = 0
        self.status.value = f"embedding {plate.n_sites} sites ..."
        n_batches = -(-plate.n_sites // int(self.batch_size.value))
        self.worker = start_worker(
            embed_job, plate, method, Path(self.run_dir.value) if needs_weights else None,
            int(self.batch_size.value), self.device.value, stain_map,
            buttons=self._buttons, title=f"{method} embedding", progress_total=n_batches + 1,
            on_yielded=self._on_progress, on_returned=self._attach, on_errored=self._failed,
        )
        return self.worker

    def _on_progress(self, done_total):
        done, total = done_total
        self.progress_bar.max = max(1, total)
        self.progress_bar.value = done
        self.status.value = f"embedded {done} / {total} sites"

    def _attach(self, result):
        frame, source = result
        table = site_table(self._viewer)
        try:
            table.set_columns(frame, embedding=True, source=source)
        except ValueError as exc:
            return self._error(f"{source}: {exc}")
        columns = table.embedding_columns
        n = int(table.frame[columns].notna().all(axis=1).sum())
        self.progress_bar.max = max(1, len(table))
        self.progress_bar.value = self.progress_bar.max
        shown = source if len(source) <= 48 else f"…{source[-47:]}"  # a long path would widen the dock
        self.status.value = f"{len(columns)} features attached to {n} of {len(table)} sites\n({shown})"
        return table

    def load_table(self):
        """Load an embedding table file and attach it to the open plate's site table."""
        if site_table(self._viewer) is None:
            return self._error("loading an embedding table: no plate is open; open a plate folder first")
        if self.table_path.value is None or not str(self.table_path.value).strip():
            return self._error("loading an embedding table: choose a .parquet or .csv file")
        path = Path(self.table_path.value)
        self.status.value = f"reading {path.name} ..."
        self.progress_bar.value = 0

        def attach(result):
            frame, source = result
            known = frame["site_id"].isin(site_table(self._viewer).frame["site_id"].astype(str))
            self._attach((frame[known] if known.any() else frame, source))

        self.worker = start_worker(load_table_job, path, buttons=self._buttons, title=f"loading {path}",
                                   on_returned=attach, on_errored=self._failed)
        return self.worker

    def export(self):
        """Write the site metadata with the attached embedding to parquet."""
        table = site_table(self._viewer)
        columns = table.embedding_columns if table is not None else []
        if not columns:
            return self._error("export: no embedding attached yet; embed the plate or load a table first")
        if self.export_path.value is None or not str(self.export_path.value).strip():
            return self._error("export: choose a .parquet file to write")
        path = Path(self.export_path.value)
        if path.suffix.lower() not in (".parquet", ".pq"):
            path = path.with_suffix(".parquet")
        meta = [c for c in table.frame.columns if c not in set(columns) and c != "problem"]
        frame = table.frame[meta + columns].copy()
        for c in meta:  # parquet wants one type per column
            if frame[c].dtype == object:
                frame[c] = frame[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
        self.worker = start_worker(export_job, frame, path, buttons=self._buttons, title=f"writing {path}",
                                   on_returned=lambda p: setattr(self.status, "value", f"wrote {p}"),
                                   on_errored=self._failed)
        return self.worker
