"""`gandl view`: a demo folder opens in napari with the embedding attached and the docks analysing it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from napari_gandl._view import ANALYSES, DOCKS, find_inputs, open_view
from napari_gandl._viewer import site_table
from napari_gandl.plate import open_plate


@pytest.fixture
def demo_folder(sample_plate, tmp_path):
    """What `gandl demo` leaves: plate/ and embeddings.parquet (random features here)."""
    shutil.copytree(sample_plate, tmp_path / "plate")
    sites = open_plate(tmp_path / "plate").sites
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(len(sites), 8)).astype(np.float32), columns=[f"f{i:03d}" for i in range(8)])
    table.insert(0, "site_id", sites["site_id"].to_numpy())
    table.to_parquet(tmp_path / "embeddings.parquet")
    return tmp_path


def test_find_inputs(demo_folder, sample_plate, tmp_path):
    inputs = find_inputs(demo_folder)
    assert inputs.plate == demo_folder / "plate" and inputs.embeddings == demo_folder / "embeddings.parquet"
    plain = find_inputs(sample_plate)
    assert plain.plate == sample_plate and plain.embeddings is None
    with pytest.raises(FileNotFoundError, match="no such folder"):
        find_inputs(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a plate folder"):
        find_inputs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such embedding table"):
        find_inputs(sample_plate, embeddings=tmp_path / "missing.parquet")


def test_view_attaches_the_embedding_and_runs_the_docks(make_napari_viewer, demo_folder, qtbot):
    viewer = make_napari_viewer()
    docks = open_view(viewer, find_inputs(demo_folder))
    assert set(docks) == set(DOCKS)
    table = site_table(viewer)
    qtbot.waitUntil(lambda: len(table.embedding_columns) == 8, timeout=30000)
    qtbot.waitUntil(lambda: not any(docks[name].busy for name in ANALYSES), timeout=60000)
    assert docks["Similar sites"].record is not None and docks["Perturbation-axis plot"].record is not None
    assert docks["Plate map"].colouring is not None


def test_cli_view_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "napari_gandl.cli", "view", str(tmp_path / "nowhere")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "nowhere: no such folder" in result.stderr
    assert "Traceback" not in result.stderr
