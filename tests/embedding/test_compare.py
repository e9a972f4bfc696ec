"""`gandl compare` on the sample plate with a tiny training budget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from napari_gandl.cli import main
from napari_gandl.analysis.compare import default_methods, run_method
from napari_gandl.embedding.pipeline import embed_plate, read_embedding_table
from napari_gandl.embedding.registry import load_embedder
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
    for name, runs in (("gandl", 2), ("convae", 1)):  # GAN-DL's budget split into two runs, as gandl train's
        trained = report["methods"][name]["trained"]
        assert [t["seed"] for t in trained] == list(range(runs)) and report["methods"][name]["runs"] == runs
        assert all(t["elapsed_s"] >= 0.02 / runs * 60 and t["kimg"] > 0 for t in trained)
    for name, status in report["methods"].items():
        assert status["embedded"]["sites"] == 100 and status["embedded"]["sites_per_s"] > 0
        assert status["zero_shot"]["sites"] == 48
    md = (out / "compare.md").read_text()
    assert "| task | gandl | gandl-untrained | handcrafted | convae |" in md
    assert [t["kimg"] for t in report["methods"]["gandl-untrained"]["trained"]] == [0.0, 0.0]
    assert ("0.02 min per trainable method, shared by its runs (gandl 2 runs, at seeds 0 to 1, read together; "
            "gandl-untrained 2 runs, at seeds 0 to 1, read together)") in md
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
    [first] = first["trained"]
    longer = first["elapsed_s"] / 60 + 0.01  # at least one more step
    [second] = run_method("convae", plate, folder, minutes=longer, device="cpu")["trained"]
    assert second["resumed"] and second["kimg"] > first["kimg"]
    assert second["elapsed_s"] >= longer * 60


def features(table) -> np.ndarray:
    return table[[c for c in table.columns if re.fullmatch(r"f\d+", c)]].to_numpy()


def test_runs_are_trained_at_consecutive_seeds_and_read_together(sample_plate, tmp_path, capsys):
    """``gandl compare --runs 2``: each trainable method twice (seeds 0 and 1), its embedding both runs
    side by side; GAN options reach GAN-DL and its untrained twin only. Asking for one run again reads
    the first run alone; other GAN options on the same output are refused."""
    out = tmp_path / "o"
    args = ["compare", str(sample_plate), "--out", str(out), "--methods", "gandl,gandl-untrained,handcrafted",
            "--minutes", "0.01", "--splits", "2", "--device", "cpu", "--threads", "1", "--quiet",
            "--resolution", "32"]
    assert main(args + ["--runs", "2"]) == 0
    report = json.loads((out / "compare.json").read_text())
    one_run = {}  # method -> features of one run
    for name in ("gandl", "gandl-untrained"):
        status = report["methods"][name]
        assert [t["seed"] for t in status["trained"]] == [0, 1]
        assert [Path(r).name for r in status["read"]] == ["run", "run-2"]
        for run in ("run", "run-2"):
            assert json.loads((out / name / run / "config.json").read_text())["resolution"] == 32
        one = read_embedding_table(out / name / "embeddings.parquet")
        alone = [embed_plate(sample_plate, name, source=out / name / run, device="cpu")
                 for run in ("run", "run-2")]
        both = np.hstack([features(a) for a in alone])
        one_run[name] = features(alone[0]).shape[1]
        assert status["dim"] == both.shape[1] == 2 * one_run[name]
        np.testing.assert_allclose(features(one), both, rtol=1e-5, atol=1e-6)
    assert report["methods"]["handcrafted"]["read"] == ["None"]
    md = (out / "compare.md").read_text()
    shared = ("shared by its runs (gandl 2 runs, at seeds 0 to 1, read together; gandl-untrained 2 runs, at seeds "
              "0 to 1, read together)")
    assert shared in md and "GAN-DL's options: resolution 32." in md
    assert shared in (out / "compare.html").read_text()
    assert re.search(r"\| gandl \| \d+ \| [\d.]+ min \([\d.]+ kimg\) \+ [\d.]+ min", md)
    assert re.search(r"\| gandl-untrained \| \d+ \| untrained, seeds 0, 1 \|", md)

    assert main(args + ["--runs", "1"]) == 0  # the first run alone: embedded again, nothing trained
    report = json.loads((out / "compare.json").read_text())
    gandl = report["methods"]["gandl"]
    assert gandl["dim"] == one_run["gandl"] and len(gandl["trained"]) == 2
    capsys.readouterr()
    assert main(args[:-2] + ["--info", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gandl compare: error: ") and f"{out / 'gandl'}: trained with other GAN options" in err


def test_an_interrupted_second_run_is_resumed_and_then_read_with_the_first(sample_plate, tmp_path):
    plate = open_plate(sample_plate)
    folder = tmp_path / "convae"
    first = run_method("convae", plate, folder, minutes=0.01, device="cpu", runs=2)["trained"]
    status = json.loads((folder / "status.json").read_text())
    status["trained"] = status["trained"][:1]  # as if killed during the second run, after a checkpoint
    del status["embedded"]
    (folder / "status.json").write_text(json.dumps(status))
    stamp = (folder / "run" / "checkpoint.pt").stat().st_mtime_ns
    longer = 2 * (first[1]["elapsed_s"] / 60 + 0.01)  # the budget of both runs: each gets half
    again = run_method("convae", plate, folder, minutes=longer, device="cpu", runs=2)
    assert (folder / "run" / "checkpoint.pt").stat().st_mtime_ns == stamp  # the finished run is left alone
    assert again["trained"][0] == first[0]
    assert again["trained"][1]["resumed"] and again["trained"][1]["kimg"] > first[1]["kimg"]
    one_run = load_embedder("convae", folder / "run", plate, "cpu").dim
    assert again["dim"] == 2 * one_run == features(read_embedding_table(folder / "embeddings.parquet")).shape[1]
    assert [Path(r).name for r in again["read"]] == ["run", "run-2"]


def test_a_stop_request_keeps_what_was_finished_and_the_same_call_goes_on_from_it(sample_plate, tmp_path):
    """What ``gandl compare`` does on Ctrl-C or SIGTERM: training stops after its step with a checkpoint,
    embedding after its batch; nothing unfinished is recorded as done and no comparison is written."""
    from napari_gandl.analysis.compare import compare
    from napari_gandl.comparators.tiles import load_tile_checkpoint

    out = tmp_path / "cmp"
    run, parts = out / "convae" / "run", out / "convae" / ".embeddings.parquet.parts"
    # 12 s of training: long enough that the stop after step 3 comes first even on a loaded machine (at 3 s,
    # the budget ran out first there), and the call that goes on trains only the rest of it
    kw = dict(methods=["convae", "handcrafted"], minutes=0.2, device="cpu", n_splits=2)

    def steps() -> int:
        return len((run / "losses.csv").read_text().splitlines()) - 1 if (run / "losses.csv").exists() else 0

    assert compare(sample_plate, out, should_stop=lambda: steps() >= 3, **kw) is None  # during training
    assert not (out / "convae" / "status.json").exists() and not (out / "compare.json").exists()  # nothing done
    assert load_tile_checkpoint("convae", run)["step"] == 3  # a checkpoint at the step it stopped after

    def batches() -> int:
        return len(list(parts.glob("*.parquet")))

    assert compare(sample_plate, out, should_stop=lambda: batches() >= 1, **kw) is None  # during embedding
    status = json.loads((out / "convae" / "status.json").read_text())
    assert status["trained"][0]["resumed"] and "embedded" not in status and batches() == 1

    report = compare(sample_plate, out, **kw)  # no stop: goes on from there and writes the comparison
    assert set(report["methods"]) == {"convae", "handcrafted"} and (out / "compare.json").exists()
    assert report["methods"]["convae"]["embedded"]["sites"] == 100 - 32  # only what the first call left


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
    ("handcrafted --runs 0", "runs must be at least 1, not 0"),
    ("handcrafted,convae --info 10", "GAN-DL's options (info 10) go to gandl, gandl-untrained, and "
                                     "none of them is among the methods"),
])
def test_bad_methods_or_runs_are_named_before_any_work(sample_plate, tmp_path, capsys, methods, message):
    assert main(["compare", str(sample_plate), "--out", str(tmp_path / "o"), "--methods", *methods.split()]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing was started
