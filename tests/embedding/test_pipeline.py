"""The pipeline's reliability: resume after kill -9, dask on a Plate{n} folder, bad metadata named."""

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_gandl.cli import main
from napari_gandl.embedding import embed_plate, feature_columns, iterate_embedding, load_embedder
from napari_gandl.plate import open_plate

HERE = Path(__file__).parent
SRC = str(HERE.parents[1] / "src")


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(HERE), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def test_kill_9_during_gandl_embed_resumes_from_the_batches_written(sample_plate, tmp_path, capsys,
                                                                   kill9_when):
    import hanging_method

    out = tmp_path / "emb.parquet"
    parts = tmp_path / ".emb.parquet.parts"
    argv = ["embed", str(sample_plate), "--method", "test-hanging-mean", "--out", str(out), "--batch", "4"]
    driver = f"import sys, hanging_method; from napari_gandl.cli import main; sys.exit(main({argv!r}))"
    proc = kill9_when([sys.executable, "-c", driver], lambda: len(list(parts.glob("*.parquet"))) >= 5,
                      env={"PYTHONPATH": str(HERE), "GANDL_TEST_HANG_AFTER": "5"})  # hangs in its 6th batch
    written = len(list(parts.glob("*.parquet")))
    assert written == 5 and not out.exists()  # 100 sites in 25 batches: killed after 5
    (tmp_path / f".emb.parquet.{proc.pid + 1}.tmp").write_bytes(b"PAR1 half a file")  # a stale temp file

    # the same command again: continues from the batches written, computes only the rest
    hanging_method.HangingMean.calls = 0
    assert main(argv) == 0
    assert f"resuming: {4 * written} of 100 sites already embedded" in capsys.readouterr().err
    assert hanging_method.HangingMean.calls == 25 - written
    assert out.exists() and not parts.exists()
    assert [p.name for p in tmp_path.glob(".emb.parquet.*")] == [".emb.parquet.lock"]  # the empty lock file stays
    resumed = pd.read_parquet(out)
    fresh = embed_plate(sample_plate, "test-hanging-mean", batch_size=50)
    pd.testing.assert_frame_equal(resumed, fresh, check_dtype=False)
    assert resumed[feature_columns(5)].dtypes.eq(np.float32).all()


def test_changed_command_does_not_reuse_partial_output(sample_plate, tmp_path):
    import hanging_method  # noqa: F401

    plate = open_plate(sample_plate)
    out = tmp_path / "e.parquet"
    run = iterate_embedding(plate, load_embedder("test-hanging-mean", None, plate), out_path=out, batch_size=10)
    for _ in range(3):
        next(run)
    run.close()  # stopped after two batches, like a cancelled widget worker
    assert len(list((tmp_path / ".e.parquet.parts").glob("*.parquet"))) == 2 and not out.exists()
    with pytest.warns(UserWarning, match="partial output of a different embedding"):
        embed_plate(plate, "test-hanging-mean", out_path=out, batch_size=20, sites=range(40))
    assert len(pd.read_parquet(out)) == 40


def test_dask_on_a_plate_folder_embeds_that_plates_sites(sample_plate, tmp_path):
    distributed = pytest.importorskip("distributed")
    plate2 = next((sample_plate / "images").glob("*/Plate2"))
    plate = open_plate(plate2)
    assert plate.root != plate2  # the plate's root is the dataset root: workers must not reopen that
    local = embed_plate(plate2, "handcrafted", batch_size=6)
    assert set(local["plate"].astype(int)) == {2} and len(local) == plate.n_sites
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, env={"PYTHONPATH": _env()["PYTHONPATH"]}) as cluster:
        out = embed_plate(plate2, "handcrafted", out_path=tmp_path / "d.parquet", batch_size=7,
                          scheduler=cluster.scheduler_address)
        # a Plate object (not a path): the workers open the folder it was opened from
        from_object = embed_plate(plate, "handcrafted", batch_size=5, scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:  # a napari layer's data, computed on the cluster
            stain = plate.stain(2)
            on_cluster = client.compute(stain[plate.n_sites - 1 :: -3]).result()
        np.testing.assert_array_equal(on_cluster, stain[plate.n_sites - 1 :: -3].compute(scheduler="sync"))
    remote = pd.read_parquet(out)
    pd.testing.assert_frame_equal(remote, local, check_dtype=False)
    pd.testing.assert_frame_equal(from_object, local, check_dtype=False)


def test_a_plate_travels_as_its_folder_and_is_refused_where_it_changed(plate_copy):
    import gc
    import pickle

    from napari_gandl.plate import PlateError
    from napari_gandl.plate.model import _opened_again

    plate = open_plate(plate_copy)
    sent = pickle.dumps(plate)
    assert len(sent) < 1000  # the folder and a fingerprint, not the site table or the tiles
    assert pickle.loads(sent) is plate  # in the process that opened it: the same plate, caches and all
    n_sites, tile = plate.n_sites, plate.read_tile(5, 1)
    del plate
    gc.collect()
    _opened_again.cache_clear()
    again = pickle.loads(sent)  # as a worker process meets it: the folder opened again
    assert again.n_sites == n_sites and np.array_equal(again.read_tile(5, 1), tile)
    del again
    gc.collect()
    _opened_again.cache_clear()
    meta = plate_copy / "metadata.csv"
    meta.write_text("".join(meta.read_text().splitlines(keepends=True)[:-1]))  # the last site's row removed
    with pytest.raises(PlateError, match=f"{plate_copy}: opened again in another process, it differs"):
        pickle.loads(sent)


def test_malformed_metadata_csv_is_named(sample_plate, plate_copy, tmp_path, capsys):
    from napari_gandl.plate import PlateError

    meta = plate_copy / "metadata.csv"
    meta.write_text(meta.read_text() + "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r\n")  # one row too wide
    table = tmp_path / "e.parquet"
    embed_plate(sample_plate, "handcrafted", out_path=table, sites=range(12))
    assert main(["analyse", str(table), "--metadata", str(meta), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{meta}: cannot be read as a table" in err and "line 102" in err
    # opening the plate is an error naming the file and the line (no silent fall-back to file names)
    with pytest.raises(PlateError, match=f"{meta}: cannot be parsed as CSV .*line 102"):
        open_plate(plate_copy)


def test_the_next_batch_is_decoded_while_the_model_embeds_this_one(sample_plate):
    import threading

    from napari_gandl.embedding import Embedder, embed_batch

    plate = open_plate(sample_plate)
    read_site, started = plate.read_site, {}

    def read_and_note(site):
        started.setdefault(site, threading.Event()).set()
        return read_site(site)

    plate.read_site = read_and_note

    class WaitsForTheNextBatch(Embedder):
        """Per-stain means; each batch waits (up to 60 s) until the first site of the next batch is being read."""

        name, dim, stains, batches = "test-waits", 5, plate.channel_names, []

        def embed_sites(self, images):
            first_next = 10 * (len(self.batches) + 1)
            if first_next < 40:
                self.batches.append(started.setdefault(first_next, threading.Event()).wait(60))
            return images.astype(np.float32).mean(axis=(2, 3))

    embedder = WaitsForTheNextBatch()
    frame = embed_plate(plate, embedder, batch_size=10, sites=range(40))
    assert embedder.batches == [True, True, True]  # decoded by the reader threads in the meantime
    expected = embed_batch(plate, embedder, range(40))
    np.testing.assert_array_equal(frame[feature_columns(5)].to_numpy(), expected)


def test_the_output_file_has_large_row_groups(sample_plate, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import napari_gandl.embedding.pipeline as pipeline

    monkeypatch.setattr(pipeline, "ROW_GROUP", 25)
    out = embed_plate(sample_plate, "handcrafted", out_path=tmp_path / "e.parquet", batch_size=4, sites=range(60))
    groups = [pq.ParquetFile(out).metadata.row_group(g).num_rows for g in range(pq.ParquetFile(out).num_row_groups)]
    assert groups == [28, 28, 4]  # batches of 4 sites gathered until 25 rows or more, the rest at the end
    pd.testing.assert_frame_equal(pd.read_parquet(out), embed_plate(sample_plate, "handcrafted", sites=range(60)),
                                  check_dtype=False)
