"""What every trained model of the package shares: device, CPU threads, optimiser, RNG state,
torchrun process groups, safe checkpoint files and the run bookkeeping (diverged losses, CSV logs).

Imports torch and numpy only; the models (:mod:`napari_gandl.gan`, :mod:`napari_gandl.comparators`)
build on it.
"""

from napari_gandl.torch_utils.checkpoint import (
    CHECKPOINT_NAME, Checkpoint, CheckpointError, load_checkpoint, read_tensors, resolve_checkpoint,
    save_checkpoint,
)
from napari_gandl.torch_utils.device import resolve_device
from napari_gandl.torch_utils.optim import Adam
from napari_gandl.torch_utils.rng import load_rng_state, save_rng_state
from napari_gandl.torch_utils.runs import RunLength, TrainingDiverged, append_row, drop_rows_after

__all__ = [
    "Adam", "CHECKPOINT_NAME", "Checkpoint", "CheckpointError", "RunLength", "TrainingDiverged",
    "append_row", "drop_rows_after", "load_checkpoint", "load_rng_state", "read_tensors",
    "resolve_checkpoint", "resolve_device", "save_checkpoint", "save_rng_state",
]
