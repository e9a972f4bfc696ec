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


def tiny_config(**kw):
    """The quick preset with the tiny networks, on the CPU."""
    from napari_gandl.gan import make_config

    return make_config("quick", device="cpu", **{**TINY, **kw})


def stopped_and_resumed(plate, run, steps: int = 3, **kw) -> list[dict]:
    """Train ``tiny_config(**kw)`` into ``run``, stop it after ``steps`` steps and resume it to
    the end; the resumed run's progress dicts."""
    from napari_gandl.gan import iterate_training

    stopped = iterate_training(plate, run, tiny_config(**kw))
    for _ in range(steps):
        next(stopped)
    stopped.close()
    return list(iterate_training(plate, run, tiny_config(**kw), resume=True))
