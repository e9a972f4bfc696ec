"""Shared fixtures: a synthetic plate written once per session, and a file-open counter."""

from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from napari_gandl.synthetic import write_sample_plate

_OPENED: list[str] | None = None


def _audit(event, args):
    if event == "open" and _OPENED is not None and isinstance(args[0], (str, Path)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)


@contextmanager
def _count_opens(suffix: str = ".png"):
    """Collect the paths of files with ``suffix`` that Python opens inside the block."""
    global _OPENED
    _OPENED = []
    opened: list[str] = []
    try:
        yield opened
    finally:
        opened.extend(p for p in _OPENED if p.lower().endswith(suffix))
        _OPENED = None


@pytest.fixture(scope="session")
def sample_plate(tmp_path_factory) -> Path:
    """A 'test'-preset synthetic RxRx19a screen (4 plates, 100 sites, 64 px); do not modify."""
    return write_sample_plate(tmp_path_factory.mktemp("sample") / "rxrx19a", preset="test", seed=0)


@pytest.fixture
def plate_copy(sample_plate, tmp_path) -> Path:
    """A private copy of the sample plate that a test may damage."""
    return Path(shutil.copytree(sample_plate, tmp_path / "plate"))


@pytest.fixture
def count_opens():
    """``with count_opens() as opened:`` collects the .png files opened inside the block."""
    return _count_opens
