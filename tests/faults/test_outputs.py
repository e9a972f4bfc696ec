"""Faults around outputs: two writers, a killed writer, a reused report folder, an output of the
wrong kind, a full disk."""

from __future__ import annotations

import csv
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from fault_helpers import EMBEDDING_TESTS, TINY_TRAIN, child_env, gandl_in_child, one_line_error
from napari_gandl.analysis.report import OUTPUTS
from napari_gandl.embedding import embed_plate


def wait_for(ready, proc, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail("the process ended early: " + proc.stderr.read().decode()[-2000:])
        if time.time() > deadline:
            pytest.fail(f"not ready within {timeout:.0f} s")
        time.sleep(0.05)


def test_second_embed_into_the_same_output_is_refused_and_a_killed_ones_lock_is_taken_over(
        sample_plate, tmp_path, gandl, monkeypatch):
    monkeypatch.syspath_prepend(str(EMBEDDING_TESTS))
    import hanging_method  # noqa: F401  (registers test-hanging-mean in this process)

    out = tmp_path / "emb.parquet"
    parts = tmp_path / ".emb.parquet.parts"
    args = ["embed", sample_plate, "--method", "test-hanging-mean", "--out", out, "--batch", "4"]
    first = gandl_in_child(*args, GANDL_TEST_HANG_AFTER="3")  # holds the lock, hangs in its 4th batch
    try:
        wait_for(lambda: len(list(parts.glob("*.parquet"))) == 3, first)
        rc, err = gandl(*args)
        assert rc == 2
        message = one_line_error(err, "embed")
        assert re.fullmatch(rf"{re.escape(str(out))} is being written by process {first.pid} on "
                            rf"{re.escape(socket.gethostname())} \(.+\), since [-0-9: ]+; wait for "
                            r"it to end or choose another output", message), message
        assert not out.exists() and len(list(parts.glob("*.parquet"))) == 3  # nothing of the first touched
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the killed process's lock is gone with it: the same command resumes, computing only the rest
    rc, err = gandl(*args)
    assert rc == 0, err
    assert "resuming: 12 of 100 sites already embedded" in err
    pd.testing.assert_frame_equal(pd.read_parquet(out), embed_plate(sample_plate, "test-hanging-mean"),
                                  check_dtype=False)
    assert [p.name for p in tmp_path.glob(".emb.parquet.*")] == [".emb.parquet.lock"]


def test_second_train_into_the_same_run_folder_is_refused(sample_plate, tmp_path, gandl):
    run = tmp_path / "run"
    args = ["train", sample_plate, "--out", run, *TINY_TRAIN]
    first = gandl_in_child(*args, "--kimg", "1000")  # trains until killed, no checkpoint for minutes
    try:
        wait_for(lambda: (run / "losses.csv").exists(), first)
        rc, err = gandl(*args, "--kimg", "1000")
        assert rc == 2
        message = one_line_error(err, "train")
        assert message.startswith(f"{run} is being written by process {first.pid} on {socket.gethostname()} (")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    holder = json.loads((run / ".gandl.lock.holder").read_text())  # the killed holder's record ...
    assert holder["pid"] == first.pid and not (run / "checkpoint.pt").exists()
    rc, err = gandl(*args, "--kimg", "0.032")  # ... does not block a new run (two of 16 images), and is removed
    assert rc == 0, err
    assert not (run / ".gandl.lock.holder").exists()
    with open(run / "losses.csv", newline="") as fh:  # and the killed run's log is not continued
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [1, 2]


def test_analyse_into_a_used_folder_leaves_no_file_of_the_earlier_analysis(handcrafted, tmp_path, gandl):
    report = tmp_path / "report"
    rc, err = gandl("analyse", handcrafted, "--out", report, "--quiet", "--splits", "2")
    assert rc == 0, err
    written = {p.name for p in report.iterdir()} - {".gandl.lock"}
    assert written == set(OUTPUTS)  # every section ran, and OUTPUTS names every file analyse writes
    # the same sites without disease_condition: no tasks, no E2 space, no dose-response, no mAP
    fewer = tmp_path / "no_condition.parquet"
    pd.read_parquet(handcrafted).drop(columns=["disease_condition"]).to_parquet(fewer)
    (report / "notes.txt").write_text("mine")  # not a file analyse writes: kept
    rc, err = gandl("analyse", fewer, "--out", report, "--quiet", "--splits", "2")
    assert rc == 0, err
    result = json.loads((report / "report.json").read_text())
    assert {"E2 space", "dose-response", "copairs mAP"} <= set(result["skipped"])
    left = {p.name for p in report.iterdir()} - {".gandl.lock", "notes.txt"}
    assert left == set(result["files"].values())  # only what this report lists
    assert not {"dose_response.csv", "e2.png", "map_activity.csv", "map_consistency.csv"} & left
    assert (report / "notes.txt").read_text() == "mine"


def test_out_of_the_wrong_kind_is_one_line_before_any_work(sample_plate, handcrafted, tmp_path, gandl):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    rc, err = gandl("embed", sample_plate, "--method", "handcrafted", "--out", folder)
    assert rc == 2
    assert one_line_error(err, "embed") == f"{folder} is a folder; the output here is a file, give a file path"
    assert list(folder.iterdir()) == [] and "/100" not in err  # refused before the first of 100 sites
    for command in (["analyse", handcrafted], ["train", sample_plate]):
        rc, err = gandl(*command, "--out", handcrafted)
        assert rc == 2
        assert one_line_error(err, command[0]) == (f"{handcrafted} is a file; the output here is a folder, "
                                                   "give a folder path")


def _tmpfs_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_tmpfs = pytest.mark.skipif(not _tmpfs_works(), reason="a small tmpfs needs unshare -Urm (user namespaces)")


def gandl_on_small_disk(size: str, disk, *args) -> subprocess.CompletedProcess:
    """``gandl ARGS`` with the folder ``disk`` a fresh tmpfs of ``size`` (in its own mount namespace)."""
    disk.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    return subprocess.run(["unshare", "-Urm", "sh", "-c", script, "sh", size, str(disk), sys.executable, "-m",
                           "napari_gandl.cli", *map(str, args)], env=child_env(), capture_output=True,
                          text=True, timeout=600)


@needs_tmpfs
def test_disk_full_while_embedding_is_named(sample_plate, tmp_path):
    disk = tmp_path / "disk"
    done = gandl_on_small_disk("100k", disk, "embed", sample_plate, "--method", "handcrafted",
                               "--out", disk / "e.parquet", "--batch", "16")
    assert done.returncode == 2
    message = one_line_error(done.stderr, "embed")
    assert re.fullmatch(rf"disk full while writing {re.escape(str(disk))}/\.e\.parquet\.parts/\d+\.parquet",
                        message), message


@needs_tmpfs
def test_disk_full_while_training_is_named(sample_plate, tmp_path):
    disk = tmp_path / "disk"
    done = gandl_on_small_disk("1m", disk, "train", sample_plate, "--out", disk / "run", *TINY_TRAIN,
                               "--kimg", "0.016")  # its 68 MB checkpoint does not fit
    assert done.returncode == 2
    assert one_line_error(done.stderr, "train") == f"disk full while writing {disk / 'run' / 'checkpoint.pt'}"
