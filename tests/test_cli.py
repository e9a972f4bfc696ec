"""The `gandl` command: the demo end to end, and clear errors for bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd

from napari_gandl.cli import main


def test_demo_runs_the_whole_pipeline(sample_plate, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(sample_plate), "--out", str(out), "--minutes", "0.05", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "$ gandl train" in printed and "$ gandl embed" in printed and "$ gandl analyse" in printed
    assert (out / "run" / "checkpoint.pt").is_file() and (out / "run" / "run-2" / "checkpoint.pt").is_file()
    table = pd.read_parquet(out / "embeddings.parquet")
    assert len(table) == 100 and "f1023" in table and "cell_type" in table  # the two runs read together
    report = json.loads((out / "report" / "report.json").read_text())
    assert "C+ vs C- (merged)" in " ".join(report["tasks"])
    assert (out / "report" / "report.html").is_file()
    assert f"gandl view {out}" in printed  # the demo ends by naming the command that opens it in napari

    # a second run reuses the trained model instead of training again
    assert main(["demo", str(sample_plate), "--out", str(out), "--device", "cpu"]) == 0
    assert "Using the model already trained" in capsys.readouterr().out
    # ... and finishes one that was interrupted between its two runs
    shutil.rmtree(out / "run" / "run-2")
    assert main(["demo", str(sample_plate), "--out", str(out), "--minutes", "0.05", "--device", "cpu"]) == 0
    assert "--resume" in capsys.readouterr().out and (out / "run" / "run-2" / "checkpoint.pt").is_file()


def test_bad_plate_is_a_clear_error_not_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "napari_gandl.cli", "demo", str(tmp_path / "nowhere")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "nowhere: no such folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "napari_gandl.cli", "--help"], capture_output=True, text=True)
    for command in ("demo", "train", "embed", "analyse"):
        assert command in result.stdout
