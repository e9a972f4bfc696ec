"""The Train dock's view-model: a run folder's state and history (Qt-free).

The training itself is ``gan.iterate_training``; this module only answers
what the dock shows before and beside it: whether the run folder can be
started or resumed (checked on the GUI thread, before a worker starts), the
run's own settings when resuming (from its checkpoint, through the
``gan`` API), and the loss and sample-quality history already written
(``losses.csv``, ``metrics.csv``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from napari_gandl.gan.checkpoint import CHECKPOINT_NAME, load_checkpoint
from napari_gandl.gan.metrics import METRIC_NAMES

LOSS_COLUMNS = ("kimg", "loss_G", "loss_D")
METRIC_COLUMNS = ("kimg", *METRIC_NAMES)


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
    from napari_gandl.gan.training import TrainConfig

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


def loss_history(run: Path) -> pd.DataFrame:
    """``kimg, loss_G, loss_D`` of every step written to the run's ``losses.csv`` (empty when none)."""
    return _read(Path(run) / "losses.csv", LOSS_COLUMNS)


def metric_history(run: Path) -> pd.DataFrame:
    """``kimg`` and the sample-quality metrics (1-NN accuracy, KID, diversity) of the run's
    ``metrics.csv`` (empty when the run has none)."""
    return _read(Path(run) / "metrics.csv", METRIC_COLUMNS)
