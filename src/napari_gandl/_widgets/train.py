"""Train widget: train a GAN-DL model (or another trainable embedding method) on the open plate
(or a plate folder) from napari.

Thin: the training jobs are the view-model's (``viewmodels.training.train_job``
for GAN-DL, ``method_job`` for the registry's other trainable methods: ConvAE,
SimCLR, DINO, MAE), run in a generator ``thread_worker``. The GUI thread only receives
their progress dicts:
a napari progress bar (images seen, ETA), a live preview grid as one additive image layer
per stain (GAN-DL's generated cells, MAE's reconstructions) and, for GAN-DL, a docked loss
plot. Stop asks the
training loop to stop at its next step; it then writes its checkpoint, so a
stopped run always resumes. Closing the viewer stops training the same way
and waits for the checkpoint.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, ProgressBar, PushButton, SpinBox

from napari_gandl.torch_utils.runs import planned_runs
from napari_gandl.torch_utils.threads import threads_text
from napari_gandl.viewmodels import training as model

from napari_gandl._viewer import current_plate
from napari_gandl._widgets.common import device_choices, docked_figure, remember, start_worker, style_axes

if TYPE_CHECKING:
    import napari

LOSS_DOCK = "GAN-DL losses"
GUI_SWITCH_INTERVAL_S = 0.001
RESOLUTIONS = ["preset", "32", "64", "128", "256", "512"]


def format_eta(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class TrainWidget(Container):
    """Train a model: method, plate, preset, resolution, duration (split over GAN-DL's runs), device;
    Start / Stop / Resume."""

    #: extra ``make_config`` overrides (tests and scripts use tiny networks)
    config_overrides: dict

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.config_overrides = {}
        self.plate_dir = FileEdit(label="plate folder", mode="d", value=None, nullable=True,
                                  tooltip="leave empty to train on the plate open in the viewer")
        self.run_dir = FileEdit(label="run folder", mode="d", value=None, nullable=True,
                                tooltip="checkpoint, losses and samples go here (default: next to the plate)")
        from napari_gandl.gan import PRESETS
        from napari_gandl.gan.config import default_runs

        self.method = ComboBox(label="method", choices=model.method_choices(), value=model.GAN_METHOD,
                               tooltip="GAN-DL, or a comparator trained on the plate (embed its run "
                                       "folder with the same method in the Embed dock)")
        self.preset = ComboBox(label="preset", choices=list(PRESETS), value="quick")
        self.resolution = ComboBox(label="resolution", choices=RESOLUTIONS, value="preset")
        self.minutes = FloatSpinBox(label="duration (min)", value=10.0, min=0.01, max=1e6, step=1.0)
        self.runs = SpinBox(label="runs", value=default_runs("quick"), min=1, max=8,
                            tooltip="the duration is split into this many runs at consecutive seeds, read "
                                    "together when the run folder is embedded (resuming keeps the folder's)")
        self.device = ComboBox(label="device", choices=device_choices(), value="auto")
        self.refresh_s = FloatSpinBox(label="preview every (s)", value=5.0, min=0.0, max=3600.0, step=1.0)
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.resume_button = PushButton(text="Resume")
        buttons = Container(layout="horizontal", widgets=[self.start_button, self.stop_button, self.resume_button],
                            labels=False)
        self.progress_bar = ProgressBar(label="progress", min=0, max=1000, value=0)
        self.status = Label(value=self._device_note())
        super().__init__(widgets=[self.method, self.plate_dir, self.run_dir, self.preset, self.resolution, self.minutes,
                                  self.runs, self.device, self.refresh_s, buttons, self.progress_bar, self.status])
        self.start_button.changed.connect(lambda: self.start(resume=False))
        self.resume_button.changed.connect(lambda: self.start(resume=True))
        self.stop_button.changed.connect(self.stop)
        self.device.changed.connect(lambda: setattr(self.status, "value", self._device_note()))
        self.method.changed.connect(self._show_method_controls)
        self.preset.changed.connect(lambda: setattr(self.runs, "value", default_runs(self.preset.value)))
        remember(self, "train", ["method", "plate_dir", "run_dir", "preset", "resolution", "minutes", "runs", "device",
                                 "refresh_s"])

        self.worker = None
        self.last_progress: dict | None = None
        self.sample_refreshes = 0  # sample grids shown so far (any run)
        self.progress_rows: list[dict] = []  # progress dicts of the current run, without sample images
        self.run_path: Path | None = None
        self._stop_event = threading.Event()
        self._job_done = threading.Event()
        self._job_done.set()
        self._gui_ready = threading.Event()
        self._switch_interval = None
        self._quit_hooked = False
        self._closing = False
        self._pbar = None
        self._close_filter = None
        self._history: list[tuple[float, float, float]] = []  # kimg, loss_G, loss_D
        self._metrics: list[tuple[float, ...]] = []  # kimg, then model.METRIC_COLUMNS
        self._run_starts: dict[int, float] = {}  # run 2, 3...: the kimg where it began
        self._run_marks: list = []  # the plot's lines and labels at those kimg
        self._figure = None
        self._canvas = None
        self._last_draw = 0.0
        self._t0 = None
        self._layout: dict = {}
        self._run_title, self._gan, self._preview = "", True, model.preview_name(model.GAN_METHOD)
        self._show_method_controls()

    # ----------------------------------------------------------------- inputs
    def _show_method_controls(self):
        """Preset and resolution are GAN-DL's, the preview interval is that of a method with a
        preview: shown only when they apply."""
        gan = model.is_gan(self.method.value)
        for control in (self.preset, self.resolution, self.runs):
            control.visible = gan
        self.refresh_s.visible = bool(model.preview_name(self.method.value))

    @property
    def _title(self) -> str:
        return f"{'GAN-DL' if model.is_gan(self.method.value) else self.method.value} training"

    def _device_note(self) -> str:
        from napari_gandl.torch_utils.device import resolve_device

        try:
            return f"device: {resolve_device(self.device.value)}"
        except ValueError as exc:
            return str(exc)

    def _plate_source(self):
        """The plate folder typed in, else the open plate; ValueError when neither."""
        if self.plate_dir.value is not None and str(self.plate_dir.value).strip():
            path = Path(self.plate_dir.value).expanduser()
            if not path.is_dir():
                raise ValueError(f"plate folder {path} does not exist")
            return path
        plate = current_plate(self._viewer)
        if plate is None:
            raise ValueError("no plate: open a plate folder in napari or choose one in 'plate folder'")
        return plate

    def _run_folder(self, plate) -> Path:
        if self.run_dir.value is not None and str(self.run_dir.value).strip():
            return Path(self.run_dir.value).expanduser()
        path = model.default_run_folder(plate if isinstance(plate, (str, Path)) else plate.root,
                                        self.method.value)
        self.run_dir.value = str(path)
        return path

    def make_config(self):
        from napari_gandl.gan import make_config

        from napari_gandl.gan.config import TrainConfig
        from napari_gandl.torch_utils.device import resolve_device

        values = dict(minutes=float(self.minutes.value), device=self.device.value)
        if "threads" in TrainConfig.__dataclass_fields__ and resolve_device(self.device.value).type == "cpu":
            values["threads"] = model.cpu_threads()
        if self.resolution.value != "preset":
            values["resolution"] = int(self.resolution.value)
        values.update(self.config_overrides)  # overrides (tests, scripts) win
        return make_config(self.preset.value, **values)

    # ----------------------------------------------------------------- actions
    def start(self, resume: bool = False):
        """Start (or resume) training in a worker thread; returns the worker or None."""
        from napari.utils.notifications import show_error

        from napari_gandl.torch_utils.device import resolve_device

        title, gan = self._title, model.is_gan(self.method.value)
        if self.worker is not None and not self._job_done.is_set():
            show_error(f"{title} is already running")
            return None
        try:
            plate = self._plate_source()
            run = self._run_folder(plate)
            model.check_run_folder(run, resume)
            config = self.make_config() if gan else None
            if gan and resume:
                self.runs.value = planned_runs(run)  # a folder keeps the runs it was started with
            resolve_device(self.device.value)
        except ValueError as exc:
            self.status.value = f"{title}: {exc}"
            show_error(self.status.value)
            return None
        self.run_path = run
        self._stop_event = threading.Event()
        self._job_done = threading.Event()
        self._gui_ready = threading.Event()
        self._t0 = None
        self._history = []
        self._metrics = []
        self._run_starts = {}
        self.last_progress = None
        self.progress_rows = []
        self._run_title, self._gan, self._preview = title, gan, model.preview_name(self.method.value)
        self._open_progress(title)
        self.stop_button.enabled = True
        self._scale_note = self._quality_warning = ""
        self.status.value = f"{'resuming' if resume else 'starting'} in {run} ..."
        # the training thread runs Python between its tensor ops: let the GUI thread
        # take the interpreter lock more often than the default 5 ms while it runs
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, GUI_SWITCH_INTERVAL_S))
        if gan:
            job = (model.train_job, plate, run, config, resume, self._stop_event, self._job_done,
                   float(self.refresh_s.value), self._gui_ready, int(self.runs.value))
        else:
            job = (model.method_job, self.method.value, plate, run, float(self.minutes.value), self.device.value,
                   resume, self._stop_event, self._job_done, float(self.refresh_s.value), self._gui_ready)
        self.worker = start_worker(
            *job,
            buttons=[self.start_button, self.resume_button, self.method],  # the method stays fixed while it trains
            title=title,
            on_yielded=self._on_progress,
            on_finished=self._on_finished,
        )
        return self.worker

    def stop(self):
        """Ask training to stop at its next step (it writes its checkpoint first)."""
        self._stop_event.set()
        self.stop_button.enabled = False
        if not self._job_done.is_set():
            self.status.value = "stopping: writing checkpoint ..."

    def shutdown(self, timeout: float = 300.0) -> bool:
        """Stop and wait (blocking) until the checkpoint is written; for viewer close."""
        self._closing = True
        self._stop_event.set()
        self._gui_ready.set()  # a worker still waiting for the layers must not wait for this (blocked) thread
        return self._job_done.wait(timeout)

    # ----------------------------------------------------------------- progress (GUI thread)
    def _open_progress(self, title: str):
        from napari.utils import progress

        self._pbar = progress(total=1000, desc=title)
        # Closing the viewer's window or quitting the application stops training and waits
        # for its checkpoint: a Qt event filter on the window the dock sits in (public Qt API;
        # napari's own task registry is private) and QApplication.aboutToQuit.
        window = self.native.window()
        if window is not self.native and self._close_filter is None:
            self._close_filter = _close_filter_class()(self.shutdown)
            window.installEventFilter(self._close_filter)
        if not self._quit_hooked:
            from qtpy.QtWidgets import QApplication

            app = QApplication.instance()
            if app is not None:
                app.aboutToQuit.connect(self.shutdown)
                self._quit_hooked = True

    def _on_progress(self, row: dict):
        if self._closing:
            return
        if row.get("setup"):
            self.progress_rows.append(row)
            try:
                self._setup(row)  # sets _gui_ready when done
            except Exception:
                self._gui_ready.set()
                raise
            return
        self.last_progress = row
        if row.get("cell_scale"):  # what --scale auto measured and chose, kept under the progress
            self._scale_note = row["cell_scale"]
        self.progress_rows.append({k: v for k, v in row.items() if k != "samples"})
        now = time.monotonic()
        fraction = float(row.get("fraction", 0.0))
        if self._t0 is None:
            self._t0 = (now, fraction)
        t0, f0 = self._t0
        eta = (1.0 - fraction) * (now - t0) / (fraction - f0) if fraction > f0 else None
        self.progress_bar.value = int(round(1000 * fraction))
        text = f"run {row['run']} of {row['runs']} · " if "runs" in row else ""
        text += f"{int(row['nimg']):,} images seen"
        if "img_per_s" in row:
            text += f" · {row['img_per_s']:.0f} img/s"
        if "threads" in row:
            text += f" · {threads_text(row['threads'])}"
        text += f" · ETA {format_eta(0.0 if row.get('done') else eta)}"
        pbar = self._pbar  # (its events may run other queued callbacks)
        if pbar is not None:
            pbar.update(max(0, int(1000 * fraction) - pbar.n))
            pbar.set_description(f"{self._run_title}: {text}")
        if row.get("done"):
            text = f"stopped at {int(row['nimg']):,} images; checkpoint {row.get('checkpoint')}"
        if row.get("quality_note"):  # said when a run ends (of several, each)
            from napari.utils.notifications import show_warning

            self._quality_warning = f"\nwarning: {row['quality_note']}"
            show_warning(f"Train: {row['quality_note']}")
        if row.get("done"):
            text += self._quality_warning
        self.status.value = text + (f"\n{self._scale_note}" if self._scale_note else "")
        if row.get("run", 1) > 1:
            self._run_starts.setdefault(int(row["run"]), float(row["run_start_kimg"]))
        if "loss_G" in row:
            self._history.append((float(row["kimg"]), float(row["loss_G"]), float(row["loss_D"])))
        if all(name in row for name in model.METRIC_COLUMNS[1:]):
            self._metrics.append(tuple(float(row[name]) for name in model.METRIC_COLUMNS))
        if row.get("done") or now - self._last_draw > 2.0:
            self._draw_losses()
            self._last_draw = now
        if "samples" in row:
            self._show_samples(row["samples"])

    def _setup(self, row: dict):
        """Build the sample layers and the loss plot before training starts.

        One layer per turn of the event loop, then the plot, so the viewer stays
        interactive while napari builds them; training starts when all are there.
        """
        from napari.utils.notifications import show_error
        from qtpy.QtCore import QTimer

        self._history = list(row["history"])
        self._metrics = list(row.get("metrics", []))
        self._run_starts = {run: kimg for run, kimg in enumerate(row.get("run_starts", []), start=2)}
        self._layout = {k: row[k] for k in ("stains", "contrast_limits", "pixel_size", "plate_width", "data_scale")}
        zeros = np.zeros(row["shape"], np.float32)
        for layer in self._sample_layers(len(zeros)):
            self._viewer.layers.remove(layer)
        steps = [lambda c=c: self._add_sample_layer(c, zeros[c]) for c in range(len(zeros))]
        if self._gan:
            steps.append(lambda: self._draw_losses(force=True))

        def next_step():
            if self._closing or not steps:
                self._gui_ready.set()
                return
            try:
                steps.pop(0)()
            except Exception as exc:  # noqa: BLE001 - never leave the worker waiting
                steps.clear()
                show_error(f"{self._run_title}: could not show the preview: {exc}")
            QTimer.singleShot(0, next_step)

        next_step()

    def _sample_names(self, n_channels: int) -> list[str]:
        stains = self._layout.get("stains") or []
        if len(stains) == n_channels:
            return [f"{self._preview} · {s.label}" for s in stains]
        return [f"{self._preview} · {c}" for c in range(n_channels)]

    def _sample_layers(self, n_channels: int) -> list:
        return [self._viewer.layers[n] for n in self._sample_names(n_channels) if n in self._viewer.layers]

    def _add_sample_layer(self, channel: int, data: np.ndarray):
        from napari_gandl._viewer import stain_colormap

        stains = self._layout.get("stains") or []
        limits = self._layout.get("contrast_limits") or []
        px = self._layout.get("pixel_size") or 1.0
        width = self._layout.get("plate_width") or 0
        step = px * self._layout.get("data_scale", 1)  # one generated pixel covers this many plate pixels
        kwargs = dict(name=self._sample_names(len(stains) or channel + 1)[channel], blending="additive",
                      scale=(step, step), translate=(0.0, (width + 8) * px),
                      metadata={"napari_gandl_samples": {"run": str(self.run_path)}})
        if channel < len(stains):
            stain = stains[channel]
            kwargs["colormap"] = stain_colormap(stain)
        if channel < len(limits):
            kwargs["contrast_limits"] = [float(v) for v in limits[channel]]
        return self._viewer.add_image(data, **kwargs)

    def _show_samples(self, grid: np.ndarray, count: bool = True):
        existing = self._sample_layers(len(grid))
        self.sample_refreshes += int(count)
        if len(existing) == len(grid) and all(layer.data.shape == grid.shape[1:] for layer in existing):
            for layer, channel in zip(existing, grid):
                layer.data = channel
            return
        for layer in existing:  # a resumed run of another size: rebuild
            self._viewer.layers.remove(layer)
        for c, channel in enumerate(grid):
            self._add_sample_layer(c, channel)

    def _draw_losses(self, force: bool = False):
        """The losses (top) and, when the run measures them, the sample-quality metrics of its
        ``metrics.csv`` (bottom: 1-NN accuracy, 0.5 = generated cells indistinguishable from
        real ones; diversity, 1 = as varied as real; KID on its own axis, 0 = same distribution)."""
        if not self._history and not force:
            return
        docks = getattr(self._viewer.window, "dock_widgets", {})
        if self._figure is None or LOSS_DOCK not in docks:
            self._figure, self._canvas = docked_figure(self._viewer, LOSS_DOCK, figsize=(4, 4.6))
            self._run_marks = []  # those of an earlier figure went with it
            self._canvas.setMinimumHeight(320)  # the dock below the (tall) widget keeps a usable plot
            fg = self._figure.gandl_colors["foreground"]
            ax, qa = self._figure.subplots(2, 1, sharex=True)
            (self._line_g,) = ax.plot([], [], label="G", lw=1)
            (self._line_d,) = ax.plot([], [], label="D", lw=1)
            ax.set_ylabel("loss")
            kid_ax = qa.twinx()
            self._metric_lines = {
                "nn1_accuracy": qa.plot([], [], "o-", ms=3, lw=1, color="#E69F00", label="1-NN accuracy")[0],
                "diversity": qa.plot([], [], "s-", ms=3, lw=1, color="#56B4E9", label="diversity")[0],
                "kid": kid_ax.plot([], [], "^-", ms=3, lw=1, color="#CC79A7", label="KID (right)")[0],
            }
            qa.axhline(0.5, ls=":", lw=0.8, color="grey")
            # early samples are far from the reals (diversity ~25, KID ~1e9 at 0 kimg): linear up to
            # 1 (1-NN, diversity) and 0.01 (KID), logarithmic above, so the later points stay readable
            qa.set_yscale("symlog", linthresh=1.0)
            kid_ax.set_yscale("symlog", linthresh=0.01)
            qa.set_xlabel("thousand images seen")
            qa.set_ylabel("sample quality")
            kid_ax.set_ylabel("KID")
            self._quality_note = qa.text(0.5, 0.5, "no sample-quality metrics yet", transform=qa.transAxes,
                                         ha="center", va="center", fontsize=8, color=fg)
            for a in (ax, qa, kid_ax):
                style_axes(self._figure, a)
            for a, handles in ((ax, None), (qa, list(self._metric_lines.values()))):
                legend = a.legend(handles=handles, frameon=False, fontsize=8, loc="upper right")
                for text in legend.get_texts():
                    text.set_color(fg)
            self._figure.tight_layout()
            self._ax, self._quality_axes = ax, (qa, kid_ax)
        if self._history:
            kimg, lg, ld = np.asarray(self._history, np.float64).T
            self._line_g.set_data(kimg, lg)
            self._line_d.set_data(kimg, ld)
            self._ax.relim()
            self._ax.autoscale_view()
        if self._metrics:
            values = np.asarray(self._metrics, np.float64)
            for k, name in enumerate(model.METRIC_COLUMNS[1:], start=1):
                self._metric_lines[name].set_data(values[:, 0], values[:, k])
            self._quality_note.set_visible(False)
            for a in self._quality_axes:
                a.relim()
                a.autoscale_view()
        self._mark_run_starts()
        self._canvas.draw_idle()

    def _mark_run_starts(self):
        """A dashed line where each run after the first began (its samples and metrics start afresh
        there), labelled with the run's number."""
        for mark in self._run_marks:
            mark.remove()
        self._run_marks = []
        fg = self._figure.gandl_colors["foreground"]
        for run, kimg in sorted(self._run_starts.items()):
            for a in (self._ax, self._quality_axes[0]):
                self._run_marks.append(a.axvline(kimg, ls="--", lw=0.8, color=fg, alpha=0.6))
            self._run_marks.append(self._ax.text(kimg, 1.0, f" run {run}", transform=self._ax.get_xaxis_transform(),
                                                 ha="left", va="top", fontsize=8, color=fg))

    def _on_finished(self):
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        if self._closing:
            return
        self.stop_button.enabled = False
        row = self.last_progress
        if row is None or not row.get("done"):
            self.status.value = "training ended without a checkpoint (see the error message)"


def _close_filter_class():
    from qtpy.QtCore import QEvent, QObject

    class CloseFilter(QObject):
        """Calls ``on_close`` (blocking) when the watched window is about to close."""

        def __init__(self, on_close):
            super().__init__()
            self._on_close = on_close

        def eventFilter(self, watched, event):  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.Close:
                self._on_close()
            return False

    return CloseFilter
