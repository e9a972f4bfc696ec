"""Embed widget: features of every site of the open plate, into its site table.

Thin: a worker thread runs the view-model's job (``viewmodels.embed.embed_job``):
it loads the method chosen from the embedding registry (``gandl`` with a
trained run, ``handcrafted``, the comparators, ...) and runs the embedding
pipeline, with the plate's stains fed as they are, matched to the model's by
name (zero-shot on another stain set) or by a stain-map file, yielding
progress. The features (``f000``..) are attached to the plate's site table
(``viewmodels.embed.attach``), so the other widgets use them without files.
The table can be exported as parquet, and an existing table (ours, or
RxRx19a's ``embeddings.csv``) can be loaded instead of computing one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FileEdit, Label, ProgressBar, PushButton, SpinBox

from napari_gandl import columns as cols
from napari_gandl.viewmodels import embed as model

from napari_gandl._viewer import current_plate, site_table
from napari_gandl._widgets.common import device_choices, remember, start_worker

if TYPE_CHECKING:
    import napari


class EmbedWidget(Container):
    """Embed the open plate with any registered method; export or load embedding tables."""

    def __init__(self, viewer: napari.viewer.Viewer):
        from napari_gandl.embedding import get_method, method_names

        self._viewer = viewer
        self.method = ComboBox(label="method", choices=method_names(), value="gandl",
                               tooltip="\n".join(f"{n}: {get_method(n).help}" for n in method_names()))
        self.run_dir = FileEdit(label="checkpoint (run folder)", mode="d", value=None, nullable=True)
        self.also_run = FileEdit(label="read with run (optional)", mode="d", value=None, nullable=True,
                                 tooltip="another run of the same method, e.g. trained with another seed: "
                                         "each site's row holds both runs' features side by side")
        self.stain_map = ComboBox(label="stains", choices=list(model.STAIN_MAPS), value=model.STAIN_MAPS[0],
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
        super().__init__(widgets=[self.method, self.run_dir, self.also_run, self.stain_map, self.stain_map_file,
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

        self.run_dir.visible = self.also_run.visible = get_method(self.method.value).needs_weights
        self.stain_map_file.visible = self.stain_map.value == model.STAIN_MAPS[2]

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
            stain_map = model.stain_map_argument(self.stain_map.value, self.stain_map_file.value)
        except ValueError as exc:
            return self._error(f"{method} embedding: {exc}")
        self.progress_bar.max = max(1, plate.n_sites)
        self.progress_bar.value = 0
        self.status.value = f"embedding {plate.n_sites} sites ..."
        n_batches = -(-plate.n_sites // int(self.batch_size.value))
        runs = [Path(self.run_dir.value)] if needs_weights else None
        if needs_weights and self.also_run.value is not None and str(self.also_run.value).strip():
            runs.append(Path(self.also_run.value))
        self.worker = start_worker(
            model.embed_job, plate, method, runs,
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
            n = model.attach(table, frame, source)
        except ValueError as exc:
            return self._error(f"{source}: {exc}")
        columns = table.embedding_columns
        self.progress_bar.max = max(1, len(table))
        self.progress_bar.value = self.progress_bar.max
        self.status.value = (f"{len(columns)} features attached to {n} of {len(table)} sites\n"
                             + model.source_lines(source))
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
        site_ids = site_table(self._viewer).frame[cols.SITE_ID]
        self.worker = start_worker(model.load_table_job, path, site_ids, buttons=self._buttons,
                                   title=f"loading {path}", on_returned=self._attach, on_errored=self._failed)
        return self.worker

    def export(self):
        """Write the site metadata with the attached embedding to parquet."""
        table = site_table(self._viewer)
        if table is None or not table.embedding_columns:
            return self._error("export: no embedding attached yet; embed the plate or load a table first")
        if self.export_path.value is None or not str(self.export_path.value).strip():
            return self._error("export: choose a .parquet file to write")
        path = Path(self.export_path.value)
        self.worker = start_worker(model.export_job, table, path, buttons=self._buttons, title=f"writing {path}",
                                   on_returned=lambda p: setattr(self.status, "value", f"wrote {p}"),
                                   on_errored=self._failed)
        return self.worker
