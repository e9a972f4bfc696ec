"""The Train dock's view-model: which method, a run folder's state and history (Qt-free).

GAN-DL trains through ``gan.iterate_training`` (its preset, resolution and
live samples); every other trainable registry method through its own
``MethodSpec.train`` generator (:func:`train_method`).  Besides that, this
module answers what the dock shows before and beside training: the method
choices and which controls apply, whether the run folder can be
started or resumed (checked on the GUI thread, before a worker starts), the
run's own settings when resuming (from its checkpoint, through the
``gan`` API), and the loss and sample-quality history already written
(``losses.csv``, ``metrics.csv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from napari_gandl.torch_utils.checkpoint import CHECKPOINT_NAME
from napari_gandl.gan.checkpoint import load_checkpoint
from napari_gandl.gan.metrics import METRIC_NAMES

LOSS_COLUMNS = ("kimg", "loss_G", "loss_D")
METRIC_COLUMNS = ("kimg", *METRIC_NAMES)
GAN_METHOD = "gandl"


def method_choices() -> list[str]:
    """The methods the dock can train: every registered method with a train step."""
    from napari_gandl.embedding.registry import trainable_method_names

    return trainable_method_names()


def is_gan(method: str) -> bool:
    """Whether ``method`` trains GAN-DL (preset, resolution, sample previews and loss plot apply)."""
    return method == GAN_METHOD


def default_run_folder(plate_root: Path, method: str) -> Path:
    """``PLATE-METHOD-run`` next to the plate."""
    plate_root = Path(plate_root)
    return plate_root.parent / f"{plate_root.name}-{method}-run"


def train_method(method: str, plate, run: Path, minutes: float, device: str, resume: bool,
                 should_stop: Callable[[], bool]) -> Iterator[dict]:
    """Train registry method ``method`` (not GAN-DL), yielding its progress dicts.

    When ``should_stop()`` turns true the method's generator is closed, which
    writes its checkpoint, and a last ``done`` row names that checkpoint.
    """
    from napari_gandl.torch_utils.checkpoint import CHECKPOINT_NAME
    from napari_gandl.embedding.registry import get_method

    rows = get_method(method).train(plate, run, minutes=minutes, device=device, resume=resume)
    last = {"nimg": 0, "kimg": 0.0, "fraction": 0.0}
    for row in rows:
        last = row
        yield row
        if row.get("done"):
            return
        if should_stop():
            rows.close()  # the method writes its checkpoint on close
            yield {**last, "done": True, "eta_s": 0.0, "checkpoint": str(Path(run) / CHECKPOINT_NAME)}
            return


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


def loss_history(run: Path) -> pd.DataFrame:
    """``kimg, loss_G, loss_D`` of every step written to the run's ``losses.csv`` (empty when none)."""
    return _read(Path(run) / "losses.csv", LOSS_COLUMNS)


def metric_history(run: Path) -> pd.DataFrame:
    """``kimg`` and the sample-quality metrics (1-NN accuracy, KID, diversity) of the run's
    ``metrics.csv`` (empty when the run has none)."""
    return _read(Path(run) / "metrics.csv", METRIC_COLUMNS)
