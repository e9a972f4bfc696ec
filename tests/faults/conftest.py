"""Fixtures of the fault probes: a tiny trained GAN-DL run and the handcrafted embedding of the
test plate (both written once per session; copy them to change them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fault_helpers import TINY_TRAIN, Gandl
from napari_gandl.cli import main


@pytest.fixture
def gandl(capsys) -> Gandl:
    """``rc, err = gandl("embed", ...)``: the ``gandl`` command in this process."""
    return Gandl(capsys)


@pytest.fixture(scope="session")
def tiny_run(sample_plate, tmp_path_factory) -> Path:
    """A GAN-DL run trained for 2 steps (16 images) with tiny networks on the test plate."""
    out = tmp_path_factory.mktemp("faults") / "run"
    assert main(["train", str(sample_plate), "--out", str(out), "--kimg", "0.016", *TINY_TRAIN]) == 0
    return out


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of ``tiny_run`` that a test may damage or resume."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.fixture(scope="session")
def handcrafted(sample_plate, tmp_path_factory) -> Path:
    """The handcrafted embedding of the test plate: one row per site, metadata joined."""
    out = tmp_path_factory.mktemp("faults") / "handcrafted.parquet"
    assert main(["embed", str(sample_plate), "--method", "handcrafted", "--out", str(out)]) == 0
    return out
