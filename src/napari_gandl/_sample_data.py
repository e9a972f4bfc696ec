"""npe2 sample data: the synthetic RxRx19a-like screen, written to a cache folder once."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from napari_gandl._viewer import plate_layer_data
from napari_gandl.plate import open_plate
from napari_gandl.synthetic import GENERATOR_VERSION, write_sample_plate


def sample_plate_path(preset: str = "demo") -> Path:
    """The cached synthetic screen for ``preset`` (written on first use)."""
    base = Path(os.environ.get("NAPARI_GANDL_CACHE", Path(tempfile.gettempdir()) / "napari-gandl"))
    root = base / f"sample-{preset}-v{GENERATOR_VERSION}"
    if not (root / "metadata.csv").is_file():
        partial = base / f".sample-{preset}-{os.getpid()}"
        write_sample_plate(partial, preset=preset)
        partial.rename(root)  # only a complete plate ever appears under its final name
    return root


def make_sample_plate():
    """The synthetic screen as napari layers (``NAPARI_GANDL_SAMPLE_PRESET`` picks its size)."""
    return plate_layer_data(open_plate(sample_plate_path(os.environ.get("NAPARI_GANDL_SAMPLE_PRESET", "demo"))))
