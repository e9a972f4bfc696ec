"""Qt-free view-models of the plate map, similar-site search and montages, on the sample screen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from napari_gandl import columns as cols
from napari_gandl.plate import open_plate
from napari_gandl.viewmodels import SiteTable
from napari_gandl.viewmodels.montage import (
    CONTROLS, DOSES, SELECTION, build_montage, choose_sites, export_montage,
)
from napari_gandl.viewmodels.plate_map import PlateMap, well_position
from napari_gandl.viewmodels.plate_map import plate_labels
from napari_gandl.viewmodels.similar import NeighbourIndex


@pytest.fixture
def table(sample_plate):
    return SiteTable(open_plate(sample_plate))


def test_well_names():
    assert well_position("A01") == (0, 0) and well_position("P24") == (15, 23)
    assert well_position("AF48") == (31, 47) and well_position("x") is None


def test_plate_map_places_every_site_in_its_well(table):
    pm = PlateMap(table)
    frame = table.frame
    assert pm.plates == list(dict.fromkeys(frame["experiment"].astype(str) + " plate " + frame["plate"].astype(str)))
    assert pm.shape in ((8, 12), (16, 24))
    for site in (0, 17, len(frame) - 1):
        w = pm.well_of_site(site)
        info = pm.wells.iloc[w]
        assert info["well"] == frame[cols.WELL].iloc[site] and site in pm.sites_of(w)
        assert pm.well_at(int(info["plate_index"]), int(info["row"]), int(info["col"])) == w
        assert pm.sites_of(w)[0] == info["first_site"]
    assert sum(len(pm.sites_of(w)) for w in range(len(pm.wells))) == len(frame)
    assert pm.well_at(0, pm.shape[0] - 1, pm.shape[1] - 1) is None or len(pm.wells) > 0


def test_plate_map_colours_categories_and_numbers(table):
    pm = PlateMap(table)
    by_condition = pm.colour_by(cols.CONDITION)
    assert by_condition.kind == "categorical"
    conditions = set(table.frame[cols.CONDITION])
    assert {label for label, _ in by_condition.legend} == conditions
    # wells of one condition share a colour; different conditions differ
    colour = {v: tuple(c) for v, c in zip(by_condition.values, by_condition.rgba)}
    assert len(set(colour.values())) == len(conditions)
    # a continuous score: one mean per well, viridis ends in the legend
    score = pd.DataFrame({"svm_task": np.arange(len(table), dtype=float)})
    table.set_columns(score)
    continuous = pm.colour_by("svm_task")
    assert continuous.kind == "continuous"
    w = pm.well_of_site(5)
    assert continuous.values[w] == pytest.approx(pm.sites_of(w).mean())
    image = pm.plate_images(continuous, [0])[0]
    assert image.shape == (*pm.shape, 4) and image.dtype == np.uint8
    assert "svm_task" in pm.describe_well(w, continuous)
    with pytest.raises(ValueError, match="no column 'nope'"):
        pm.colour_by("nope")


def test_similar_sites_find_the_site_itself_first(table):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(table), 16)).astype(np.float32)
    rows = np.arange(len(table))
    index = NeighbourIndex(X, rows, plate_labels(table.frame)[rows])
    found = index.query(7, k=5)
    assert found["site"].iloc[0] == 7 and found["distance"].iloc[0] == pytest.approx(0, abs=1e-6)
    assert found["distance"].is_monotonic_increasing and len(found) == 5
    # cosine: a scaled copy of site 7 is at distance 0 as well
    X2 = X.copy()
    X2[9] = 3 * X[7]
    again = NeighbourIndex(X2, rows).query(7, k=2)
    assert set(again["site"]) == {7, 9}
    # within one plate only
    plates = plate_labels(table.frame)[rows]
    inside = index.query(7, k=10, within_plate=True)
    assert (plates[inside["site"]] == plates[7]).all()
    # a selection leaves its own sites out
    sel = index.query([3, 4], k=4)
    assert not set(sel["site"]) & {3, 4} and len(sel) == 4
    with pytest.raises(ValueError, match="no query site"):
        index.query([], k=3)
    with pytest.raises(ValueError, match="site 3 has no embedding"):
        NeighbourIndex(X[4:], rows[4:]).query(3)


def test_montage_groups_layout_and_export(table, tmp_path):
    frame = table.frame
    compound = next(c for c in frame[cols.COMPOUND].dropna().unique() if c)
    groups = choose_sites(frame, DOSES, compound, per_group=2)
    doses = sorted(frame.loc[frame[cols.COMPOUND] == compound, cols.DOSE].unique())
    assert [g.label for g in groups] == [f"{compound} {d:g} µM" for d in doses]
    montage = build_montage(table.plate, groups, frame, max_tile=32)
    plate = table.plate
    h, w = montage.tile_shape
    assert montage.downsample == max(1, -(-plate.tile_shape[0] // 32)) and h <= 32
    assert montage.grid.shape == (plate.n_channels, len(groups) * (h + 4) - 4, 2 * (w + 4) - 4)
    assert len(montage.labels) == len(montage.sites) == sum(len(g.sites) for g in groups)
    # each row starts with its dose, then the wells
    assert montage.labels[0] == f"{groups[0].label}\n{frame[cols.WELL].iloc[montage.sites[0]]}"
    assert montage.labels[1] == frame[cols.WELL].iloc[montage.sites[1]]
    # the first tile is the first site, downsampled
    first = plate.read_site(montage.sites[0]).astype(np.float32)
    f = montage.downsample
    expected = first[:, :f * (first.shape[1] // f), :f * (first.shape[2] // f)].reshape(
        plate.n_channels, first.shape[1] // f, f, first.shape[2] // f, f).mean(axis=(2, 4))
    np.testing.assert_allclose(montage.grid[:, :expected.shape[1], :expected.shape[2]], expected, rtol=1e-5)

    controls = choose_sites(frame, CONTROLS, per_group=3, seed=1)
    assert {g.label for g in controls} <= set(frame[cols.CONDITION]) and all(len(g.sites) <= 3 for g in controls)
    assert choose_sites(frame, CONTROLS, per_group=3, seed=1)[0].sites == controls[0].sites

    table.set_columns({cols.SELECTED: np.arange(len(frame)) % 10 == 0})
    picked = choose_sites(table.frame, SELECTION, cols.SELECTED)
    assert picked[0].sites == list(range(0, len(frame), 10))
    with pytest.raises(ValueError, match="not a selection"):
        choose_sites(frame, SELECTION, cols.WELL)

    colors = [s.color for s in plate.stains]
    limits = [(0, 255)] * plate.n_channels
    png = export_montage(montage, tmp_path / "m.png", colors, limits)
    assert Image.open(png).size == (montage.grid.shape[2], montage.grid.shape[1])
    import tifffile
    tif = export_montage(montage, tmp_path / "m.tif", colors, limits)
    np.testing.assert_array_equal(tifffile.imread(tif), montage.grid)
    with pytest.raises(ValueError, match="as .png or .tif"):
        export_montage(montage, tmp_path / "m.jpg", colors, limits)
