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


def assert_resumes_exactly(plate, tmp_path, head: str, **kw):
    """A run with the auxiliary ``head`` (its checkpoint key; its loss is logged as ``{head}_loss``),
    stopped after 3 steps and resumed, ends with the G, D and head of the same run straight through."""
    import csv

    import numpy as np
    import torch

    from napari_gandl.gan import iterate_training, load_checkpoint

    straight = list(iterate_training(plate, tmp_path / "straight", tiny_config(**kw)))
    resumed = stopped_and_resumed(plate, tmp_path / "split", **kw)
    assert resumed[0]["step"] == 4
    assert all(np.isfinite(i[f"{head}_loss"]) for i in straight if not i["done"])
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    for x, y in ((a["D"], b["D"]), (a["G"], b["G"]), (a[head]["head"], b[head]["head"])):
        for k in x:
            torch.testing.assert_close(x[k], y[k], rtol=0, atol=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "split" / "losses.csv")))
    assert [r[f"{head}_loss"] != "" for r in rows] == [True] * 6
