"""The gandl embedder through the pipeline: shape, columns, determinism, batch independence, streaming."""

import numpy as np
import pandas as pd
import pytest

from napari_gandl.embedding import embed_plate, feature_columns
from napari_gandl.embedding.methods.gandl import resolve_layer, site_features
from napari_gandl.gan import load_model
from napari_gandl.plate import open_plate

COLS = feature_columns()


def test_embedding_table_shape_and_columns(gan_plate, tiny_run, tmp_path):
    plate = open_plate(gan_plate)
    df = embed_plate(plate, "gandl", source=tiny_run, batch_size=16, device="cpu")
    assert len(df) == plate.n_sites
    meta = [c for c in plate.sites.columns if c != "problem"]
    assert list(df.columns) == meta + COLS
    assert df.columns[0] == "site_id" and "problem" not in df
    assert len(COLS) == 512 and COLS[0] == "f000" and COLS[-1] == "f511"
    assert all(df[c].dtype == np.float32 for c in COLS)
    X = df[COLS].to_numpy()
    assert np.isfinite(X).all()
    assert X.std(axis=0).max() > 0  # sites differ
    pd.testing.assert_frame_equal(df[meta], plate.sites[meta].reset_index(drop=True), check_dtype=False)


def test_embedding_deterministic_and_batch_independent(gan_plate, tiny_run, tmp_path):
    a = embed_plate(gan_plate, "gandl", source=tiny_run, batch_size=7, device="cpu")
    b = embed_plate(gan_plate, "gandl", source=tiny_run, batch_size=7, device="cpu")
    np.testing.assert_array_equal(a[COLS].to_numpy(), b[COLS].to_numpy())  # deterministic
    c = embed_plate(gan_plate, "gandl", source=tiny_run, batch_size=100, device="cpu")
    np.testing.assert_allclose(a[COLS].to_numpy(), c[COLS].to_numpy(), rtol=1e-4, atol=1e-5)
    # a subset embedded alone matches the same rows of the whole plate
    sub = embed_plate(gan_plate, "gandl", source=tiny_run, sites=[5, 2, 40], device="cpu")
    np.testing.assert_allclose(sub[COLS].to_numpy(), a[COLS].to_numpy()[[5, 2, 40]], rtol=1e-4, atol=1e-5)
    assert list(sub["site_id"]) == list(a["site_id"].iloc[[5, 2, 40]])
    # streamed parquet equals the in-memory table
    path = embed_plate(gan_plate, "gandl", source=tiny_run, out_path=tmp_path / "e.parquet", batch_size=13,
                       device="cpu")
    disk = pd.read_parquet(path)
    np.testing.assert_allclose(disk[COLS].to_numpy(), a[COLS].to_numpy(), rtol=1e-4, atol=1e-5)
    assert list(disk.columns) == list(a.columns)
    # the paper's fc layer is available too and differs from the pooled default
    fc = embed_plate(gan_plate, "gandl", source=tiny_run, sites=[0, 1], device="cpu", layer="fc")
    assert not np.allclose(fc[COLS].to_numpy(), a[COLS].to_numpy()[:2])


def test_site_feature_covers_whole_tile(tiny_run, gan_plate):
    """The feature is the mean over training-resolution tiles covering the site."""
    import torch

    from napari_gandl.preprocessing.sampling import downsample, site_tiles

    model = load_model(tiny_run)
    img = open_plate(gan_plate).read_site(3)
    tiles = site_tiles(model.normalizer(downsample(img, model.scale)), model.resolution)
    assert tiles.shape == (4, 5, 32, 32)  # 64x64 site, 32x32 training crops
    with torch.no_grad():
        per_tile = model.D.features(torch.from_numpy(tiles), "pool").numpy()
    np.testing.assert_allclose(site_features(model, [img], layer="pool")[0], per_tile.mean(0),
                               rtol=1e-4, atol=1e-5)
    # changing one corner of the site changes the feature (whole tile is used)
    img2 = img.copy()
    img2[:, -16:, -16:] = 255
    assert not np.allclose(site_features(model, [img2])[0], site_features(model, [img])[0])


def test_eight_orientations_make_the_feature_blind_to_how_the_site_is_turned(tiny_run, gan_plate):
    """With orientations=8 each square's feature is the mean over its 8 orientations, so a site turned
    by 90 degrees or mirrored (its 2x2 squares permuted and each turned) gets the same feature."""
    model = load_model(tiny_run)
    img = open_plate(gan_plate).read_site(3)
    for turned in (np.rot90(img, 1, axes=(1, 2)), img[:, :, ::-1], np.rot90(img, 2, axes=(1, 2))[:, ::-1]):
        turned = np.ascontiguousarray(turned)
        np.testing.assert_allclose(site_features(model, [turned], layer="pool", orientations=8)[0],
                                   site_features(model, [img], layer="pool", orientations=8)[0],
                                   rtol=1e-4, atol=1e-5)
        assert not np.allclose(site_features(model, [turned], layer="pool")[0],
                               site_features(model, [img], layer="pool")[0], rtol=1e-4, atol=1e-5)
    # and the embedding pipeline reads it the same way
    table = embed_plate(gan_plate, "gandl", source=tiny_run, sites=[3], device="cpu", layer="pool", orientations=8)
    np.testing.assert_allclose(table[COLS].to_numpy()[0], site_features(model, [img], layer="pool", orientations=8)[0],
                               rtol=1e-4, atol=1e-5)


def test_a_partial_output_read_out_another_way_is_not_resumed(gan_plate, tiny_run, tmp_path):
    """Rows of one read-out (layer, orientations) never end up in an output of another."""
    from napari_gandl.embedding import iterate_embedding, load_embedder

    plate = open_plate(gan_plate)
    out = tmp_path / "e.parquet"
    for earlier in ({"layer": "pool"}, {"layer": "fc", "orientations": 8}):
        run = iterate_embedding(plate, load_embedder("gandl", tiny_run, plate, "cpu", **earlier), out_path=out,
                                batch_size=10, sites=range(40))
        for _ in range(3):
            next(run)
        run.close()  # stopped after two batches
        assert len(list((tmp_path / ".e.parquet.parts").glob("*.parquet"))) == 2
        with pytest.warns(UserWarning, match="partial output of a different embedding"):
            resumed = embed_plate(plate, "gandl", source=tiny_run, out_path=out, batch_size=10, sites=range(40),
                                  device="cpu", layer="fc")
        fresh = embed_plate(plate, "gandl", source=tiny_run, batch_size=40, sites=range(40), device="cpu", layer="fc")
        np.testing.assert_allclose(pd.read_parquet(resumed)[COLS].to_numpy(), fresh[COLS].to_numpy(),
                                   rtol=1e-4, atol=1e-5)
        out.unlink()


def test_embedding_rejects_bad_input(gan_plate, tiny_run, tmp_path):
    with pytest.raises(ValueError, match="layer"):
        embed_plate(gan_plate, "gandl", source=tiny_run, layer="conv9")
    with pytest.raises(ValueError, match="orientations must be 1 or 8"):
        embed_plate(gan_plate, "gandl", source=tiny_run, orientations=4)
    with pytest.raises(ValueError, match="stats"):
        embed_plate(gan_plate, "gandl", source=tiny_run, layer="stats", sites=[0])  # D too narrow for it
    from napari_gandl.torch_utils.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no GAN checkpoint"):
        embed_plate(gan_plate, "gandl", source=tmp_path / "missing_run")


def test_default_embedding_is_stats_when_d_is_wide_enough(gan_plate, tmp_path):
    from gan_helpers import TINY

    from napari_gandl.gan import make_config
    from napari_gandl.gan.trainer import Trainer

    cfg = make_config("quick", kimg=1.0, device="cpu",
                      **{**TINY, "network": dict(channel_base=256, channel_max=32,
                                                 d_channel_base=1024, d_channel_max=128)})
    Trainer(open_plate(gan_plate), tmp_path / "wide", cfg).save(samples=False)
    model = load_model(tmp_path / "wide")
    assert resolve_layer(model) == "stats"
    a = embed_plate(gan_plate, "gandl", source=tmp_path / "wide", sites=range(10), batch_size=3, device="cpu")
    b = embed_plate(gan_plate, "gandl", source=tmp_path / "wide", sites=range(10), batch_size=10, device="cpu",
                    layer="stats")
    np.testing.assert_allclose(a[COLS].to_numpy(), b[COLS].to_numpy(), rtol=1e-4, atol=1e-5)
    assert (a[COLS[256:]].to_numpy() >= 0).all()


def test_combined_method_weighs_both_blocks_equally(gan_plate, tiny_run):
    """gandl+handcrafted: as many principal components of D's features as of the handcrafted ones,
    the same rows whatever the batch, and each block's components carry its own information."""
    from napari_gandl.embedding import load_embedder
    from napari_gandl.embedding.methods.combined import CombinedEmbedder

    plate = open_plate(gan_plate)
    embedder = load_embedder("gandl+handcrafted", tiny_run, plate, device="cpu")
    assert isinstance(embedder, CombinedEmbedder)
    k_gan, k_hand = (p.n_components_ for p in embedder.pcas)
    assert k_gan == k_hand == embedder.dim // 2
    a = embed_plate(plate, embedder, batch_size=9)
    b = embed_plate(plate, embedder, batch_size=100)
    cols = feature_columns(embedder.dim)
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), rtol=1e-4, atol=1e-4)
    hand = embed_plate(plate, "handcrafted")
    X_hand = hand[feature_columns(75)].to_numpy(np.float64)
    block = a[cols[k_gan:]].to_numpy(np.float64)
    # the second block is a linear map of the handcrafted features: regressing it on them explains it
    coef, *_ = np.linalg.lstsq(np.c_[X_hand, np.ones(len(X_hand))], block, rcond=None)
    resid = block - np.c_[X_hand, np.ones(len(X_hand))] @ coef
    assert (resid ** 2).sum() < 1e-6 * (block ** 2).sum()
    with pytest.raises(ValueError, match="needs a run folder"):
        load_embedder("gandl+handcrafted", None, plate)


def test_embedding_a_run_that_blew_up_at_the_end_warns(gan_plate, tiny_run, tmp_path):
    import shutil
    import warnings

    from napari_gandl.embedding.registry import get_method

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the tiny run ended as well as it went: nothing said
        get_method("gandl").load(tiny_run, device="cpu")
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    pd.DataFrame({"kimg": [0.0, 2.0, 4.0, 6.0], "kid": [2e7, 90.0, 60.0, 6e5]}).to_csv(run / "metrics.csv",
                                                                                    index=False)
    with pytest.warns(UserWarning, match=r"run: the generator got much worse at the end: KID 6e\+05 at 6 kimg"):
        df = embed_plate(gan_plate, "gandl", source=run, device="cpu")
    assert len(df) == open_plate(gan_plate).n_sites  # said, and the embedding is still made


@pytest.fixture(scope="module")
def other_seed_run(gan_plate, tmp_path_factory):
    """A second run of the tiny networks, at another seed (initialised, not trained)."""
    from gan_helpers import tiny_config

    from napari_gandl.gan.trainer import Trainer

    out = tmp_path_factory.mktemp("seed2") / "run"
    Trainer(open_plate(gan_plate), out, tiny_config(seed=2)).save(samples=False)
    return out


def test_two_runs_read_together_are_each_runs_features_side_by_side(gan_plate, tiny_run, other_seed_run,
                                                                     tmp_path, capsys):
    from napari_gandl.cli import main

    sites = [0, 7, 31]
    one = [embed_plate(gan_plate, "gandl", source=run, sites=sites, device="cpu")[COLS].to_numpy()
           for run in (tiny_run, other_seed_run)]
    both = embed_plate(gan_plate, "gandl", source=[tiny_run, other_seed_run], sites=sites, device="cpu")
    wide = feature_columns(1024)
    assert list(both.columns[-1024:]) == wide and wide[-1] == "f1023"
    np.testing.assert_allclose(both[wide].to_numpy(), np.concatenate(one, axis=1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(one[0], one[1])  # the two seeds' features differ

    out = tmp_path / "both.parquet"
    assert main(["embed", str(gan_plate), "--checkpoint", str(tiny_run), "--checkpoint", str(other_seed_run),
                 "--out", str(out), "--device", "cpu", "--threads", "1"]) == 0
    disk = pd.read_parquet(out)
    assert len(disk) == open_plate(gan_plate).n_sites
    np.testing.assert_allclose(disk[wide].to_numpy()[sites], both[wide].to_numpy(), rtol=1e-4, atol=1e-5)

    capsys.readouterr()
    # the same run twice (here as its folder and as its checkpoint file) is refused in one line, naming it
    assert main(["embed", str(gan_plate), "--checkpoint", str(tiny_run),
                 "--checkpoint", str(tiny_run / "checkpoint.pt"),
                 "--out", str(tmp_path / "x.parquet")]) == 2
    assert capsys.readouterr().err.strip() == (f"gandl embed: error: {tiny_run / 'checkpoint.pt'}: "
                                               f"the same run is given twice")
    # a method that reads no weights cannot read several
    assert main(["embed", str(gan_plate), "--method", "handcrafted", "--checkpoint", str(tiny_run),
                 "--checkpoint", str(other_seed_run), "--out", str(tmp_path / "y.parquet")]) == 2
    assert "reads no run folder or weights file" in capsys.readouterr().err


def test_combined_method_reads_several_runs_in_one_block_and_the_handcrafted_features_once(
        gan_plate, tiny_run, other_seed_run):
    from napari_gandl.embedding import load_embedder
    from napari_gandl.embedding.joined import JoinedEmbedder

    plate = open_plate(gan_plate)
    embedder = load_embedder("gandl+handcrafted", [tiny_run, other_seed_run], plate, device="cpu")
    gan, hand = embedder.blocks
    assert isinstance(gan, JoinedEmbedder) and gan.dim == 1024 and type(hand).__name__ == "HandcraftedEmbedder"
    # the runs are what the pipeline stamps in its manifest and checks the bit depth of
    assert embedder.parts == gan.parts and [p.name for p in embedder.parts] == ["gandl", "gandl"]
    assert embedder.dim == 2 * embedder.pcas[1].n_components_  # two blocks, not three
    rows = embed_plate(plate, embedder, sites=[0, 5])[feature_columns(embedder.dim)].to_numpy()
    assert rows.shape == (2, embedder.dim) and np.isfinite(rows).all()


def test_a_partial_output_of_other_runs_read_together_is_not_reused(gan_plate, tiny_run, other_seed_run,
                                                                    tmp_path):
    from napari_gandl.embedding import iterate_embedding, load_embedder

    plate = open_plate(gan_plate)
    out = tmp_path / "e.parquet"
    run = iterate_embedding(plate, load_embedder("gandl", [tiny_run, other_seed_run], plate, "cpu"),
                            out_path=out, batch_size=10)
    for _ in range(3):
        next(run)
    run.close()  # stopped after two batches
    assert len(list((tmp_path / ".e.parquet.parts").glob("*.parquet"))) == 2
    # the runs in the other order give other columns: the partial output is not theirs
    with pytest.warns(UserWarning, match="partial output of a different embedding"):
        swapped = embed_plate(plate, "gandl", source=[other_seed_run, tiny_run], out_path=out, batch_size=10,
                              device="cpu", sites=range(20))
    single = embed_plate(plate, "gandl", source=other_seed_run, device="cpu", sites=range(20))
    np.testing.assert_allclose(pd.read_parquet(swapped)[COLS].to_numpy(), single[COLS].to_numpy(),
                               rtol=1e-4, atol=1e-5)
