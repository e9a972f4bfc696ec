"""What the fault probes share: the ``gandl`` command in this process or in another, its one-line
errors, and ways to damage a copy of the test plate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from napari_gandl.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")
EMBEDDING_TESTS = Path(__file__).resolve().parents[1] / "embedding"  # hanging_method.py

# Tiny networks: a run trains in seconds on 2 cores.
TINY_TRAIN = ["--resolution", "32", "--batch", "8", "--channel-base", "256", "--channel-max", "32",
              "--d-channel-base", "256", "--d-channel-max", "32", "--device", "cpu", "--threads", "1"]


class Gandl:
    """``gandl ARGS`` in this process: ``(exit code, standard error)``."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *args) -> tuple[int, str]:
        self.capsys.readouterr()
        rc = main([str(a) for a in args])
        return rc, self.capsys.readouterr().err


def one_line_error(err: str, command: str) -> str:
    """The message of the error line ``gandl COMMAND: error: ...`` that ends ``err``, checked to be
    its only error line and to follow no traceback."""
    assert "Traceback" not in err, err[-3000:]
    assert sum("error:" in line for line in err.splitlines()) == 1, err[-3000:]
    last = err.rstrip().splitlines()[-1]
    prefix = f"gandl {command}: error: "
    assert last.startswith(prefix), err[-3000:]
    return last[len(prefix):]


def child_env(**extra) -> dict:
    """Environment of a child process importing this checkout (and the embedding tests' methods)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([SRC, str(EMBEDDING_TESTS), env.get("PYTHONPATH", "")])
    return env


def gandl_in_child(*args, **extra_env) -> subprocess.Popen:
    """``gandl ARGS`` started in another process (standard error piped), which also knows the
    embedding tests' ``test-hanging-mean`` method."""
    driver = ("import sys, hanging_method; from napari_gandl.cli import main; "
              f"sys.exit(main({[str(a) for a in args]!r}))")
    return subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=child_env(**extra_env))


def tile_path(plate_root: Path, row, channel: int) -> Path:
    """The PNG of one stain (1-based ``channel``) of a site-table ``row``."""
    return (plate_root / "images" / row.experiment / f"Plate{row.plate}"
            / f"{row.well}_s{row.site}_w{channel}.png")


def to_16_bit(path: Path) -> None:
    """Rewrite an 8-bit PNG tile as 16-bit with the same brightness (values x 257)."""
    pixels = np.asarray(Image.open(path)).astype(np.uint16) * 257
    Image.fromarray(pixels).save(path)
