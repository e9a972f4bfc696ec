"""``gandl train`` splits a budget into runs read together: two with the quick preset (``--runs``),
trained one after the other into RUN and RUN/run-2, resumed where they were interrupted, and read
together by ``gandl embed --checkpoint RUN``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from napari_gandl.cli import main
from napari_gandl.embedding import feature_columns
from napari_gandl.gan import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_TRAIN = ["--resolution", "32", "--batch", "8", "--channel-base", "256", "--channel-max", "32",
              "--d-channel-base", "256", "--d-channel-max", "32", "--device", "cpu", "--threads", "1"]


def _embed(plate, out, *checkpoints) -> pd.DataFrame:
    sources = [arg for c in checkpoints for arg in ("--checkpoint", str(c))]
    assert main(["embed", str(plate), *sources, "--out", str(out), "--device", "cpu"]) == 0
    return pd.read_parquet(out)


@pytest.fixture(scope="module")
def pair(gan_plate, tmp_path_factory):
    run = tmp_path_factory.mktemp("split") / "run"
    assert main(["train", str(gan_plate), "--out", str(run), "--kimg", "0.032", *TINY_TRAIN]) == 0
    return run


def test_the_default_trains_two_code_recovery_runs_of_half_the_budget(pair, capsys):
    assert json.loads((pair / "runs.json").read_text()) == {"runs": 2, "seed": 0, "minutes": None, "kimg": 0.016}
    for folder, seed in ((pair, 0), (pair / "run-2", 1)):
        ckpt = load_checkpoint(folder)
        config = json.loads(ckpt["config"]) if isinstance(ckpt["config"], str) else ckpt["config"]
        assert (int(ckpt["cur_nimg"]), config["seed"], config["kimg"], config["info"]) == (16, seed, 0.016, 10.0)


def test_embed_reads_a_split_folder_as_its_runs_together(pair, gan_plate, tmp_path, capsys):
    whole = _embed(gan_plate, tmp_path / "whole.parquet", pair)
    named = _embed(gan_plate, tmp_path / "named.parquet", pair / "checkpoint.pt", pair / "run-2")
    alone = _embed(gan_plate, tmp_path / "alone.parquet", pair / "run-2")
    dim = len([c for c in alone.columns if c.startswith("f")])
    assert len([c for c in whole.columns if c.startswith("f")]) == 2 * dim
    np.testing.assert_array_equal(whole[feature_columns(2 * dim)].to_numpy(), named[feature_columns(2 * dim)].to_numpy())
    np.testing.assert_array_equal(whole[feature_columns(2 * dim)].to_numpy()[:, dim:], alone[feature_columns(dim)].to_numpy())
    capsys.readouterr()
    assert main(["embed", str(gan_plate), "--checkpoint", str(pair), "--checkpoint", str(pair / "run-2"),
                 "--out", str(tmp_path / "twice.parquet")]) == 2  # the folder names its second run already
    assert "the same run is given twice" in capsys.readouterr().err


def test_an_interrupted_split_resumes_where_it_stopped_and_is_not_read_half_trained(pair, gan_plate, tmp_path,
                                                                                     capsys):
    run = shutil.copytree(pair, tmp_path / "run")
    shutil.rmtree(run / "run-2")  # interrupted before the second run wrote its first checkpoint
    capsys.readouterr()
    assert main(["embed", str(gan_plate), "--checkpoint", str(run), "--out", str(tmp_path / "e.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"gandl embed: error: {run}: trained as 2 runs read together, but {run / 'run-2'} has no "
                   f"checkpoint yet; finish it with gandl train PLATE --out {run} --resume")
    assert main(["train", str(gan_plate), "--out", str(run), *TINY_TRAIN]) == 2  # never trained over
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(gan_plate), "--out", str(run), "--resume", *TINY_TRAIN]) == 0
    err = capsys.readouterr().err
    assert f"done: 0.03 kimg in 2 runs read together, checkpoint {run}]" in err
    assert int(load_checkpoint(run)["cur_nimg"]) == 16  # the first run had its budget already
    second = load_checkpoint(run / "run-2")
    assert int(second["cur_nimg"]) == 16
    assert (second["config"]["seed"] if isinstance(second["config"], dict) else json.loads(second["config"])["seed"]) == 1


def test_a_folder_keeps_its_number_of_runs(pair, gan_plate, tmp_path, capsys):
    run = shutil.copytree(pair, tmp_path / "run")
    assert main(["train", str(gan_plate), "--out", str(run), "--resume", "--runs", "3", *TINY_TRAIN]) == 2
    assert capsys.readouterr().err.strip() == (
        f"gandl train: error: {run} holds 2 run(s) trained together; resume it with --runs 2, or train 3 runs "
        f"into another folder")
    alone = tmp_path / "alone"
    assert main(["train", str(gan_plate), "--out", str(alone), "--kimg", "0.008", "--runs", "1", *TINY_TRAIN]) == 0
    assert not (alone / "runs.json").exists() and not (alone / "run-2").exists()
    assert main(["train", str(gan_plate), "--out", str(alone), "--kimg", "0.016", "--resume", *TINY_TRAIN]) == 0
    assert not (alone / "run-2").exists() and int(load_checkpoint(alone)["cur_nimg"]) == 16  # resumed alone


def test_runs_is_an_option_of_gan_dl_only(gan_plate, tmp_path, capsys):
    assert main(["train", str(gan_plate), "--out", str(tmp_path / "r0"), "--runs", "0", *TINY_TRAIN]) == 2
    assert capsys.readouterr().err.strip() == "gandl train: error: --runs must be at least 1, got 0"
    assert main(["train", str(gan_plate), "--out", str(tmp_path / "r"), "--method", "convae", "--runs", "2"]) == 2
    assert capsys.readouterr().err.strip() == ("gandl train: error: --runs is an option of GAN-DL (--method gandl or "
                                          "gandl-untrained), not of convae")


def test_killed_in_its_second_run_a_split_resumes_that_run_only(gan_plate, tmp_path, kill9_when):
    import subprocess
    import sys

    from gan_helpers import subprocess_env

    run = tmp_path / "run"
    argv = [sys.executable, "-m", "napari_gandl.cli", "train", str(gan_plate), "--out", str(run), *TINY_TRAIN,
            "--kimg", "0.2", "--snapshot-kimg", "0.016"]  # two runs of 100 images
    second = run / "run-2" / "checkpoint.pt"
    kill9_when(argv, lambda: second.exists() and int(load_checkpoint(second)["cur_nimg"]) >= 16)
    first = load_checkpoint(run)
    assert int(first["cur_nimg"]) >= 100 and int(load_checkpoint(second)["cur_nimg"]) < 100
    resumed = subprocess.run(argv + ["--resume"], env=subprocess_env(), capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert int(load_checkpoint(run)["step"]) == int(first["step"])  # the finished run was not trained on
    assert int(load_checkpoint(second)["cur_nimg"]) >= 100
    assert "in 2 runs read together" in resumed.stderr.decode()
