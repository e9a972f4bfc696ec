"""torchrun DDP (gloo, 2 processes) and dask.distributed embedding."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan_helpers import subprocess_env

from napari_gandl.embedding import embed_plate, feature_columns
from napari_gandl.gan import load_checkpoint


def test_ddp_two_gloo_processes_stay_in_sync(gan_plate, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(worker), str(gan_plate), str(tmp_path / "run"), str(report)]
    res = subprocess.run(cmd, env=subprocess_env(), capture_output=True, timeout=240)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    r0, r1 = (json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["batch_per_rank"] == 8
    assert r0["nimg"] == r1["nimg"] == 48  # global batch 16 x 3 steps
    for net in ("G", "D", "G_ema"):
        assert r0[net].keys() == r1[net].keys()
        np.testing.assert_allclose(list(r0[net].values()), list(r1[net].values()),
                                   rtol=1e-6, atol=1e-6, err_msg=net)
    assert r0["data"] != r1["data"]  # each rank draws its own crops
    ck = load_checkpoint(tmp_path / "run")
    assert ck["cur_nimg"] == 48
    for k, v in r0["D"].items():  # rank 0 saved its live weights
        assert float(ck["D"][k].double().sum()) == pytest.approx(v, rel=1e-6, abs=1e-6)


def test_ctrl_c_stops_every_torchrun_process_at_the_same_step_with_a_checkpoint(gan_plate, tmp_path):
    import os
    import signal
    import time

    import pandas as pd

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "napari_gandl.cli", "train", str(gan_plate), "--out", str(run), "--kimg", "40", "--runs", "1",
           "--resolution", "32", "--batch", "8", "--channel-base", "256", "--channel-max", "32",
           "--d-channel-base", "256", "--d-channel-max", "32", "--device", "cpu", "--snapshot-kimg", "1000"]
    # its own process group, as a terminal's foreground job: Ctrl-C reaches torchrun and both processes
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        losses = run / "losses.csv"
        while not (losses.exists() and len(losses.read_text().splitlines()) > 3):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "no training step within 180 s"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # a process left behind in a collective would hang here
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = err.decode()
    assert err.count("gandl train: Ctrl-C: stopping after this step, with a checkpoint\n") == 1, err[-3000:]
    assert "gandl train: stopped by Ctrl-C at " in err
    logged = pd.read_csv(run / "losses.csv")
    assert int(load_checkpoint(run)["cur_nimg"]) == round(1000 * logged["kimg"].iloc[-1]) >= 24


def test_dask_local_cluster_embedding_equals_local(gan_plate, tiny_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = embed_plate(gan_plate, "gandl", source=tiny_run, batch_size=16, device="cpu")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None, env={"PYTHONPATH": subprocess_env()["PYTHONPATH"]}) as cluster:
        out = embed_plate(gan_plate, "gandl", source=tiny_run, out_path=tmp_path / "emb.parquet", batch_size=9,
                          device="cpu", scheduler=cluster.scheduler_address)
    import pandas as pd

    remote = pd.read_parquet(out)
    assert list(remote["site_id"]) == list(local["site_id"])
    cols = feature_columns()
    np.testing.assert_allclose(remote[cols].to_numpy(), local[cols].to_numpy(), rtol=1e-5, atol=1e-6)
