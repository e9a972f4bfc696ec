"""Shared fixtures: a synthetic plate written once per session, and a file-open counter."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

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


@pytest.fixture
def torch_threads():
    """torch's thread count as it was before the test (a governor may change it)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests and fixtures (``pytestmark = pytest.mark.usefixtures(...)``):
    two OpenMP threads on a shared 2-core box spin against each other (5-10x slower steps)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def _kill9_when(argv: list[str], ready, timeout: float = 120.0, env: dict | None = None):
    """Run ``argv`` (with this checkout's ``src`` on the path), ``kill -9`` it once
    ``ready()`` is true, check that it was killed (not finished or crashed) and
    return the finished ``Popen``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + timeout
        while not ready():
            if proc.poll() is not None:
                pytest.fail("the process ended before it was killed: " + proc.stderr.read().decode()[-2000:])
            if time.time() > deadline:
                pytest.fail(f"not ready to be killed within {timeout:.0f} s")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    return proc


@pytest.fixture
def kill9_when():
    """``kill9_when(argv, ready)``: start ``argv``, ``kill -9`` it once ``ready()`` is true."""
    return _kill9_when
