"""Fixtures for the GAN-DL backend tests: a tiny synthetic plate and a tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_helpers import TINY, subprocess_env  # noqa: E402,F401


@pytest.fixture(scope="session")
def gan_plate(sample_plate) -> Path:
    """The session's 'test'-preset synthetic screen (100 sites, 64x64, 5 stains); read-only."""
    return sample_plate


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, gan_plate) -> Path:
    """A run directory trained for a few steps with tiny networks."""
    from napari_gandl.gan import train

    out = tmp_path_factory.mktemp("gan_run") / "run"
    train(gan_plate, out, preset="quick", kimg=0.048, device="cpu", seed=1,
          **{k: v for k, v in TINY.items() if k not in ("batch", "resolution")},
          batch=TINY["batch"], resolution=TINY["resolution"])
    return out
