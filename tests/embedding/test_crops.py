"""Nuclei, cell-centred crops and site profiles aggregated from cells."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_gandl.preprocessing.crops import (
    aggregate_cells, find_nuclei, nuclear_channel, site_crops,
)

CENTRES = np.array([[20.0, 25.0], [60.0, 90.0], [100.0, 40.0], [15.0, 110.0]])


def _site(rng, centres=CENTRES, size=128):
    img = rng.normal(10, 2, (3, size, size)).astype(np.float32)
    for k, (y, x) in enumerate(centres):
        rr, cc = disk((y, x), 6 + k % 2, shape=(size, size))
        img[0, rr, cc] += 100 + 20 * rng.standard_normal(len(rr))  # textured nucleus
        rr, cc = disk((y, x), 14, shape=(size, size))
        img[1, rr, cc] += 40  # cytoplasm in another stain
    return img


def test_nuclei_found_at_the_drawn_centres():
    img = _site(np.random.default_rng(0))
    found = find_nuclei(img[0], size=32)
    assert len(found) == len(CENTRES)
    dist = np.linalg.norm(found[:, None] - CENTRES[None], axis=2).min(axis=0)
    assert dist.max() < 1.5
    assert len(find_nuclei(np.full((64, 64), 7.0), size=32)) == 0  # flat: nothing


def test_crops_are_centred_on_cells_and_stay_inside():
    img = _site(np.random.default_rng(1))
    crops = site_crops(img, 32, nuclear=0)
    assert crops.shape == (4, 3, 32, 32)
    inner = [c for c, (y, x) in zip(crops, CENTRES) if 16 <= y <= 112 and 16 <= x <= 112]
    for c in inner:  # the nucleus sits in the middle of its crop
        assert c[0, 14:18, 14:18].mean() > 60 > c[0, :4, :4].mean()
    edge = crops[np.argmin(CENTRES[:, 0])]  # the nucleus at row 15 is shifted, not padded
    assert np.isfinite(edge).all() and edge[0, 13:17].max() > 60
    assert site_crops(img, 32, max_cells=2).shape[0] == 2
    assert site_crops(img[:, :20, :20], 32).shape == (0, 3, 32, 32)


def test_crops_on_the_synthetic_plate(sample_plate):
    from napari_gandl.plate import open_plate

    plate = open_plate(sample_plate)
    k = nuclear_channel(plate.channel_names)
    assert "Hoechst" in plate.channel_names[k]
    n_cells = []
    for s in range(10):
        img = plate.read_site(s).astype(np.float32)
        centres = find_nuclei(img[k], 32)
        crops = site_crops(img, 32, nuclear=k)
        assert len(crops) == len(centres)
        n_cells.append(len(crops))
        for (y, x), c in zip(centres, crops):
            assert img[k, int(y), int(x)] > 1.5 * img[k].mean()  # on a nucleus
            if 16 <= y <= 48 and 16 <= x <= 48:  # not shifted: the nucleus is the crop centre
                assert c[k, 14:18, 14:18].mean() > 1.5 * img[k].mean()
    assert sum(n_cells) >= 10


def test_nuclear_channel_by_name():
    assert nuclear_channel(["w2 ConA", "DAPI"]) == 1
    assert nuclear_channel(["w1 Hoechst", "w2"]) == 0
    with pytest.warns(UserWarning, match="no Hoechst/DAPI/DNA stain"):
        assert nuclear_channel(["a", "b"]) == 0


def test_site_profile_is_the_mean_of_its_cells():
    rng = np.random.default_rng(2)
    cells = rng.normal(0, 1, (100, 3))
    np.testing.assert_allclose(aggregate_cells(cells), cells.mean(0), rtol=1e-5, atol=1e-6)
    partial = cells.copy()
    partial[:20, 1] += 10  # a fifth of the cells changed in feature 1: the mean moves by 2
    assert aggregate_cells(partial)[1] - aggregate_cells(cells)[1] == pytest.approx(2, abs=1e-5)
    assert aggregate_cells(np.zeros((0, 3))).shape == (3,) and np.isnan(aggregate_cells(np.zeros((0, 3)))).all()
    with pytest.raises(ValueError, match=r"\(n_cells, features\)"):
        aggregate_cells(np.zeros(4))


def test_gandl_crops_embedding_is_deterministic_and_profiles_cells(sample_plate, tmp_path):
    from napari_gandl.embedding.pipeline import embed_plate
    from napari_gandl.embedding.registry import load_embedder
    from napari_gandl.gan import make_config
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.plate import open_plate

    plate = open_plate(sample_plate)
    cfg = make_config("quick", kimg=1.0, device="cpu", resolution=32, batch=8, threads=1,
                      network=dict(channel_base=256, channel_max=32, d_channel_base=1024,
                                   d_channel_max=128), data=dict(sampling="crops", norm_sites=8))
    Trainer(plate, tmp_path / "run", cfg).save(samples=False)
    emb = load_embedder("gandl", tmp_path / "run", plate, "cpu")
    assert emb.sampling == "crops" and emb.dim == 512
    a = embed_plate(plate, emb, sites=range(6), batch_size=2)
    b = embed_plate(plate, emb, sites=range(6), batch_size=6)
    cols = [c for c in a.columns if c.startswith("f")]
    assert len(cols) == 512
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), rtol=1e-4, atol=1e-5)
    # each row is its site's cells' mean: the mean of the site's crop features, computed here
    from napari_gandl.embedding.methods.gandl import cell_features

    cells = cell_features(emb.model, [plate.read_site(2)], emb.layer, emb.nuclear)[0]
    np.testing.assert_allclose(a[cols].to_numpy()[2], cells.mean(0), rtol=1e-4, atol=1e-5)
    tiles = load_embedder("gandl", tmp_path / "run", plate, "cpu", sampling="tiles")
    assert tiles.dim == 512
