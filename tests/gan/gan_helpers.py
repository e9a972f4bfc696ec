"""Shared settings of the GAN-DL backend tests."""

from __future__ import annotations

import os
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")

# Tiny networks so every test runs in seconds on 2 CPU cores.
TINY = dict(
    resolution=32,
    batch=8,
    network=dict(channel_base=256, channel_max=32, d_channel_base=None, d_channel_max=None),
    snapshot_kimg=1000.0,
    threads=1,
    data=dict(norm_sites=8),  # one torch thread is fastest on a small shared CI machine
)


def subprocess_env() -> dict:
    """Environment for child processes that must import napari_gandl from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env
