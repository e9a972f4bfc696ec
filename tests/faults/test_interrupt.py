"""Ctrl-C and SIGTERM (what a batch scheduler sends before it kills a job) stop a ``gandl`` command in one
line, with an exit status of 128 + the signal, and keep what it did: training stops after its step and
writes a checkpoint; an embedding keeps its finished batches and the same command goes on from them."""

from __future__ import annotations

import signal
import subprocess
import sys

import pandas as pd
import pytest

from fault_helpers import EMBEDDING_TESTS, TINY_TRAIN, child_env, gandl_in_child
from napari_gandl.embedding import embed_plate
from napari_gandl.gan import load_checkpoint
from test_outputs import wait_for


def _signalled(proc: subprocess.Popen, signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode()


def _logged_steps(run) -> int:
    losses = run / "losses.csv"
    return max(0, len(losses.read_text().splitlines()) - 1) if losses.exists() else 0


@pytest.mark.parametrize("signum, name", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_signal_stops_training_after_its_step_with_a_checkpoint(sample_plate, tmp_path, signum, name):
    run = tmp_path / "run"
    proc = subprocess.Popen(  # no checkpoint is due before the signal
        [sys.executable, "-m", "napari_gandl.cli", "train", str(sample_plate), "--out", str(run), "--kimg", "40",
         "--snapshot-kimg", "1000", *TINY_TRAIN], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    wait_for(lambda: _logged_steps(run) >= 3, proc)
    code, err = _signalled(proc, signum)
    assert code == 128 + signum, err[-2000:]
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if line.startswith("gandl train:")]
    assert said[0].startswith(f"gandl train: {name}: stopping after this step, with a checkpoint")
    assert said[-1].startswith(f"gandl train: stopped by {name} at ")
    assert said[-1].endswith(f" kimg, checkpoint written in {run}; add --resume to the same command to go on")
    ckpt = load_checkpoint(run)  # integrity checked, as every checkpoint is before use
    logged = pd.read_csv(run / "losses.csv")
    assert int(ckpt["cur_nimg"]) == round(1000 * logged["kimg"].iloc[-1]) >= 24  # every step logged is in it
    assert not (run / "run-2").exists()  # the second run was not started


def test_sigterm_during_gandl_embed_keeps_its_batches_and_the_same_command_finishes_it(sample_plate, tmp_path,
                                                                                      gandl, monkeypatch):
    monkeypatch.syspath_prepend(str(EMBEDDING_TESTS))
    import hanging_method

    out = tmp_path / "emb.parquet"
    parts = tmp_path / ".emb.parquet.parts"
    args = ["embed", sample_plate, "--method", "test-hanging-mean", "--out", out, "--batch", "4"]
    proc = gandl_in_child(*args, GANDL_TEST_HANG_AFTER="5")  # hangs in its 6th batch
    wait_for(lambda: len(list(parts.glob("*.parquet"))) == 5, proc)
    code, err = _signalled(proc, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("gandl embed: interrupted (SIGTERM): the finished batches are kept; "
                                            "the same command goes on from them")
    assert len(list(parts.glob("*.parquet"))) == 5 and not out.exists()
    assert not list(tmp_path.glob(".emb.parquet.*.tmp"))  # the batch it was in left nothing half-written

    hanging_method.HangingMean.calls = 0
    rc, err = gandl(*args)
    assert rc == 0, err
    assert hanging_method.HangingMean.calls == 25 - 5  # only the rest was embedded
    pd.testing.assert_frame_equal(pd.read_parquet(out), embed_plate(sample_plate, "test-hanging-mean"),
                                  check_dtype=False)
