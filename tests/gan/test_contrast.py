"""GAN-DL's site contrast (--contrastive): second crops of the same sites, a loss that teaches D's
embedding to tell sites apart, exact resume."""

import csv

import numpy as np
import pytest
import torch

from napari_gandl.gan import iterate_training, load_checkpoint
from napari_gandl.gan.contrast import SiteContrast
from napari_gandl.gan.networks import NetworkConfig, build_networks
from napari_gandl.plate import open_plate
from napari_gandl.preprocessing.normaliser import fit_normalizer
from napari_gandl.preprocessing.sampling import DataConfig, TileSampler
from napari_gandl.torch_utils.optim import Adam

from gan_helpers import TINY, stopped_and_resumed, tiny_config


@pytest.mark.parametrize("sampling", ["tiles", "crops"])
def test_partners_are_other_crops_of_the_same_sites(gan_plate, sampling):
    plate = open_plate(gan_plate)
    cfg = DataConfig(norm_sites=8, sampling=sampling)
    sampler = TileSampler(plate, 32, cfg, fit_normalizer(plate, cfg))
    rng = np.random.default_rng(0)
    reals = sampler.sample(8, rng).numpy()
    partners = sampler.partners(rng).numpy()
    assert partners.shape == reals.shape
    for site, crop in zip(sampler.last_sites, partners):
        windows = np.lib.stride_tricks.sliding_window_view(sampler.load(int(site)), (32, 32), axis=(1, 2))
        assert (windows == crop[:, None, None]).all(axis=(0, 3, 4)).any()  # a window of its own site
    assert not np.array_equal(reals, partners)


def test_site_contrast_teaches_d_to_tell_sites_apart(gan_plate):
    torch.manual_seed(0)
    plate = open_plate(gan_plate)
    cfg = DataConfig(norm_sites=8)
    sampler = TileSampler(plate, 32, cfg, fit_normalizer(plate, cfg))
    reals = sampler.sample(8, np.random.default_rng(1))
    partners = sampler.partners(np.random.default_rng(2))
    net = NetworkConfig.from_dict({**TINY["network"], "img_channels": plate.n_channels, "resolution": 32})
    _, D, _ = build_networks(net)
    contrast = SiteContrast(D, "cpu")
    opt = Adam(D.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        contrast.zero_grad()
        loss = contrast.loss(D, reals, partners)
        loss.backward()
        opt.step()
        contrast.step()
        losses.append(float(loss.detach()))
    assert losses[0] > 2.0 and np.mean(losses[-10:]) < 0.6 * losses[0]  # 2 crops of 8 sites: log(15) = 2.7 at chance


def test_training_with_site_contrast_resumes_exactly(gan_plate, tmp_path):
    cfg = dict(kimg=0.048, seed=3, contrastive=1.0)
    straight = list(iterate_training(gan_plate, tmp_path / "straight", tiny_config(**cfg)))
    resumed = stopped_and_resumed(gan_plate, tmp_path / "split", **cfg)
    assert resumed[0]["step"] == 4
    assert all(np.isfinite(i["contrast_loss"]) for i in straight if not i["done"])
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    for net in ("D", "G"):
        for k in a[net]:
            torch.testing.assert_close(a[net][k], b[net][k], rtol=0, atol=1e-6)
    for k in a["contrast"]["head"]:
        torch.testing.assert_close(a["contrast"]["head"][k], b["contrast"]["head"][k], rtol=0, atol=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "split" / "losses.csv")))
    assert [r["contrast_loss"] != "" for r in rows] == [True] * 6
    with pytest.raises(ValueError, match=r"contrastive 1\.0 \(asked 0\.5\)"):
        list(iterate_training(gan_plate, tmp_path / "split", tiny_config(kimg=0.1, contrastive=0.5), resume=True))


def test_a_resumed_log_keeps_its_own_columns(tmp_path):
    from napari_gandl.torch_utils.runs import append_row

    log = tmp_path / "losses.csv"
    append_row(log, ["step", "loss"], {"step": 1, "loss": 0.5})
    append_row(log, ["step", "extra", "loss"], {"step": 2, "extra": 9, "loss": 0.25})  # a newer version
    assert list(csv.DictReader(open(log))) == [{"step": "1", "loss": "0.5"}, {"step": "2", "loss": "0.25"}]
