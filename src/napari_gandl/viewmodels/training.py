"""The Train dock's view-model: its training jobs, which method, a run folder's state and history
(Qt-free).

The jobs the dock runs in a worker thread are generators of progress dicts:
:func:`train_job` trains GAN-DL through ``gan.iterate_training`` (its preset,
resolution and live samples), :func:`method_job` every other trainable
registry method through its own ``MethodSpec.train`` generator
(:func:`train_method`; with the live preview of a method that has one, such as
MAE's reconstructions).  Either stops at its next step when its ``stop``
event is set (writing its checkpoint; a last ``done`` row names it), or when
the generator is closed (the checkpoint is written all the same).  Besides
that, this module answers what the dock shows before and beside training: the method
choices and which controls apply, whether the run folder can be
started or resumed (checked on the GUI thread, before a worker starts), the
run's own settings when resuming (from its checkpoint, through the
``gan`` API), and the loss and sample-quality history already written
(``losses.csv``, ``metrics.csv``).

On the CPU both jobs keep torch's threads to the cores other processes leave free, never more
than all cores but one (which stays with napari's GUI thread), as ``gandl train`` does without
``--threads``: a busy process beside a training with more threads than free cores stalls it for
seconds per step. Each progress row says the threads in use (``threads``).
"""

from __future__ import annotations

import copy
import json
import os
import threading
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import pandas as pd

from napari_gandl.plate.display import tile_grid
from napari_gandl.torch_utils.checkpoint import CHECKPOINT_NAME
from napari_gandl.torch_utils.runs import run_members, train_runs
from napari_gandl.gan.checkpoint import load_checkpoint
from napari_gandl.gan.config import resolve_cell_scale
from napari_gandl.gan.metrics import METRIC_NAMES
from napari_gandl.plate import open_plate

LOSS_COLUMNS = ("kimg", "loss_G", "loss_D")
METRIC_COLUMNS = ("kimg", *METRIC_NAMES)
GAN_METHOD = "gandl"
GOVERN_EVERY_S = 10.0  # how often a CPU training job looks at the machine's load again


def cpu_threads() -> int:
    """Torch threads for CPU training in the dock at most: all cores but one, which stays with napari's
    GUI thread."""
    return max(1, (os.cpu_count() or 2) - 1)


def _governed(rows: Iterator[dict], device: str | None, most: int) -> Iterator[dict]:
    """``rows`` of a training; on the CPU, torch's threads start at ``most`` and then follow the cores
    other processes leave free (never more than ``most``), looked at again between rows, and each row
    says them (``threads``)."""
    import torch

    from napari_gandl.torch_utils.device import resolve_device
    from napari_gandl.torch_utils.threads import ThreadGovernor

    if resolve_device(device).type != "cpu":
        yield from rows
        return
    torch.set_num_threads(most)
    governor = ThreadGovernor(most=most, every_s=GOVERN_EVERY_S)
    for row in rows:
        governor.update()
        row["threads"] = governor.threads
        yield row


def method_choices() -> list[str]:
    """The methods the dock can train: every registered method with a train step."""
    from napari_gandl.embedding.registry import trainable_method_names

    return trainable_method_names()


def is_gan(method: str) -> bool:
    """Whether ``method`` trains GAN-DL (preset, resolution and loss plot apply)."""
    return method == GAN_METHOD


def preview_name(method: str) -> str:
    """What the live preview of ``method``'s training shows ("GAN samples", "mae reconstructions");
    "" for a method without one."""
    from napari_gandl.embedding.registry import get_method

    if is_gan(method):
        return "GAN samples"
    preview = get_method(method).preview
    return f"{method} {preview}" if preview else ""


def default_run_folder(plate_root: Path, method: str) -> Path:
    """``PLATE-METHOD-run`` next to the plate."""
    plate_root = Path(plate_root)
    return plate_root.parent / f"{plate_root.name}-{method}-run"


def train_method(method: str, plate, run: Path, minutes: float, device: str, resume: bool,
                 should_stop: Callable[[], bool], samples_every_s: float | None = None) -> Iterator[dict]:
    """Train registry method ``method`` (not GAN-DL), yielding its progress dicts.

    When ``should_stop()`` turns true the method stops after its step and writes its checkpoint, and a
    last ``done`` row names that checkpoint.  With ``samples_every_s``, a method with a preview sends it
    that often.
    """
    from napari_gandl.embedding.registry import get_method

    spec = get_method(method)
    previews = {"samples_every_s": samples_every_s} if spec.preview and samples_every_s is not None else {}
    return spec.train(plate, run, minutes=minutes, device=device, resume=resume, should_stop=should_stop,
                      **previews)


def train_job(plate, out_dir, config, resume: bool, stop: threading.Event, done: threading.Event,
              samples_every_s: float, gui_ready: threading.Event | None = None, runs: int = 1) -> Iterator[dict]:
    """GAN-DL training for a worker thread: opens the plate (a folder or a ``Plate``), trains ``config``'s
    budget split over ``runs`` runs read together (``torch_utils.runs.train_runs``, as ``gandl train``),
    yields progress dicts with the sample images as one tiled ``(C, H, W)`` grid.

    It first yields a ``setup`` dict (``stains``, ``contrast_limits``,
    ``pixel_size``, ``plate_width``, ``data_scale``, the sample grid ``shape``
    and, when resuming, the loss and metric ``history`` already in the run
    folder, with ``run_starts``: where its second and later runs began) and
    waits for ``gui_ready`` (at most 30 s) so the viewer builds its layers and
    plot before training competes with it for the interpreter.
    ``done`` is set however the job ends.
    """
    try:
        import matplotlib.figure  # noqa: F401 - imported here, not on the GUI thread

        from napari_gandl.gan import iterate_training

        plate = open_plate(plate)
        if not resume:
            resolve_cell_scale(config, plate)  # the sample grid's layout needs the factor --scale auto picks
        resolution, scale = run_settings(out_dir, config) if resume else \
            (config.resolution, int((config.data or {}).get("scale", 1)))
        grid = tile_grid(np.zeros((16, plate.n_channels, resolution, resolution), np.float32))
        history = run_history(out_dir) if resume else History(pd.DataFrame(), pd.DataFrame(), [])
        yield {
            **_setup_row(plate, scale, grid.shape),
            "history": list(history.losses.itertuples(index=False, name=None)),
            "metrics": list(history.metrics.itertuples(index=False, name=None)),
            "run_starts": history.run_starts,
        }
        if gui_ready is not None:
            gui_ready.wait(30.0)
        def train_one(folder, minutes, kimg, seed, resume):
            one = copy.deepcopy(config)
            one.minutes, one.kimg, one.seed = minutes, kimg, seed
            return iterate_training(plate, folder, one, resume=resume, should_stop=stop.is_set,
                                    samples_every_s=samples_every_s)

        rows = train_runs(train_one, out_dir, runs, config.minutes, config.kimg, config.seed, resume,
                          should_stop=stop.is_set)
        with closing(rows):  # closed early, training still writes its checkpoint
            for row in _governed(rows, config.device, config.threads or cpu_threads()):
                if "samples" in row:
                    row["samples"] = tile_grid(row["samples"])
                yield row
    finally:
        done.set()


def _setup_row(plate, data_scale: int, shape) -> dict:
    """What the dock needs to show a preview grid of ``shape`` beside the plate."""
    return {"setup": True, "stains": list(plate.stains), "contrast_limits": plate.contrast_limits(),
            "pixel_size": plate.pixel_size_um, "plate_width": int(plate.data.shape[-1]), "data_scale": data_scale,
            "shape": shape, "history": [], "metrics": []}


def method_job(method: str, plate, out_dir, minutes: float, device: str, resume: bool,
               stop: threading.Event, done: threading.Event, samples_every_s: float | None = None,
               gui_ready: threading.Event | None = None) -> Iterator[dict]:
    """A non-GAN method's training for a worker thread: opens the plate, trains, yields progress
    dicts (the last one ``done``, naming the checkpoint, also after ``stop``); ``done`` is set
    however the job ends.

    With ``samples_every_s`` and a method with a preview, the preview comes as one tiled
    ``(C, H, W)`` grid (a row of tiles per kind of image), and the first one is preceded by a
    ``setup`` dict (as :func:`train_job`'s) after which the job waits for ``gui_ready`` (at most 30 s).
    """
    from napari_gandl.comparators.tiles import PREVIEW_TILES

    try:
        plate = open_plate(plate)
        set_up = False
        for row in _governed(train_method(method, plate, out_dir, minutes, device, resume, stop.is_set,
                                          samples_every_s), device, cpu_threads()):
            if "samples" in row:
                row = {**row, "samples": tile_grid(row["samples"], cols=PREVIEW_TILES)}
                if not set_up:
                    scale = json.loads((Path(out_dir) / "config.json").read_text())["data"].get("scale", 1)
                    yield _setup_row(plate, int(scale), row["samples"].shape)
                    if gui_ready is not None:
                        gui_ready.wait(30.0)
                    set_up = True
            yield row
    finally:
        done.set()


def check_run_folder(run: Path, resume: bool) -> None:
    """ValueError (one line) when ``run`` cannot be resumed, or would be overwritten by a new run."""
    ckpt = Path(run) / CHECKPOINT_NAME
    if resume and not ckpt.exists():
        raise ValueError(f"nothing to resume: no checkpoint {ckpt}")
    if not resume and ckpt.exists():
        raise ValueError(f"{ckpt} exists: press Resume to continue that run, or choose another run folder")


def run_settings(run: Path, config) -> tuple[int, int]:
    """``(resolution, data scale)`` the run trains at: a resumed run's own (its checkpoint's
    config wins on resume), else ``config``'s."""
    from napari_gandl.gan.config import TrainConfig

    ckpt = Path(run) / CHECKPOINT_NAME
    if ckpt.exists():
        config = TrainConfig.from_dict(load_checkpoint(ckpt)["config"])
    return int(config.resolution), int((config.data or {}).get("scale", 1))


def _read(path: Path, columns) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=list(columns))
    present = [c for c in columns if c in frame.columns]
    return frame[present].apply(pd.to_numeric, errors="coerce")


class History(NamedTuple):
    """A run folder's logs, every run it holds one after the other: each run's ``kimg`` counted on from
    where the runs before it ended, as its training's progress is."""

    losses: pd.DataFrame  #: ``kimg, loss_G, loss_D`` of every step in ``losses.csv`` (empty when none)
    metrics: pd.DataFrame  #: ``kimg`` and the sample-quality metrics of ``metrics.csv`` (empty when none)
    run_starts: list[float]  #: where the second and later runs began (none for one run)


def run_history(run: Path) -> History:
    """The :class:`History` of the run folder ``run``, each log of each of its runs read once."""
    losses, metrics, starts, seen = [], [], [], 0.0
    for member in run_members(run):
        starts.append(seen)
        loss, metric = _read(member / "losses.csv", LOSS_COLUMNS), _read(member / "metrics.csv", METRIC_COLUMNS)
        losses.append(loss.assign(kimg=loss["kimg"] + seen) if seen else loss)  # the first run's as written
        metrics.append(metric.assign(kimg=metric["kimg"] + seen) if seen else metric)
        seen += float(loss["kimg"].iloc[-1]) if len(loss) else 0.0  # where this run ended
    return History(pd.concat(losses, ignore_index=True), pd.concat(metrics, ignore_index=True), starts[1:])
