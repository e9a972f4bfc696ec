"""Latent widget: walk the generator's latent space between two cells, or sample a grid.

Endpoints are two seeds, or two sites of the open plate that are first
projected into w space (``gan.project``, progress shown). The path
(``gan.interpolate``, lerp or slerp) is rendered by the generator into an
N-stain stack: one additive image layer per stain, shaped ``(steps, H, W)``,
so the first slider walks the path, with the reader's stain colormaps. It
exports as a multi-page ImageJ TIFF (``TCYX``, plate intensity units) and an
animated GIF of the stain composite as shown. "generate grid" shows random
cells at a chosen truncation.

All model work runs in a worker thread; the GUI thread only adds layers.
"""

from __future__ import annotations

import queue
import re
import threading
import time
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

from napari_gandl.plate.display import composite, tile_grid

from .common import current_plate, device_choices, plate_layers, remember, site_table, start_worker

if TYPE_CHECKING:
    import napari

MODES = ["two sites", "two seeds", "generate grid"]
PATH_LAYER = "latent path"
GRID_LAYER = "generated"


# --------------------------------------------------------------------------- Qt-free helpers


def with_progress(function, *args, stage: str = "", min_interval_s: float = 0.1, **kwargs):
    """Generator: run ``function(*args, progress=cb, **kwargs)`` in a helper thread,
    yield ``(stage, done, total)`` as it reports (at most every ``min_interval_s``),
    and return its result (``result = yield from with_progress(...)``)."""
    updates: queue.Queue = queue.Queue()
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = function(*args, progress=lambda d, t: updates.put((stage, d, t)), **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            updates.put(None)

    thread = threading.Thread(target=target, name=f"napari-gandl {stage}", daemon=True)
    thread.start()
    last = 0.0
    while (item := updates.get()) is not None:
        now = time.monotonic()
        if now - last >= min_interval_s or item[1] == item[2]:
            last = now
            yield item
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def write_tiff(stack: np.ndarray, path, channel_names=()) -> Path:
    """Multi-page ImageJ hyperstack: ``(T, C, H, W)`` as TCYX, ``(C, H, W)`` as CYX."""
    import tifffile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = "TCYX" if stack.ndim == 4 else "CYX"
    metadata = {"axes": axes}
    if channel_names:
        metadata["Labels"] = list(channel_names)
    tifffile.imwrite(path, np.ascontiguousarray(stack, np.float32), imagej=True, metadata=metadata)
    return path


def write_gif(frames: np.ndarray, path, fps: float = 8.0) -> Path:
    """Animated GIF (looping) of ``(T, H, W, 3)`` uint8 frames."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in np.asarray(frames, np.uint8).reshape((-1,) + frames.shape[-3:])]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def gif_job(stack, colors, limits, path, fps: float = 8.0) -> Path:
    """Worker: composite ``(T, C, H, W)`` as shown (colours, contrast limits) and write the GIF."""
    return write_gif(composite(stack, colors, limits), path, fps)


def path_job(run_dir, device, mode, a, b, plate, projection_steps, steps, method, truncation):
    """Worker: endpoints (projected sites or seeds) -> interpolated w path -> generated stack."""
    from napari_gandl.gan import generate, interpolate, load_model, project, to_raw
    from napari_gandl.gan.latent import seeds_to_w
    from napari_gandl.gan.training import resolve_device

    model = load_model(run_dir, resolve_device(device))
    if mode == "two sites":
        if plate is None:
            raise ValueError("no plate is open: open one to project its sites, or choose 'two seeds'")
        if model.img_channels != plate.n_channels:
            raise ValueError(f"{model.path} was trained on {model.img_channels} stains but {plate.root} has "
                             f"{plate.n_channels}")
        ends = []
        for name, site in (("A", a), ("B", b)):
            if not 0 <= site < plate.n_sites:
                raise ValueError(f"site {name} = {site} is outside the plate (0..{plate.n_sites - 1})")
            image = plate.read_site(int(site))
            w = yield from with_progress(project, model, image, steps=int(projection_steps),
                                         stage=f"projecting site {name} ({plate.site_label(int(site))})")
            ends.append(w)
        w_a, w_b = ends
    else:
        w_a, w_b = seeds_to_w(model, [int(a), int(b)], truncation=float(truncation)).cpu().numpy()
    ws = interpolate(w_a, w_b, int(steps), method)
    yield ("rendering the path", 0, 1)
    images = generate(model, w=ws)
    return {
        "kind": "path", "mode": mode, "endpoints": (int(a), int(b)), "method": method,
        "stack": to_raw(model, images), "w": ws, "scale": model.scale,
        "channel_names": model.channel_names, "run": str(model.path),
    }


def grid_job(run_dir, device, first_seed, n, truncation):
    """Worker: ``n`` random cells (seeds ``first_seed``..) at ``truncation`` as one tiled grid."""
    from napari_gandl.gan import generate, load_model, to_raw
    from napari_gandl.gan.training import resolve_device

    model = load_model(run_dir, resolve_device(device))
    yield ("generating", 0, 1)
    seeds = list(range(int(first_seed), int(first_seed) + int(n)))
    images = to_raw(model, generate(model, seeds=seeds, truncation=float(truncation)))
    return {
        "kind": "grid", "stack": tile_grid(images), "cells": images, "seeds": seeds,
        "truncation": float(truncation), "scale": model.scale, "channel_names": model.channel_names,
        "run": str(model.path),
    }


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
            args = (path_job, run, self.device.value, mode, a, b, plate, self.projection_steps.value,
                    self.steps.value, self.method.value, self.truncation.value)
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
        from napari_gandl._reader import stain_colormap

        self.result = result
        stack = result["stack"]
        path = result["kind"] == "path"
        n_channels = stack.shape[1] if path else stack.shape[0]
        stains, limits, plate = self._stains(n_channels, result["channel_names"])
        prefix = PATH_LAYER if path else GRID_LAYER
        names = [f"{prefix} · {s.label}" for s in stains]
        for name in names:
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
        if limits is None:
            limits = [(float(np.percentile(c, 1)), float(np.percentile(c, 99.5)) + 1e-6)
                      for c in np.moveaxis(stack, 1 if path else 0, 0)]
        px = (plate.pixel_size_um if plate is not None else None) or 1.0
        width = int(plate.data.shape[-1]) if plate is not None else 0
        step = px * result["scale"]
        offset = (width + 8) * px
        kwargs = dict(
            channel_axis=1 if path else 0, name=names, blending="additive",
            colormap=[stain_colormap(s) for s in stains],
            contrast_limits=[list(map(float, lim)) for lim in limits],
        )
        if path:
            kwargs.update(scale=(1.0, step, step), translate=(0.0, 0.0, offset))
        else:
            kwargs.update(scale=(step, step), translate=(0.0, offset))
        layers = self._viewer.add_image(stack, **kwargs)
        self.layers = layers if isinstance(layers, list) else [layers]
        info = {k: v for k, v in result.items() if k not in ("stack", "cells")}
        for layer in self.layers:
            layer.metadata["napari_gandl_latent"] = info
        self.progress_bar.value = 1000
        if path:
            self._viewer.dims.set_current_step(0, 0)
            a, b = result["endpoints"]
            what = "sites" if result["mode"] == "two sites" else "seeds"
            self.status.value = (f"{stack.shape[0]}-step {result['method']} path from {what} {a} to {b}: "
                                 f"move the first slider to walk it")
        else:
            self.status.value = f"{len(result['seeds'])} cells at truncation {result['truncation']:g}"

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
