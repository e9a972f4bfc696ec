"""Zero-shot: an RxRx19a-like model embeds the RxRx1-like sample by stain name; analyse reads RxRx1 metadata."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_gandl.cli import main
from napari_gandl.embedding import feature_columns, load_embedder
from napari_gandl.plate import open_plate

RXRX1_TYPES = ["HEPG2", "HUVEC", "RPE", "U2OS"]


def _untrained_run(plate_root, out):
    """A run folder holding an untrained small GAN (0 kimg) fitted to the plate's stains."""
    from napari_gandl.gan import make_config
    from napari_gandl.gan.trainer import Trainer

    cfg = make_config("quick", kimg=0.001, device="cpu", resolution=32, threads=1, data=dict(norm_sites=8),
                      network=dict(channel_base=256, channel_max=32))
    Trainer(open_plate(plate_root), out, cfg).save(samples=False)
    return out


@pytest.fixture(scope="module")
def rxrx1(tmp_path_factory):
    root = tmp_path_factory.mktemp("rxrx1") / "rxrx1"
    assert main(["synthetic", str(root), "--preset", "rxrx1"]) == 0  # write_rxrx1_sample(root, seed=0)
    return root


@pytest.fixture(scope="module")
def rxrx19a_run(sample_plate, tmp_path_factory):
    return _untrained_run(sample_plate, tmp_path_factory.mktemp("run19a") / "run")


def test_rxrx1_sample_has_six_stains_and_four_cell_types(rxrx1):
    plate = open_plate(rxrx1)
    assert plate.channel_names == ["w1 Hoechst", "w2 ConA", "w3 Phalloidin", "w4 SYTO14", "w5 MitoTracker",
                                   "w6 WGA"]
    assert sorted(plate.sites["cell_type"].unique()) == RXRX1_TYPES and plate.n_sites == 48
    assert plate.sites["well_type"].value_counts().to_dict() == {
        "treatment": 24, "negative_control": 12, "positive_control": 12}
    assert set(plate.sites.loc[plate.sites["well_type"] == "negative_control", "sirna"]) == {"EMPTY"}


def test_rxrx19a_model_embeds_rxrx1_by_stain_name(rxrx1, rxrx19a_run, tmp_path, capsys):
    out = tmp_path / "zero-shot.parquet"
    assert main(["embed", str(rxrx1), "--checkpoint", str(rxrx19a_run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "6 stains" in err and "expects 5" in err and "--stain-map auto" in err and not out.exists()

    assert main(["embed", str(rxrx1), "--checkpoint", str(rxrx19a_run), "--out", str(out),
                 "--stain-map", "auto", "--batch", "7"]) == 0
    table = pd.read_parquet(out)
    cols = feature_columns(512)
    assert len(table) == 48 and list(table.columns[-512:]) == cols and np.isfinite(table[cols]).all().all()
    # the same as feeding the model the RxRx1 channels without MitoTracker, WGA moved to the 5th slot
    plate = open_plate(rxrx1)
    embedder = load_embedder("gandl", rxrx19a_run, plate, "cpu")
    images = np.stack([plate.read_site(s) for s in (0, 30)])
    np.testing.assert_allclose(table[cols].to_numpy()[[0, 30]], embedder.embed_sites(images[:, [0, 1, 2, 3, 5]]),
                               rtol=1e-4, atol=1e-5)


def test_a_stain_the_plate_lacks_is_named(rxrx1, sample_plate, tmp_path, capsys):
    run = _untrained_run(rxrx1, tmp_path / "run1")  # a 6-stain RxRx1 model
    assert main(["embed", str(sample_plate), "--checkpoint", str(run), "--out", str(tmp_path / "e.parquet"),
                 "--stain-map", "auto"]) == 2
    err = capsys.readouterr().err
    assert "stain 'w5 MitoTracker' of the model not found among the plate's stains" in err


def test_analyse_reads_rxrx1_metadata(rxrx1, tmp_path, capsys):
    table = tmp_path / "hc.parquet"
    assert main(["embed", str(rxrx1), "--method", "handcrafted", "--out", str(table)]) == 0
    assert main(["analyse", str(table), "--out", str(tmp_path / "report"), "--splits", "3", "--quiet"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    task = report["tasks"][" vs ".join(RXRX1_TYPES)]
    assert task["classes"] == RXRX1_TYPES
    assert sum(task["n_sites"].values()) == 24  # the negative and positive control wells, 6 per cell type
    assert "control wells" in task["description"]
    assert report["normalise"] == "centerscale"  # fitted on the negative_control (siRNA EMPTY) wells


def _tiny_mae_run(plate_root, out):
    """A few steps of a small channel-agnostic MAE on the plate."""
    from napari_gandl.comparators import mae
    from napari_gandl.comparators.tiles import iterate_tile_training

    network = dict(mae.DEFAULTS["network"], dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)
    defaults = {**mae.DEFAULTS, "resolution": 32, "batch": 8, "network": network}
    list(iterate_tile_training("mae", mae.build, defaults, open_plate(plate_root), out, kimg=0.016, device="cpu"))
    return out


def test_rxrx19a_mae_embeds_rxrx1_by_stain_name(rxrx1, sample_plate, tmp_path, capsys):
    run = _tiny_mae_run(sample_plate, tmp_path / "mae19a")
    out = tmp_path / "zero-shot-mae.parquet"
    embed = ["embed", str(rxrx1), "--method", "mae", "--checkpoint", str(run), "--out", str(out)]
    assert main(embed) == 2
    assert "--stain-map auto" in capsys.readouterr().err and not out.exists()  # MitoTracker: never seen
    assert main([*embed, "--stain-map", "auto"]) == 0
    table = pd.read_parquet(out)
    cols = feature_columns(32)
    assert len(table) == 48 and np.isfinite(table[cols]).all().all()
    plate = open_plate(rxrx1)
    embedder = load_embedder("mae", run, plate, "cpu")
    images = np.stack([plate.read_site(s) for s in (0, 30)])
    np.testing.assert_allclose(table[cols].to_numpy()[[0, 30]], embedder.embed_sites(images[:, [0, 1, 2, 3, 5]]),
                               rtol=1e-4, atol=1e-5)


def test_rxrx1_mae_embeds_a_plate_without_mitotracker(rxrx1, sample_plate, tmp_path, capsys):
    """What GAN-DL cannot (test_a_stain_the_plate_lacks_is_named): the RxRx19a-like plate lacks
    the 6-stain model's MitoTracker; the MAE embeds its five stains, each by its name."""
    run = _tiny_mae_run(rxrx1, tmp_path / "mae-rxrx1")
    out = tmp_path / "mae.parquet"
    assert main(["embed", str(sample_plate), "--method", "mae", "--checkpoint", str(run), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    cols = feature_columns(32)
    assert len(table) == 100 and np.isfinite(table[cols]).all().all()
    plate = open_plate(sample_plate)
    embedder = load_embedder("mae", run, plate, "cpu")
    assert embedder.stain_ids == [0, 1, 2, 3, 5]  # w5 WGA is the model's w6 WGA
    np.testing.assert_allclose(table[cols].to_numpy()[:2], embedder.embed_sites(np.stack(
        [plate.read_site(s) for s in (0, 1)])), rtol=1e-4, atol=1e-5)
