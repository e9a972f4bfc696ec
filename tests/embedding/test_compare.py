"""`gandl compare` on the sample plate with a tiny training budget."""

from __future__ import annotations

import json
import re

import pytest

from napari_gandl.cli import main
from napari_gandl.analysis.compare import default_methods, run_method
from napari_gandl.plate import open_plate

METHODS = "gandl,gandl-untrained,handcrafted,convae"


@pytest.fixture(scope="module")
def compared(sample_plate, tmp_path_factory):
    from napari_gandl.synthetic import write_rxrx1_sample

    base = tmp_path_factory.mktemp("compare")
    rxrx1 = write_rxrx1_sample(base / "rxrx1")  # six stains, four cell types: zero-shot by stain name
    out = base / "cmp"
    args = ["compare", str(sample_plate), "--out", str(out), "--methods", METHODS, "--minutes", "0.02",
            "--splits", "3", "--device", "cpu", "--threads", "1", "--quiet", "--zero-shot", str(rxrx1)]
    assert main(args) == 0
    return out, args


def test_compare_writes_table_1(compared, capsys):
    out, _ = compared
    report = json.loads((out / "compare.json").read_text())
    assert list(report["methods"]) == METHODS.split(",")
    well, lopo = report["results"]["tasks"], report["results"]["tasks_lopo"]
    for task in ("C+ vs C- (merged)", "C+ vs C- (HRCE)", "C+ vs C- (VERO)", "HRCE vs VERO",
                 "zero-shot cell type"):
        assert set(well[task]) == set(METHODS.split(","))
        for cell in well[task].values():
            assert 0.0 <= cell["mean"] <= 1.0 and cell["sd"] >= 0.0 and cell["n"] == 3
    assert set(lopo["C+ vs C- (merged)"]) == set(METHODS.split(","))
    assert "zero-shot cell type" not in lopo  # one plate per RxRx1 cell type: not scored, and said so
    assert any("zero-shot cell type (leave-one-plate-out)" in k for k in report["skipped"])
    for name in ("gandl", "convae"):
        trained = report["methods"][name]["trained"]
        assert trained["elapsed_s"] >= 0.02 * 60 and trained["kimg"] > 0
    for name, status in report["methods"].items():
        assert status["embedded"]["sites"] == 100 and status["embedded"]["sites_per_s"] > 0
        assert status["zero_shot"]["sites"] == 48
    md = (out / "compare.md").read_text()
    assert "| task | gandl | gandl-untrained | handcrafted | convae |" in md
    assert report["methods"]["gandl-untrained"]["trained"]["kimg"] == 0.0
    assert "leave-one-plate-out" in md and "| C+ vs C- (merged) |" in md
    assert "<table>" in (out / "compare.html").read_text()
    for name in METHODS.split(","):  # copairs mAP of each embedding
        assert 0.0 <= report["map"][name]["activity"]["mean_mAP"] <= 1.0
        assert (out / name / "map_activity.csv").is_file()
    assert "| phenotypic activity vs C- |" in md


def test_rerun_does_not_redo_finished_methods(compared):
    out, args = compared
    done = list(out.glob("*/*.parquet")) + list(out.glob("*/run/checkpoint.pt"))
    assert len(done) == 4 * 2 + 3  # embeddings + zero-shot embeddings, three trained runs
    stamps = {p: p.stat().st_mtime_ns for p in done}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_interrupted_training_is_resumed(sample_plate, tmp_path):
    plate = open_plate(sample_plate)
    folder = tmp_path / "convae"
    first = run_method("convae", plate, folder, minutes=0.01, device="cpu")
    status = json.loads((folder / "status.json").read_text())
    del status["trained"], status["embedded"]  # as if killed after a checkpoint was written
    (folder / "status.json").write_text(json.dumps(status))
    longer = first["trained"]["elapsed_s"] / 60 + 0.01  # at least one more step
    second = run_method("convae", plate, folder, minutes=longer, device="cpu")
    assert second["trained"]["resumed"] and second["trained"]["kimg"] > first["trained"]["kimg"]
    assert second["trained"]["elapsed_s"] >= longer * 60


def test_default_methods():
    assert {"gandl", "handcrafted", "convae", "simclr", "dino", "mae"} <= set(default_methods())
    assert not {"densenet-collapsed", "densenet-concat"} & set(default_methods())
    assert {"densenet-collapsed", "densenet-concat"} <= set(default_methods(with_weights=True))


def test_without_threads_the_progress_says_the_governed_threads(sample_plate, tmp_path, capsys, monkeypatch,
                                                                torch_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["compare", str(sample_plate), "--out", str(tmp_path / "o"), "--methods", "handcrafted",
                 "--splits", "2", "--device", "cpu"]) == 0
    assert re.search(r"handcrafted embed.* \d threads?", capsys.readouterr().err)


@pytest.mark.parametrize("methods,message", [
    ("handcrafted,nope", "unknown embedding method 'nope'"),
    ("densenet-concat", "needs a weights file (--weights)"),
])
def test_bad_methods_are_named(sample_plate, tmp_path, capsys, methods, message):
    assert main(["compare", str(sample_plate), "--out", str(tmp_path / "o"), "--methods", methods]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing was started
