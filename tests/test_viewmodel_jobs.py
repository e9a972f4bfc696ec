"""The docks' worker jobs, driven without a viewer: training, embedding, similar-site search.

Each job is a generator the dock runs in a ``thread_worker``; here it is
iterated by hand, stopped through its event or cancelled by closing it, on the
session's synthetic plate with tiny networks.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from napari_gandl import columns as cols
from napari_gandl.plate import open_plate
from napari_gandl.viewmodels import SiteTable

TINY = dict(batch=8, network=dict(channel_base=256, channel_max=32), data=dict(scale=1), snapshot_kimg=1000.0,
            metrics_samples=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def table(sample_plate) -> SiteTable:
    return SiteTable(open_plate(sample_plate))


def run_to_end(job):
    """Iterate a job to its end: ``(yielded, returned)``."""
    yielded = []
    while True:
        try:
            yielded.append(next(job))
        except StopIteration as end:
            return yielded, end.value


# --------------------------------------------------------------------------- training


def test_gan_training_job_setup_close_stop_and_resume(sample_plate, tmp_path):
    from napari_gandl.gan import load_checkpoint, make_config
    from napari_gandl.viewmodels import training

    run = tmp_path / "run"
    config = make_config("quick", resolution=32, minutes=30.0, device="cpu", **TINY)
    stop, done = threading.Event(), threading.Event()
    job = training.train_job(str(sample_plate), run, config, False, stop, done, samples_every_s=0.0)
    setup = next(job)
    assert setup["setup"] and [s.label for s in setup["stains"]][0] == "w1 Hoechst (nuclei)"
    assert setup["shape"] == (5, 4 * 34 - 2, 4 * 34 - 2) and setup["history"] == []
    rows = [next(job) for _ in range(3)]
    assert [r["nimg"] for r in rows] == [8, 16, 24] and not done.is_set()
    assert rows[0]["samples"].shape == setup["shape"]        # the 16 samples as one grid per stain
    job.close()                                              # cancel: the checkpoint is still written
    assert done.is_set() and load_checkpoint(run)["cur_nimg"] == 24

    stop, done = threading.Event(), threading.Event()
    job = training.train_job(sample_plate, run, config, True, stop, done, samples_every_s=3600.0)
    setup = next(job)
    assert [h[0] for h in setup["history"]] == [0.008, 0.016, 0.024]
    first = next(job)
    assert first["nimg"] == 32
    stop.set()                                               # Stop: one more step at most, then a done row
    rest, _ = run_to_end(job)
    assert rest[-1]["done"] and done.is_set()
    assert load_checkpoint(run)["cur_nimg"] == rest[-1]["nimg"] >= 32


def test_gan_training_job_splits_its_budget_into_runs_read_together(sample_plate, tmp_path):
    from napari_gandl.embedding.registry import load_embedder
    from napari_gandl.gan import load_checkpoint, make_config
    from napari_gandl.viewmodels import training

    run = tmp_path / "run"
    config = make_config("quick", resolution=32, kimg=0.032, device="cpu", **TINY)
    job = training.train_job(sample_plate, run, config, False, threading.Event(), threading.Event(),
                             samples_every_s=3600.0, runs=2)
    rows, _ = run_to_end(job)
    steps = [r for r in rows[1:] if "loss_G" in r]
    assert [(r["run"], r["nimg"]) for r in steps] == [(1, 8), (1, 16), (2, 24), (2, 32)]  # images of both runs
    assert [r["run_start_kimg"] for r in steps] == [0.0, 0.0, 0.016, 0.016]  # where the dock marks run 2
    assert [r["done"] for r in rows[1:]].count(True) == 1 and rows[-1]["checkpoint"] == str(run)
    assert [int(load_checkpoint(f)["cur_nimg"]) for f in (run, run / "run-2")] == [16, 16]
    assert load_embedder("gandl", run, sample_plate, "cpu").dim == 2 * load_embedder("gandl", run / "run-2").dim
    # the loss history of a resumed folder: both runs', the second counted on from the first
    assert [h[0] for h in training.run_history(run).losses.itertuples(index=False, name=None)] == [0.008, 0.016, 0.024, 0.032]
    assert training.run_history(run).run_starts == [0.016] and training.run_history(run / "run-2").run_starts == []
    # resuming the finished folder trains nothing and measures neither run again
    logs = [(f / "metrics.csv").read_bytes() for f in (run, run / "run-2")]
    job = training.train_job(sample_plate, run, config, True, threading.Event(), threading.Event(),
                             samples_every_s=3600.0, runs=2)
    again, _ = run_to_end(job)
    assert [r["nimg"] for r in again[1:]] == [16, 32] and not any("kid" in r for r in again[1:])
    assert [(f / "metrics.csv").read_bytes() for f in (run, run / "run-2")] == logs


def test_cpu_training_jobs_give_a_core_to_a_busy_process_beside(sample_plate, tmp_path, monkeypatch):
    """As ``gandl train`` without --threads: the dock's CPU training keeps torch's threads to the cores
    other processes leave free, at most the ones it was given, and each row says them."""
    import subprocess
    import sys
    import time

    import torch

    from napari_gandl.gan import make_config
    from napari_gandl.torch_utils.threads import read_cpu_times
    from napari_gandl.viewmodels import training

    if read_cpu_times() is None:
        pytest.skip("no /proc/stat")
    job = training.method_job("convae", sample_plate, tmp_path / "convae", 30.0, "cpu", False,
                              threading.Event(), threading.Event())
    assert next(job)["threads"] == torch.get_num_threads() <= training.cpu_threads()
    job.close()
    monkeypatch.setattr(training, "GOVERN_EVERY_S", 1.0)
    config = make_config("quick", resolution=32, minutes=30.0, device="cpu", threads=2, **TINY)
    job = training.train_job(sample_plate, tmp_path / "gan", config, False, threading.Event(), threading.Event(),
                             samples_every_s=3600.0)
    next(job)  # setup
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        start, threads = time.monotonic(), []
        while time.monotonic() - start < 2.5:
            threads.append(next(job)["threads"])
    finally:
        burner.kill()
        burner.wait()
        job.close()
    assert max(threads) <= 2 and threads[-1] == 1 == torch.get_num_threads()  # given 2, the burner took one


def test_method_training_job_close_writes_the_checkpoint(sample_plate, tmp_path):
    from napari_gandl.comparators.tiles import load_tile_checkpoint
    from napari_gandl.viewmodels import training

    stop, done = threading.Event(), threading.Event()
    job = training.method_job("convae", sample_plate, tmp_path / "run", 30.0, "cpu", False, stop, done)
    first = next(job)
    assert first["nimg"] == 32 and not first["done"]
    job.close()
    assert done.is_set() and load_tile_checkpoint("convae", tmp_path / "run")["nimg"] == 32


def test_mae_training_job_sends_its_reconstructions_after_a_setup_row(sample_plate, tmp_path):
    from napari_gandl.comparators.tiles import load_tile_checkpoint
    from napari_gandl.viewmodels import training

    assert [training.preview_name(m) for m in ("gandl", "mae", "dino")] == ["GAN samples", "mae reconstructions", ""]
    stop, done = threading.Event(), threading.Event()
    job = training.method_job("mae", sample_plate, tmp_path / "run", 30.0, "cpu", False, stop, done,
                              samples_every_s=0.0)
    setup = next(job)  # before the first preview: the dock builds its layers
    assert setup["setup"] and setup["shape"] == (5, 3 * 66 - 2, 8 * 66 - 2) and setup["data_scale"] == 1
    first = next(job)
    assert first["nimg"] == 32 and first["samples"].shape == setup["shape"]
    stop.set()
    rest, _ = run_to_end(job)
    assert rest[-1]["done"] and rest[-1]["samples"].shape == setup["shape"] and done.is_set()  # its last preview
    assert load_tile_checkpoint("mae", tmp_path / "run")["nimg"] == rest[-1]["nimg"]


# --------------------------------------------------------------------------- embedding


def test_embed_jobs_attach_export_and_load(table, sample_plate, tmp_path):
    from napari_gandl.embedding import embed_plate
    from napari_gandl.viewmodels import embed

    assert embed.stain_map_argument(embed.STAIN_MAPS[0], None) is None
    assert embed.stain_map_argument(embed.STAIN_MAPS[1], None) == "auto"
    with pytest.raises(ValueError, match="choose the stain-map file"):
        embed.stain_map_argument(embed.STAIN_MAPS[2], "")

    progress, (frame, source) = run_to_end(embed.embed_job(table.plate, "handcrafted", None, 40, "cpu"))
    assert progress == [(0, 100), (40, 100), (80, 100), (100, 100)] and source == "handcrafted"
    reference = embed_plate(sample_plate, "handcrafted")
    features = [c for c in reference.columns if c.startswith("f")]
    assert list(frame.columns) == [cols.SITE_ID, *features]
    np.testing.assert_allclose(frame[features].to_numpy(), reference[features].to_numpy(), rtol=1e-5)

    job = embed.embed_job(table.plate, "handcrafted", None, 40, "cpu")
    assert next(job) == (0, 100) and next(job) == (40, 100)
    job.close()                                              # cancelled after one batch
    with pytest.raises(StopIteration):
        next(job)

    assert embed.attach(table, frame, source) == 100
    assert table.embedding_columns == features and table.embedding_source == "handcrafted"
    written = embed.export_job(table, tmp_path / "out" / "emb")
    assert written == tmp_path / "out" / "emb.parquet"
    back = pd.read_parquet(written)
    assert {cols.SITE_ID, cols.WELL, cols.CONDITION, *features} <= set(back.columns) and len(back) == 100

    # a table with rows of other plates: only this plate's rows are attached
    mixed = pd.concat([frame.iloc[:60], frame.iloc[:5].assign(**{cols.SITE_ID: [f"X_{i}" for i in range(5)]})])
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    loaded, name = embed.load_table_job(tmp_path / "mixed.csv", table.frame[cols.SITE_ID])
    assert name == str(tmp_path / "mixed.csv") and len(loaded) == 100  # in the plate's order, a row per site
    np.testing.assert_array_equal(loaded.iloc[:60].to_numpy(), frame[features].iloc[:60].to_numpy())
    assert loaded.iloc[60:].isna().all(axis=None)  # sites the table lacks
    assert embed.attach(table, loaded, name) == 60
    frame.sample(frac=1, random_state=0).to_csv(tmp_path / "shuffled.csv", index=False)
    shuffled, _ = embed.load_table_job(tmp_path / "shuffled.csv", table.frame[cols.SITE_ID])
    np.testing.assert_array_equal(shuffled.to_numpy(), frame[features].to_numpy())  # back in the plate's order
    # a table of another screen: attaching it names the mismatch, the embedding stays
    other = frame.assign(**{cols.SITE_ID: [f"X_{i}" for i in range(len(frame))]})
    other.to_csv(tmp_path / "other.csv", index=False)
    loaded, name = embed.load_table_job(tmp_path / "other.csv", table.frame[cols.SITE_ID])
    with pytest.raises(ValueError, match="none of the 100 site ids belong to this plate"):
        embed.attach(table, loaded, name)
    assert table.embedding_source == str(tmp_path / "mixed.csv")

    with pytest.raises(ValueError, match="no embedding attached yet"):
        embed.export_job(SiteTable(table.plate), tmp_path / "none.parquet")


# --------------------------------------------------------------------------- similar sites


def test_similar_sites_jobs_index_query_and_cancel(table, count_opens):
    from napari_gandl.viewmodels import similar
    from napari_gandl.viewmodels.embedding_choice import SITE_TABLE

    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(len(table), 8)), columns=[f"f{i:03d}" for i in range(8)])
    features.insert(0, cols.SITE_ID, table.frame[cols.SITE_ID].to_numpy())
    features.loc[20:, "f000"] = np.nan                       # only sites 0..19 are embedded
    table.set_columns(features, embedding=True, source="test")
    log = []
    rec = similar.run(table, {"embedding": {"source": SITE_TABLE, "normalisation": "none"}},
                      lambda done, total, text: log.append((done, total, text)))
    index = rec["index"]
    assert len(index) == 20 and log[-1][:2] == (1, 2) and "20 sites" in log[-1][2]

    table.current = 7
    query, what = similar.query_sites(table, index)
    assert list(query) == [7] and what == table.frame[cols.SITE_ID].iloc[7]
    with count_opens() as opened:
        steps, (found, montage) = run_to_end(similar.find_job(index, table, query, what, k=4))
    assert [s[:2] for s in steps] == [(0, 2), (1, 2)]
    assert list(found["site"]) == montage.sites and found["site"].iloc[0] == 7 and len(found) == 4
    assert montage.labels[0].startswith(f"1. {table.frame[cols.WELL].iloc[7]}")
    assert len(opened) == 4 * table.plate.n_channels          # the images of the 4 sites found
    with count_opens() as opened:                              # site 12 and its neighbours: not read yet
        job = similar.find_job(index, table, np.array([12]), "site 12", k=4)
        next(job)
        job.close()                                           # cancelled before reading images
    assert opened == []

    selection = np.zeros(len(table), bool)
    selection[[3, 4, 50]] = True                              # site 50 has no embedding
    table.set_columns({cols.SELECTED: selection})
    query, what = similar.query_sites(table, index, cols.SELECTED)
    assert list(query) == [3, 4] and what == f"2 sites of {cols.SELECTED}"
    table.set_columns({cols.SELECTED: np.zeros(len(table), bool)})
    with pytest.raises(ValueError, match="no site is selected in column 'selected'"):
        similar.query_sites(table, index, cols.SELECTED)


def test_the_embed_status_shows_every_run_read_on_its_own_line():
    from napari_gandl.viewmodels.embed import source_lines

    assert source_lines("handcrafted") == "handcrafted"
    long_a, long_b = "/data/screens/" + "x" * 40 + "/seed0/checkpoint.pt", "/data/runs/seed1/checkpoint.pt"
    first, second = source_lines(f"gandl: {long_a} + {long_b}", width=30).splitlines()
    assert first == "gandl: …" + long_a[-22:] and len(first) == 30 and first.endswith("seed0/checkpoint.pt")
    assert second == "+ " + "…" + long_b[-27:] and second.endswith("seed1/checkpoint.pt")
    assert source_lines("/a/long/folder/embeddings.parquet", width=20) == "…/embeddings.parquet"
