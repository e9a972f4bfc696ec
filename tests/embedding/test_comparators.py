"""The paper's comparator embedders through their real paths on CPU:
DenseNet-121 (collapsed / concatenated) from a weights file, and ConvAE /
SimCLR trained on the sample plate."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_gandl.embedding.methods import convae, densenet, simclr
from napari_gandl.comparators.tiles import iterate_tile_training
from napari_gandl.embedding.registry import METHODS
from napari_gandl.torch_utils.checkpoint import CheckpointError
from napari_gandl.comparators.tiles import load_tile_checkpoint
from napari_gandl.plate import open_plate

# small networks so that training steps take milliseconds; the code path is the registry's
SMALL = dict(resolution=32, batch=8)
SMALL_NETS = {"convae": dict(dim=16, widths=[8, 8, 8, 16, 16]),
              "simclr": dict(proj_dim=8, temperature=0.2, widths=[8, 8, 8, 16, 16])}
MODULES = {"convae": convae, "simclr": simclr}


@pytest.fixture(scope="module")
def plate(sample_plate):
    return open_plate(sample_plate)


@pytest.fixture(scope="module")
def sites(plate):
    return np.stack([plate.read_site(i) for i in range(5)])


def small_training(name, plate, out, snapshot_seconds=30.0, **kw):
    mod = MODULES[name]
    defaults = {**mod.DEFAULTS, **SMALL, "network": SMALL_NETS[name], "snapshot_seconds": snapshot_seconds}
    return iterate_tile_training(name, mod.build, defaults, plate, out, device="cpu", **kw)


# ------------------------------------------------------------------ DenseNet-121


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """Randomly initialised DenseNet-121 saved as torchvision's ImageNet file
    densenet121-a639ec97.pth is: pre-0.4 key names, legacy (non-zip) torch format."""
    torch.manual_seed(0)
    state = densenet.DenseNet121().state_dict()
    old = {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()
           if not k.endswith("num_batches_tracked")}
    assert any(".norm.1." in k for k in old) and not any(".norm1." in k for k in old)
    path = tmp_path_factory.mktemp("weights") / "densenet121-random.pth"
    torch.save(old, path, _use_new_zipfile_serialization=False)
    return path


def test_densenet_has_torchvisions_layout():
    state = densenet.DenseNet121().state_dict()
    params = sum(v.numel() for k, v in state.items() if not re.search("running|num_batches", k))
    assert params == 7_978_856  # torchvision densenet121's parameter count
    for key in ("features.conv0.weight", "features.norm0.running_var",
                "features.denseblock3.denselayer24.conv2.weight", "features.transition3.conv.weight",
                "features.norm5.bias"):
        assert key in state
    assert state["classifier.weight"].shape == (1000, 1024)


@pytest.mark.parametrize("mode,dim", [("collapsed", 1024), ("concat", 5 * 1024)])
def test_densenet_embeds_from_a_weights_file(weights_file, plate, sites, mode, dim):
    emb = METHODS[f"densenet-{mode}"].load(weights_file, plate, "cpu")
    assert (emb.name, emb.dim, emb.stains) == (f"densenet-{mode}", dim, plate.channel_names)
    f = emb.embed_sites(sites)
    assert f.shape == (5, dim) and f.dtype == np.float32 and np.isfinite(f).all()
    np.testing.assert_array_equal(f, emb.embed_sites(sites))  # deterministic
    np.testing.assert_allclose(emb.embed_sites(sites[3:4])[0], f[3], rtol=1e-4, atol=1e-5)
    assert np.abs(f[0] - f[1]).max() > 1e-4  # different sites, different features


def test_densenet_weights_are_really_loaded(weights_file, plate, sites, tmp_path):
    emb = METHODS["densenet-collapsed"].load(weights_file, plate, "cpu")
    torch.manual_seed(1)
    other = tmp_path / "other.pth"
    torch.save(densenet.DenseNet121().state_dict(), other)  # new-style keys load too
    emb2 = METHODS["densenet-collapsed"].load(other, plate, "cpu")
    assert np.abs(emb.embed_sites(sites[:2]) - emb2.embed_sites(sites[:2])).max() > 1e-3


def test_concat_is_each_stain_alone(weights_file, plate, sites):
    concat = METHODS["densenet-concat"].load(weights_file, plate, "cpu")
    collapsed = METHODS["densenet-collapsed"].load(weights_file, plate, "cpu")
    # a site whose stains are all equal after normalisation: collapsed == every concat block
    same = sites[:1].astype(np.float32).copy()
    same[0] = concat.normalizer.inverse(np.repeat(concat.normalizer(same[0])[:1], 5, axis=0))
    f, g = concat.embed_sites(same)[0].reshape(5, 1024), collapsed.embed_sites(same)[0]
    for block in f:
        np.testing.assert_allclose(block, g, rtol=1e-3, atol=1e-4)


def test_densenet_without_weights_says_how_to_get_them(plate):
    with pytest.raises(CheckpointError, match=r"densenet121-a639ec97\.pth.*--weights"):
        METHODS["densenet-concat"].load(None, plate, "cpu")
    assert METHODS["densenet-concat"].needs_weights and METHODS["densenet-collapsed"].needs_weights


def test_densenet_bad_weights_files_are_named(plate, weights_file, tmp_path):
    with pytest.raises(CheckpointError, match="nowhere.pth does not exist"):
        METHODS["densenet-collapsed"].load(tmp_path / "nowhere.pth", plate, "cpu")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(weights_file.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="corrupt.pth.*truncated or corrupt"):
        METHODS["densenet-collapsed"].load(corrupt, plate, "cpu")
    alien = tmp_path / "alien.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, alien)
    with pytest.raises(CheckpointError, match="alien.pth does not hold DenseNet-121 weights"):
        METHODS["densenet-collapsed"].load(alien, plate, "cpu")


def test_gandl_embed_densenet_without_weights_says_where_they_are(sample_plate, tmp_path, capsys):
    from napari_gandl.cli import main

    assert main(["embed", str(sample_plate), "--method", "densenet-concat", "--out", str(tmp_path / "o")]) == 2
    assert densenet.WEIGHTS_URL in capsys.readouterr().err


def test_densenet_wrong_stain_count(weights_file, plate, sites):
    emb = METHODS["densenet-concat"].load(weights_file, plate, "cpu")
    with pytest.raises(ValueError, match=r"densenet-concat expects .*\(n, 5, H, W\).*--stain-map"):
        emb.embed_sites(np.concatenate([sites, sites[:, :1]], axis=1))


# ------------------------------------------------------------------ ConvAE, SimCLR


@pytest.fixture(scope="module")
def small_runs(plate, tmp_path_factory):
    runs = {}
    for name in MODULES:
        out = tmp_path_factory.mktemp(name) / "run"
        infos = list(small_training(name, plate, out, kimg=0.048, seed=3))
        assert infos[-1]["done"] and infos[-1]["fraction"] == 1.0
        assert {"kimg", "fraction", "img_per_s", "eta_s", "loss"} <= set(infos[0])
        runs[name] = out
    return runs


@pytest.mark.parametrize("name", ["convae", "simclr"])
def test_registered_training_and_embedding(name, plate, sites, tmp_path):
    """The registry's own train/load with the default networks (a few steps)."""
    spec = METHODS[name]
    infos = list(spec.train(plate, tmp_path / "run", kimg=0.032, device="cpu", seed=0))
    assert infos[-1]["done"] and infos[-1]["nimg"] >= 32
    emb = spec.load(tmp_path / "run", plate, "cpu")
    f = emb.embed_sites(sites[:2])
    assert f.shape == (2, 256) and emb.dim == 256 and np.isfinite(f).all()


@pytest.mark.parametrize("name", ["convae", "simclr"])
def test_trained_embedder_is_deterministic_and_batch_independent(name, small_runs, plate, sites):
    emb = METHODS[name].load(small_runs[name], plate, "cpu")
    assert emb.stains == plate.channel_names
    f = emb.embed_sites(sites)
    assert f.shape == (5, 16) and f.dtype == np.float32 and np.isfinite(f).all()
    np.testing.assert_array_equal(f, emb.embed_sites(sites))
    np.testing.assert_allclose(emb.embed_sites(sites[2:3])[0], f[2], rtol=1e-5, atol=1e-6)
    assert np.abs(f[0] - f[1]).max() > 1e-6
    with pytest.raises(ValueError, match=rf"{name} expects .*\(n, 5, H, W\)"):
        emb.embed_sites(sites[:, :4])


@pytest.mark.parametrize("name", ["convae", "simclr"])
def test_interrupted_training_resumes_to_the_same_weights(name, plate, tmp_path):
    straight = tmp_path / "straight"
    list(small_training(name, plate, straight, kimg=0.048, seed=3))
    split = tmp_path / "split"
    list(small_training(name, plate, split, kimg=0.024, seed=3))
    with pytest.raises(FileExistsError, match="--resume"):
        list(small_training(name, plate, split, kimg=0.048, seed=3))
    list(small_training(name, plate, split, kimg=0.048, seed=3, resume=True))
    a, b = load_tile_checkpoint(name, straight), \
        load_tile_checkpoint(name, split)
    assert a["nimg"] == b["nimg"] == 48 and a["step"] == b["step"] == 6
    for key, value in a["net"].items():
        torch.testing.assert_close(b["net"][key], value, rtol=1e-5, atol=1e-6)


def test_closing_training_keeps_a_checkpoint(plate, tmp_path):
    run = small_training("simclr", plate, tmp_path / "run", kimg=1.0)
    next(run), next(run)
    run.close()  # what a GUI Stop button does
    assert load_tile_checkpoint("simclr", tmp_path / "run")["nimg"] == 16


def test_kill9_then_resume_continues(plate, tmp_path, kill9_when):
    run = tmp_path / "killed"
    ckpt = run / "checkpoint.pt"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_comparators import small_training;"
            "from napari_gandl.plate import open_plate;"
            "[None for _ in small_training('convae', open_plate(sys.argv[2]), sys.argv[3], kimg=0.12,"
            " snapshot_seconds=0.1)]")
    kill9_when([sys.executable, "-c", code, str(Path(__file__).parent), str(plate.root), str(run)],
               lambda: ckpt.exists() and load_tile_checkpoint("convae", ckpt)["nimg"] >= 16)
    killed = load_tile_checkpoint("convae", ckpt)  # atomic write: loadable
    assert 0 < killed["nimg"] < 120
    infos = list(small_training("convae", plate, run, resume=True))
    assert infos[0]["step"] == killed["step"] + 1  # continued, not restarted
    assert infos[-1]["done"] and infos[-1]["nimg"] == 120


def test_trained_method_bad_sources_are_named(small_runs, plate, tmp_path):
    with pytest.raises(CheckpointError, match="convae embeds with a model trained on a plate"):
        METHODS["convae"].load(None, plate, "cpu")
    with pytest.raises(CheckpointError, match="is not a napari-gandl convae checkpoint"):
        METHODS["convae"].load(small_runs["simclr"], plate, "cpu")
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes((small_runs["convae"] / "checkpoint.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="checkpoint.pt.*truncated or corrupt"):
        METHODS["convae"].load(tmp_path, plate, "cpu")
    with pytest.raises(CheckpointError, match="no convae checkpoint at"):
        METHODS["convae"].load(tmp_path / "empty", plate, "cpu")


# ------------------------------------------------------------------ each method's own augmentation


def test_simclr_views_differ_and_convae_sees_augmented_tiles(plate):
    """The comparators augment with their own defaults, whatever GAN-DL's preset does (its ADA
    starts at p = 0): SimCLR's two views of a tile differ, and ConvAE reconstructs augmented tiles."""
    from napari_gandl.comparators import convae as convae_net, simclr as simclr_net
    from napari_gandl.preprocessing.augment import AugmentConfig, augment
    from napari_gandl.preprocessing.normaliser import fit_normalizer
    from napari_gandl.preprocessing.sampling import DataConfig, TileSampler

    tiles = TileSampler(plate, 32, DataConfig(), fit_normalizer(plate, DataConfig())).sample(
        16, np.random.default_rng(0))
    for module, net in ((simclr_net, simclr_net.SimCLR(5, **SMALL_NETS["simclr"])),
                        (convae_net, convae_net.ConvAE(5, 32, **SMALL_NETS["convae"]))):
        cfg = AugmentConfig.from_dict(module.DEFAULTS["augment"])
        seen = []

        def aug(batch):
            seen.append(augment(batch, cfg))
            return seen[-1]

        torch.manual_seed(0)
        net.loss(tiles, aug)
        if module is simclr_net:
            first, second = seen
            differ = (first - second).abs().flatten(1).amax(1) > 1e-3
            assert differ.float().mean() > 0.9, "SimCLR's two views of a tile must differ"
        else:
            (seen_by_ae,) = seen
            changed = (seen_by_ae - tiles).abs().flatten(1).amax(1) > 1e-3
            assert changed.float().mean() > 0.5, "ConvAE must train on augmented tiles"
