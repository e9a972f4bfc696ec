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

from gan_helpers import TINY, assert_resumes_exactly, tiny_config


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
    assert_resumes_exactly(gan_plate, tmp_path, "contrast", kimg=0.048, seed=3, contrastive=1.0)
    with pytest.raises(ValueError, match=r"contrastive 1\.0 \(asked 0\.5\)"):
        list(iterate_training(gan_plate, tmp_path / "split", tiny_config(kimg=0.1, contrastive=0.5), resume=True))


def test_a_resumed_log_keeps_its_own_columns(tmp_path):
    from napari_gandl.torch_utils.runs import append_row

    log = tmp_path / "losses.csv"
    append_row(log, ["step", "loss"], {"step": 1, "loss": 0.5})
    append_row(log, ["step", "extra", "loss"], {"step": 2, "extra": 9, "loss": 0.25})  # a newer version
    assert list(csv.DictReader(open(log))) == [{"step": "1", "loss": "0.5"}, {"step": "2", "loss": "0.25"}]


@pytest.fixture(scope="module")
def two_site_plate(tmp_path_factory):
    """The 'test' screen with two sites per well (the session's sample plate has one)."""
    from napari_gandl.synthetic import write_sample_plate

    return write_sample_plate(tmp_path_factory.mktemp("wells") / "rxrx19a", preset="test", seed=0,
                              sites_per_well=2)


def test_well_partners_are_crops_of_another_site_of_the_same_well(two_site_plate):
    plate = open_plate(two_site_plate)
    cfg = DataConfig(norm_sites=8)
    sampler = TileSampler(plate, 32, cfg, fit_normalizer(plate, cfg))
    rng = np.random.default_rng(0)
    sampler.sample(16, rng)
    partners = sampler.partners(rng, within="well").numpy()
    plates, wells = sampler.well_codes
    meta = plate.sites
    single, n_wells = sampler.wells_with_one_site()
    assert n_wells == meta.groupby(["experiment", "plate", "well"]).ngroup().nunique() and single == 0
    for site, crop in zip(sampler.last_sites, partners):
        mates = [m for m in range(plate.n_sites) if wells[m] == wells[site]]
        found = [m for m in mates if (np.lib.stride_tricks.sliding_window_view(
            sampler.load(m), (32, 32), axis=(1, 2)) == crop[:, None, None]).all(axis=(0, 3, 4)).any()]
        assert found  # a window of a site of the same well ...
        assert meta.loc[found[0], "well"] == meta.loc[site, "well"] and plates[found[0]] == plates[site]
        assert site not in found  # ... and not its own


def test_nt_xent_leaves_excluded_pairs_out_of_the_denominator():
    from napari_gandl.torch_utils.contrastive import nt_xent

    z = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    exclude = torch.zeros(4, 4, dtype=torch.bool)
    assert torch.isclose(nt_xent(z, 0.5), nt_xent(z, 0.5, exclude))
    exclude[0, 1] = exclude[1, 0] = exclude[2, 2] = True
    zn = torch.nn.functional.normalize(z, dim=1)
    sim = zn @ zn.T / 0.5
    rows = []
    for a in range(8):  # the loss written out: a's positive, and every other row it may be contrasted with
        positive = (a + 4) % 8
        others = [b for b in range(8) if b != a and (b == positive or not exclude[a % 4, b % 4])]
        rows.append(torch.logsumexp(sim[a, others], 0) - sim[a, positive])
    assert torch.isclose(nt_xent(z, 0.5, exclude), torch.stack(rows).mean(), atol=1e-6)
    everything = torch.ones(4, 4, dtype=torch.bool)  # no negatives left: only the positive, loss 0
    assert float(nt_xent(z, 0.5, everything)) == pytest.approx(0.0, abs=1e-6)


def test_well_contrast_trains_and_refuses_to_change_on_resume(two_site_plate, gan_plate, tmp_path):
    from napari_gandl.gan.contrast import same_well_or_other_plate

    plates, wells = np.array([0, 0, 0, 1]), np.array([0, 0, 1, 2])
    assert same_well_or_other_plate(plates, wells).tolist() == [
        [True, True, False, True], [True, True, False, True], [False, False, True, True],
        [True, True, True, True]]
    with pytest.raises(ValueError, match="--contrast-pairs well needs the contrast on"):
        tiny_config(kimg=0.048, contrast_pairs="well")
    items = list(iterate_training(two_site_plate, tmp_path / "run",
                                  tiny_config(kimg=0.048, seed=3, contrastive=1.0, contrast_pairs="well")))
    assert all(np.isfinite(i["contrast_loss"]) for i in items if not i["done"])
    assert load_checkpoint(tmp_path / "run")["config"]["contrast_pairs"] == "well"
    with pytest.raises(ValueError, match=r"contrast_pairs 'well' \(asked 'site'\)"):
        list(iterate_training(two_site_plate, tmp_path / "run",
                              tiny_config(kimg=0.1, contrastive=1.0, contrast_pairs="site"), resume=True))
    with pytest.warns(UserWarning, match=r"--contrast-pairs well: (\d+) of the \1 wells trained on have one site"):
        list(iterate_training(gan_plate, tmp_path / "one-site", tiny_config(kimg=0.016, contrastive=1.0,
                                                                            contrast_pairs="well")))
