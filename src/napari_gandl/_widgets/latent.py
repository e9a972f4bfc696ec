"""Latent widget: walk the generator's latent space between two cells, or sample a grid.

Endpoints are two seeds, or two sites of the open plate first projected into
w space (progress shown). The path is shown where the user looks: the view
moves to one row below the plate, ``A | path | B``, with the real endpoints
(the crops the projection reconstructs) at the same scale beside the
generated steps and a label over each part; one additive layer per stain with
the reader's colours and the plate's contrast. It exports as a multi-page
ImageJ TIFF (``TCYX``, plate intensity units) and an animated GIF of the
stain composite as shown. "generate grid" shows random cells at a chosen
truncation. The jobs and the layout are ``viewmodels.latent`` (Qt-free); all
model work runs in a worker thread and the GUI thread only adds layers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)

from napari_gandl import columns as cols
from napari_gandl.viewmodels.latent import gif_job, grid_job, path_job, path_strip, write_tiff

from napari_gandl._viewer import current_plate, look_at, plate_layers, site_table
from napari_gandl._widgets.common import device_choices, remember, start_worker

if TYPE_CHECKING:
    import napari

MODES = ["two sites", "two seeds", "generate grid"]
PATH_LAYER = "latent path"
GRID_LAYER = "generated"
LABELS_LAYER = "latent path labels"


# --------------------------------------------------------------------------- widget


class LatentWidget(Container):
    """Interpolate between two sites or seeds, or generate a grid of cells, from a trained run."""

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.run_dir = FileEdit(label="checkpoint (run folder)", mode="d", value=None, nullable=True)
        self.mode = ComboBox(label="mode", choices=MODES, value=MODES[0])
        self.site_a = SpinBox(label="site A", value=0, min=0, max=10**9)
        self.pick_a = PushButton(text="A = current site")
        self.site_b = SpinBox(label="site B", value=1, min=0, max=10**9)
        self.pick_b = PushButton(text="B = current site")
        self.pick_selection = PushButton(text="A, B = first, last selected site",
                                         tooltip="from the site table's 'selected' column (e.g. a lasso "
                                                 "in the embedding scatter)")
        self.seed_a = SpinBox(label="seed A", value=0, min=0, max=2**31 - 1)
        self.seed_b = SpinBox(label="seed B", value=1, min=0, max=2**31 - 1)
        self.projection_steps = SpinBox(label="projection steps", value=200, min=1, max=100000)
        self.steps = SpinBox(label="path steps", value=16, min=2, max=1000)
        self.method = ComboBox(label="interpolation", choices=["slerp", "lerp"], value="slerp")
        self.truncation = FloatSpinBox(label="truncation", value=0.7, min=0.0, max=2.0, step=0.05)
        self.first_seed = SpinBox(label="first seed", value=0, min=0, max=2**31 - 1)
        self.n_cells = SpinBox(label="cells", value=16, min=1, max=1024)
        self.device = ComboBox(label="device", choices=device_choices(), value="auto")
        self.run_button = PushButton(text="Run")
        self.progress_bar = ProgressBar(label="progress", min=0, max=1000, value=0)
        self.export_path = FileEdit(label="export to", mode="w", filter="*.tif *.gif", value=None, nullable=True)
        self.export_tiff_button = PushButton(text="Export TIFF")
        self.export_gif_button = PushButton(text="Export GIF")
        exports = Container(layout="horizontal", widgets=[self.export_tiff_button, self.export_gif_button],
                            labels=False)
        self.status = Label(value="")
        super().__init__(widgets=[
            self.run_dir, self.mode, self.site_a, self.pick_a, self.site_b, self.pick_b, self.pick_selection,
            self.seed_a, self.seed_b,
            self.projection_steps, self.steps, self.method, self.truncation, self.first_seed, self.n_cells,
            self.device, self.run_button, self.progress_bar, self.export_path, exports, self.status,
        ])
        self.pick_a.changed.connect(lambda: setattr(self.site_a, "value", self._current_site()))
        self.pick_b.changed.connect(lambda: setattr(self.site_b, "value", self._current_site()))
        self.pick_selection.changed.connect(self.pick_selected)
        self.mode.changed.connect(self._show_fields)
        self.run_button.changed.connect(self.run)
        self.export_tiff_button.changed.connect(lambda: self.export("tiff"))
        self.export_gif_button.changed.connect(lambda: self.export("gif"))
        remember(self, "latent", ["run_dir", "mode", "seed_a", "seed_b", "projection_steps", "steps", "method",
                                  "truncation", "first_seed", "n_cells", "device", "export_path"])
        self._show_fields()
        self.worker = None
        self.result: dict | None = None
        self.layers: list = []
        self.progress_log: list[tuple] = []  # (stage, done, total) of the current run

    def _current_site(self) -> int:
        table = site_table(self._viewer)
        return table.current if table is not None else 0

    def pick_selected(self, *_, column: str = cols.SELECTED):
        """Sites A and B = the first and last site marked in the site table's selection column."""
        table = site_table(self._viewer)
        table = table.frame if table is not None else None
        if table is None or column not in table.columns:
            return self._error(f"no '{column}' column in the site table: select sites first "
                               f"(e.g. with a lasso in the embedding scatter)")
        rows = np.flatnonzero(table[column].fillna(False).to_numpy(bool))
        if len(rows) < 2:
            return self._error(f"select at least two sites ('{column}' marks {len(rows)})")
        self.site_a.value, self.site_b.value = int(rows[0]), int(rows[-1])
        self.status.value = f"A = site {rows[0]}, B = site {rows[-1]} (of {len(rows)} selected)"

    def _show_fields(self, *_):
        mode = self.mode.value
        sites, seeds, grid = mode == "two sites", mode == "two seeds", mode == "generate grid"
        for widget in (self.site_a, self.pick_a, self.site_b, self.pick_b, self.pick_selection,
                       self.projection_steps):
            widget.visible = sites
        for widget in (self.seed_a, self.seed_b):
            widget.visible = seeds
        for widget in (self.steps, self.method):
            widget.visible = not grid
        self.truncation.visible = not sites
        for widget in (self.first_seed, self.n_cells):
            widget.visible = grid

    def _error(self, message: str):
        from napari.utils.notifications import show_error

        show_error(message)
        self.status.value = message

    # ----------------------------------------------------------------- run
    def run(self):
        """Start the chosen mode in a worker; returns the worker or None."""
        if self.run_dir.value is None or not str(self.run_dir.value).strip():
            return self._error("latent space: choose the run folder of a trained model")
        run = Path(self.run_dir.value)
        mode = self.mode.value
        self.progress_bar.value = 0
        self.progress_log = []
        self.status.value = f"{mode}: loading {run.name} ..."
        if mode == "generate grid":
            args = (grid_job, run, self.device.value, self.first_seed.value, self.n_cells.value,
                    self.truncation.value)
        else:
            plate = current_plate(self._viewer)
            a, b = ((self.site_a.value, self.site_b.value) if mode == "two sites"
                    else (self.seed_a.value, self.seed_b.value))
            table = site_table(self._viewer)
            labels = [table.describe(a), table.describe(b)] if table is not None and mode == "two sites" else None
            args = (path_job, run, self.device.value, mode, a, b, plate, self.projection_steps.value,
                    self.steps.value, self.method.value, self.truncation.value, labels)
        buttons = [self.run_button, self.export_tiff_button, self.export_gif_button]
        self.worker = start_worker(*args, buttons=buttons, title=f"latent space ({mode})",
                                   on_yielded=self._on_progress, on_returned=self._show)
        return self.worker

    def _on_progress(self, item):
        self.progress_log.append(item)
        stage, done, total = item
        self.progress_bar.value = int(1000 * done / max(total, 1))
        self.status.value = f"{stage}: {done}/{total}" if total > 1 else f"{stage} ..."

    def _stains(self, n_channels: int, channel_names):
        plate = current_plate(self._viewer)
        if plate is not None and plate.n_channels == n_channels:
            # the plate layers' contrast, so generated cells look like the real ones beside them
            return plate.stains, [tuple(layer.contrast_limits) for layer in plate_layers(self._viewer)], plate
        from napari_gandl.plate.stains import stains_from_names

        if len(channel_names) == n_channels:  # the run's stain names, e.g. "w1 Hoechst"
            names = [re.sub(r"^w\d+\s+", "", str(n)) or str(n) for n in channel_names]
        else:
            names = [f"stain {i + 1}" for i in range(n_channels)]
        return stains_from_names(names), None, None

    def _show(self, result: dict):
        """Add the path strip (or the grid) below the plate, label it and move the view to it."""
        from napari_gandl._viewer import stain_colormap

        self.result = result
        path = result["kind"] == "path"
        image, labels = path_strip(result) if path else (result["stack"], [])
        stains, limits, plate = self._stains(len(image), result["channel_names"])
        prefix = PATH_LAYER if path else GRID_LAYER
        names = [f"{prefix} · {s.label}" for s in stains]
        for name in [*names, LABELS_LAYER]:
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
        if limits is None:
            limits = [(float(np.percentile(c, 1)), float(np.percentile(c, 99.5)) + 1e-6) for c in image]
        px = (plate.pixel_size_um if plate is not None else None) or 1.0
        step = px * result["scale"]  # one generated pixel covers this many plate pixels
        # one row below the plate (the plate keeps its place and its slider)
        top = (int(plate.data.shape[-2]) + 24 * result["scale"]) * px if plate is not None else 0.0
        layers = self._viewer.add_image(
            image, channel_axis=0, name=names, blending="additive",
            colormap=[stain_colormap(s) for s in stains],
            contrast_limits=[list(map(float, lim)) for lim in limits],
            scale=(step, step), translate=(top, 0.0),
        )
        self.layers = layers if isinstance(layers, list) else [layers]
        info = {k: v for k, v in result.items() if k not in ("stack", "cells", "targets")}
        for layer in self.layers:
            layer.metadata["napari_gandl_latent"] = info
        shown = list(self.layers)
        if labels:
            where = np.array([[top + y * step, x * step] for y, x, _ in labels])
            shown.append(self._viewer.add_points(
                where, name=LABELS_LAYER, size=1e-3 * step, face_color="transparent", border_color="transparent",
                features={"label": [text for *_, text in labels]},
                text={"string": "{label}", "size": 11, "color": "white", "anchor": "upper_left"},
            ))
        look_at(self._viewer, shown)
        self.progress_bar.value = 1000
        if path:
            n = len(result["stack"])
            what = "sites" if result["mode"] == "two sites" else "seeds"
            a, b = result["endpoint_labels"]
            self.status.value = (f"{n}-step {result['method']} path between {what}, below the plate"
                                 + (",\nwith the real crops at both ends" if what == "sites" else "")
                                 + f"\nA: {a}\nB: {b}")
        else:
            self.status.value = f"{len(result['seeds'])} cells at truncation {result['truncation']:g}, below the plate"
        if result.get("note"):
            from napari.utils.notifications import show_warning

            self.status.value += f"\nwarning: {result['note']}"
            show_warning(f"Latent space: {result['note']}")

    # ----------------------------------------------------------------- export
    def export(self, kind: str):
        """Write the last result as a multi-page TIFF or an animated GIF of the composite."""
        if self.result is None or not self.layers:
            return self._error("export: run an interpolation or generate a grid first")
        if self.export_path.value is None or not str(self.export_path.value).strip():
            return self._error("export: choose a file to write")
        path = Path(self.export_path.value)
        path = path.with_suffix(".tif" if kind == "tiff" else ".gif")
        stack = self.result["stack"]
        if kind == "tiff":
            names = [layer.name.split(" · ", 1)[-1] for layer in self.layers]
            job, args = write_tiff, (stack, path, names)
        else:
            colors = [layer.colormap.colors[-1][:3] for layer in self.layers]
            limits = [tuple(layer.contrast_limits) for layer in self.layers]
            job, args = gif_job, (stack if stack.ndim == 4 else stack[None], colors, limits, path)
        buttons = [self.run_button, self.export_tiff_button, self.export_gif_button]
        self.worker = start_worker(job, *args, buttons=buttons, title=f"writing {path}",
                                   on_returned=lambda p: setattr(self.status, "value", f"wrote {p}"))
        return self.worker
