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
