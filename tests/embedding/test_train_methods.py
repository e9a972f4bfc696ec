"""`gandl train --method`: the comparators, DINO and MAE trained from the command line, with progress,
resume, and a run folder that `gandl embed --method` reads."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from napari_gandl.cli import main
from napari_gandl.embedding import FEATURE_PREFIX, feature_columns
from napari_gandl.comparators.tiles import load_tile_checkpoint


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("method,dim", [("convae", 256), ("dino", 192), ("mae", 192)])
def test_train_resume_then_embed(sample_plate, tmp_path, capsys, method, dim):
    run = tmp_path / f"{method}-run"
    train = ["train", str(sample_plate), "--out", str(run), "--method", method, "--device", "cpu"]
    assert main([*train, "--kimg", "0.032", "--seed", "2"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(run)
    assert "done: 0.03 kimg" in out.err and "100%" in out.err  # the progress bar
    ckpt = load_tile_checkpoint(method, run)
    assert ckpt["nimg"] == 32 and ckpt["config"]["seed"] == 2

    # a second start refuses to overwrite it; --resume continues the image count
    assert main([*train, "--kimg", "0.064"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*train, "--kimg", "0.064", "--resume"]) == 0
    assert load_tile_checkpoint(method, run)["nimg"] == 64
    losses = pd.read_csv(run / "losses.csv")
    assert losses["step"].tolist() == [1, 2] and losses["loss"].notna().all()
    assert (run / "samples" / "preview_latest.png").is_file() == (method == "mae")  # its reconstructions

    emb = tmp_path / f"{method}.parquet"
    assert main(["embed", str(sample_plate), "--method", method, "--checkpoint", str(run),
                 "--out", str(emb), "--device", "cpu"]) == 0
    table = pd.read_parquet(emb)
    features = feature_columns(dim)
    assert len(table) == 100 and f"{FEATURE_PREFIX}{dim}" not in table.columns
    assert table[features].notna().all().all()


@pytest.mark.parametrize("option", [["--preset", "paper"], ["--ada"], ["--align", "plate"], ["--resolution", "32"]])
def test_gan_only_option_with_another_method_is_refused(sample_plate, tmp_path, capsys, option):
    run = tmp_path / "run"
    assert main(["train", str(sample_plate), "--out", str(run), "--method", "simclr", *option]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"gandl train: error: {option[0]} is an option of GAN-DL's networks (--method gandl or "
                   f"gandl-untrained), not of simclr")
    assert not run.exists()


def test_the_untrained_control_is_written_from_the_command_line_at_its_seed(sample_plate, tmp_path):
    """``gandl train --method gandl-untrained PLATE_FOLDER``: the networks at their initialisation, the
    same for the same seed, other for another; two read together by ``gandl embed``."""
    import torch

    runs = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        runs[name] = tmp_path / name
        assert main(["train", str(sample_plate), "--method", "gandl-untrained", "--out", str(runs[name]),
                     "--seed", seed, "--runs", "1", "--device", "cpu"]) == 0
    D = {name: torch.load(run / "checkpoint.pt", weights_only=True)["D"] for name, run in runs.items()}
    assert all(torch.equal(D["a"][k], D["b"][k]) for k in D["a"])
    assert not all(torch.equal(D["a"][k], D["c"][k]) for k in D["a"])
    out = tmp_path / "both.parquet"
    assert main(["embed", str(sample_plate), "--method", "gandl-untrained", "--checkpoint", str(runs["a"]),
                 "--checkpoint", str(runs["c"]), "--out", str(out), "--device", "cpu"]) == 0
    assert pd.read_parquet(out).columns[-1] == "f1023"
    # by default, as GAN-DL's: two networks (seeds 1 and 2 here) in one folder, read together
    pair = tmp_path / "pair"
    assert main(["train", str(sample_plate), "--method", "gandl-untrained", "--out", str(pair), "--seed", "1",
                 "--device", "cpu"]) == 0
    D_pair = torch.load(pair / "run-2" / "checkpoint.pt", weights_only=True)["D"]
    assert all(torch.equal(D_pair[k], D["c"][k]) for k in D_pair)  # its second network: seed 2
    out = tmp_path / "pair.parquet"
    assert main(["embed", str(sample_plate), "--method", "gandl-untrained", "--checkpoint", str(pair),
                 "--out", str(out), "--device", "cpu"]) == 0
    assert pd.read_parquet(out).columns[-1] == "f1023"


def test_the_untrained_control_takes_the_gan_options_of_the_run_it_is_the_twin_of(sample_plate, tmp_path):
    """``gandl train --method gandl-untrained --resolution 32``: the networks of a run trained with that
    option, saved at their initialisation (their config says so, and D is at that resolution)."""
    run = tmp_path / "u32"
    assert main(["train", str(sample_plate), "--method", "gandl-untrained", "--out", str(run),
                 "--resolution", "32", "--device", "cpu"]) == 0
    assert json.loads((run / "config.json").read_text())["resolution"] == 32
