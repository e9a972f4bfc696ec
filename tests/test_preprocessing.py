"""Training crops' site cache and the cell-scale measurement, on the session's test plate."""

import numpy as np

from napari_gandl.plate import open_plate
from napari_gandl.preprocessing.normaliser import fit_normalizer
from napari_gandl.preprocessing.sampling import DataConfig, TileSampler
from napari_gandl.preprocessing.scale import nucleus_diameters


def test_site_cache_is_byte_capped_and_saves_decoding(sample_plate):
    plate = open_plate(sample_plate)
    reads = []
    read_site = plate.read_site
    plate.read_site = lambda i: reads.append(i) or read_site(i)
    one_site = 5 * 64 * 64 * 2  # float16
    cfg = DataConfig(cache_mb=3.5 * one_site / 2**20)
    sampler = TileSampler(plate, 32, cfg, fit_normalizer(plate, cfg))
    reads.clear()  # (fitting the normaliser read sites too)
    first = sampler.load(0)
    again = sampler.load(0)
    assert again is first and reads == [0]  # a hit decodes nothing
    for site in range(1, 10):
        sampler.load(site)
    assert sampler._cache.currsize <= cfg.cache_mb * 2**20 and len(sampler._cache) == 3
    assert 0 not in sampler._cache  # least recently used first out
    np.testing.assert_allclose(sampler.load(0), first)  # decoded again, the same pixels
    assert reads.count(0) == 2


def test_nucleus_diameters_of_drawn_discs():
    yy, xx = np.mgrid[0:128, 0:128]
    image = np.zeros((128, 128))
    for (y, x), r in zip([(30, 30), (30, 90), (90, 60)], (4, 6, 8)):
        image[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = 100.0
    image += np.random.default_rng(0).normal(0, 2, image.shape)
    assert np.allclose(sorted(nucleus_diameters(image)), [8, 12, 16], atol=1.5)
    assert len(nucleus_diameters(np.full((32, 32), 7.0))) == 0  # flat: no nuclei


def test_nucleus_centres_are_kept_for_a_bounded_number_of_sites(sample_plate):
    plate = open_plate(sample_plate)
    one_site = 5 * 64 * 64 * 2  # float16
    cfg = DataConfig(cache_mb=one_site / 2**20, sampling="crops")  # one site; centres: 2,560 bytes
    sampler = TileSampler(plate, 32, cfg, fit_normalizer(plate, cfg))
    for site in sampler.sites:
        sampler.nuclei(int(site), sampler.load(int(site)))
    kept = sampler._centres
    assert 0 < len(kept) < len(sampler.sites) and kept.currsize <= cfg.cache_mb * 2**20 / 16
    site = int(sampler.sites[0])  # long evicted: found again, the same centres
    assert site not in kept
    np.testing.assert_array_equal(sampler.nuclei(site, sampler.load(site)),
                                  sampler.nuclei(site, sampler.load(site)))


def test_training_start_up_skips_a_damaged_site_of_its_sample(plate_copy):
    import pytest
    from PIL import Image

    from napari_gandl.preprocessing.scale import measure_scale

    row = open_plate(plate_copy).sites.iloc[0]  # the first of every spread-out sample
    victim = plate_copy / "images" / row.experiment / f"Plate{row.plate}" / f"{row.well}_s{row.site}_w1.png"
    Image.fromarray(np.full((48, 40), 9, np.uint8)).save(victim)
    plate = open_plate(plate_copy)
    with pytest.warns(UserWarning, match=f"site 0 skipped: {victim}: tile is 48x40 pixels"):
        normaliser = fit_normalizer(plate, DataConfig())
    assert len(normaliser.low) == 5 and all(h > lo for lo, h in zip(normaliser.low, normaliser.high))
    with pytest.warns(UserWarning, match=f"site 0 skipped: {victim}"):
        scale = measure_scale(plate, 32)
    assert scale.sites == 23  # of the 24 sampled
