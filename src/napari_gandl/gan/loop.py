"""The GAN-DL training loop: a generator of progress dicts around :class:`Trainer`.

``iterate_training(...)`` yields a progress dict after every step, suitable for
a GUI ``thread_worker``; closing the generator (or a ``should_stop`` callback
returning True) stops training cleanly after writing a checkpoint.
``train(...)`` drives it to the end and returns the run directory.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from napari_gandl.files import first_process, output_lock, write_text
from napari_gandl.gan.config import TrainConfig, describe_cell_scale, make_config
from napari_gandl.gan.metrics import METRIC_NAMES, run_divergence_note
from napari_gandl.gan.trainer import Trainer
from napari_gandl.plate import open_plate
from napari_gandl.plate.display import save_grid
from napari_gandl.torch_utils.distributed import broadcast_flag
from napari_gandl.torch_utils.runs import append_row, drop_rows_after, logged_at

METRICS_FIELDS = ["kimg", *METRIC_NAMES, "augment_p", "metrics_s"]


def iterate_training(plate, out_dir, config: TrainConfig | None = None, resume: bool = False,
                     should_stop: Callable[[], bool] | None = None,
                     samples_every_s: float | None = None, **overrides) -> Iterator[dict]:
    """Generator of progress dicts; training stops cleanly when closed.

    Each dict has ``step, kimg, nimg, loss_G, loss_D, reg, real_score,
    fake_score, img_per_s, elapsed_s, fraction, checkpoint`` (path written at
    this step or None) and ``done``.  With ``samples_every_s``, the first
    dict, the last one and one at most every that many seconds also carry
    ``samples``: 16 fixed-seed EMA-generator images ``(16, C, H, W)`` float32
    in the plate's intensity units (for a live preview).

    Sample quality (``nn1_accuracy, kid, diversity``; see
    :mod:`napari_gandl.gan.metrics`) is measured at the start of a new run,
    at every snapshot and at the end; each measurement is appended to
    ``metrics.csv`` and its values (plus ``metrics_s``, the seconds it took)
    are added to that step's dict.

    The run folder is locked while it trains (:func:`napari_gandl.files.output_lock`; by the
    first process under torchrun): a second run into it is refused, naming the first.
    """
    plate = open_plate(plate)
    if config is None:
        config = make_config(**overrides)
    rank0 = first_process()
    with output_lock(out_dir, folder=True) if rank0 else nullcontext(Path(out_dir)) as out_dir:
        return (yield from _iterate(plate, out_dir, config, resume, should_stop, samples_every_s))


def _iterate(plate, out_dir: Path, config: TrainConfig, resume: bool, should_stop, samples_every_s):
    tr = Trainer(plate, out_dir, config, resume=resume)
    if tr.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text(out_dir / "config.json", json.dumps(tr.cfg.to_dict(), indent=2))
        if tr.resumed_from_nimg is None:
            reals = np.concatenate([tr.sampler.sample(16, np.random.default_rng(1)).numpy()])
            save_grid(reals, tr.colours, out_dir / "samples" / "reals.png")
    loss_csv = out_dir / "losses.csv"
    metrics_csv = out_dir / "metrics.csv"
    measuring = tr.rank == 0 and tr.cfg.metrics_samples > 0

    def measure() -> dict:
        if not measuring:
            return {}
        m = tr.measure()
        drop_rows_after(metrics_csv, m["kimg"], inclusive=True)  # a resumed run measures its start again
        append_row(metrics_csv, METRICS_FIELDS, m)
        return {k: v for k, v in m.items() if k != "kimg"}

    pending = {"cell_scale": describe_cell_scale(tr.cfg)}  # said once, with the first step
    if tr.rank == 0 and tr.resumed_from_nimg is not None:  # rows written after the checkpoint
        drop_rows_after(metrics_csv, tr.cur_nimg / 1000)
        drop_rows_after(loss_csv, tr.cur_nimg / 1000)
    elif tr.rank == 0:  # logs of an earlier run killed before its first checkpoint
        metrics_csv.unlink(missing_ok=True)
        loss_csv.unlink(missing_ok=True)
        pending.update(measure())
    last_snap_nimg = tr.cur_nimg
    last_snap_time = time.time()
    last_sample_time = None
    stopped = stepped = False
    try:
        while True:
            stop = tr.done() or (should_stop is not None and should_stop())
            if broadcast_flag(stop):
                break
            t0 = time.time()
            stats = tr.step()
            stepped = True
            dt = time.time() - t0
            tr.elapsed_s += dt
            ckpt = None
            snap_due = (tr.cur_nimg - last_snap_nimg >= tr.cfg.snapshot_kimg * 1000) or (
                time.time() - last_snap_time >= tr.cfg.snapshot_minutes * 60
            )
            if broadcast_flag(snap_due) and not tr.done():
                ckpt = tr.save()
                pending.update(measure())
                last_snap_nimg, last_snap_time = tr.cur_nimg, time.time()
            row = {
                "step": tr.step_idx,
                "kimg": tr.cur_nimg / 1000,
                "nimg": tr.cur_nimg,
                **stats,
                "img_per_s": tr.cfg.batch / max(dt, 1e-9),
                "elapsed_s": tr.elapsed_s,
                "fraction": tr.fraction(),
                "checkpoint": str(ckpt) if ckpt else None,
                "done": False,
                **pending,
            }
            pending = {}
            if tr.rank == 0:
                append_row(loss_csv, Trainer.LOSS_FIELDS, row)
                if samples_every_s is not None and (
                    last_sample_time is None or time.time() - last_sample_time >= samples_every_s
                ):
                    row["samples"] = tr.sample_images()
                    last_sample_time = time.time()
            yield row
    except GeneratorExit:
        stopped = True
    finally:
        # final (or cancellation) checkpoint; skipped when a loss diverged
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, GeneratorExit):
            path = tr.save()
            if not stopped:
                last = {
                    "step": tr.step_idx, "kimg": tr.cur_nimg / 1000, "nimg": tr.cur_nimg,
                    "elapsed_s": tr.elapsed_s, "fraction": tr.fraction(),
                    "checkpoint": str(path) if path else None, "done": True,
                    # a finished run resumed (the first of a split folder) was measured at its end already
                    **({} if not stepped and logged_at(metrics_csv, tr.cur_nimg / 1000) else measure()),
                }
                note = run_divergence_note(out_dir) if measuring else None
                if note:  # a generator that blew up late is said (the features may be worse too)
                    last["quality_note"] = note
                if samples_every_s is not None and tr.rank == 0:
                    last["samples"] = tr.sample_images()
                yield last


def train(plate, out_dir, preset: str = "quick", resolution: int | None = None,
          minutes: float | None = None, kimg: float | None = None, batch: int | None = None,
          device: str = "auto", resume: bool = False, seed: int | None = None,
          progress: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None, **overrides) -> Path:
    """Train a GAN-DL model on ``plate`` (a Plate or a folder) into ``out_dir``.

    Returns the run directory (holding ``checkpoint.pt``, ``config.json``,
    ``losses.csv`` and ``samples/``).
    """
    cfg = make_config(preset, resolution=resolution, minutes=minutes, kimg=kimg, batch=batch,
                      device=device, seed=seed, **overrides)
    for info in iterate_training(plate, out_dir, cfg, resume=resume, should_stop=should_stop):
        if progress is not None:
            progress(info)
    return Path(out_dir)
