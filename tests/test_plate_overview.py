"""The Plate map dock's overview of a screen (Qt-free): plates grouped by experiment, the keyboard's
moves, search and the per-plate summary with Z', on the synthetic sample screen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_gandl import columns as cols
from napari_gandl.plate import open_plate
from napari_gandl.tables import control_labels
from napari_gandl.viewmodels import SiteTable
from napari_gandl.viewmodels.plate_map import PlateMap
from napari_gandl.viewmodels.plate_overview import PlateOverview, plate_summary


@pytest.fixture
def table(sample_plate):
    return SiteTable(open_plate(sample_plate))


@pytest.fixture
def overview(table):
    return PlateOverview(PlateMap(table))


def _events(overview) -> list:
    seen = []
    overview.changed.connect(lambda: seen.append(overview.zoomed))
    return seen


def test_overview_groups_plates_under_their_experiment(table, overview):
    frame = table.frame
    pm = overview.map
    assert overview.zoomed is None and overview.plate == 0
    experiments = list(dict.fromkeys(frame[cols.EXPERIMENT].astype(str)))
    assert [name for name, _ in overview.sections] == experiments
    rows = overview.overview_rows(per_line=1)
    assert [what for kind, what in rows if kind == "title"] == experiments
    lines = [plates for kind, plates in rows if kind == "plates"]
    assert sum(lines, []) == list(range(len(pm.plates))) and all(len(line) == 1 for line in lines)
    for plate in range(len(pm.plates)):  # each plate under its own experiment, named by its number
        experiment = next(name for name, plates in overview.sections if plate in plates)
        wells = pm.wells_of(plate)
        assert (pm.wells["plate_index"].to_numpy()[wells] == plate).all() and len(wells) > 0
        sites = np.concatenate([pm.sites_of(w) for w in wells])
        assert set(frame[cols.EXPERIMENT].astype(str).iloc[sites]) == {experiment}
        assert {overview.short_name(plate)} == set(frame[cols.PLATE].astype(str).iloc[sites])
        assert overview.short_name(plate) in pm.plates[plate]
    # a wide line holds one experiment's plates, never two experiments'
    wide = [plates for kind, plates in overview.overview_rows(per_line=100) if kind == "plates"]
    assert [list(plates) for _, plates in overview.sections] == wide


def test_keys_move_open_and_leave_plates(overview):
    pm = overview.map
    seen = _events(overview)
    overview.key("right", per_line=2)
    assert overview.plate == 1 and overview.zoomed is None
    overview.key("right", per_line=2)        # past the line's end: the next experiment's first plate
    assert overview.plate == 2
    overview.key("up", per_line=2)           # the line above, same column
    assert overview.plate == 0
    overview.key("down", per_line=2)
    overview.key("down", per_line=2)
    assert overview.plate == 2
    overview.key("down", per_line=2)         # the last line: stays
    assert overview.plate == 2
    assert overview.key("enter", per_line=2) is None
    assert overview.zoomed == 2 and pm.wells.at[overview.well, "plate_index"] == 2
    # on a plate, arrows move the well to the next well in that direction on the grid
    grid = pm.grid_well(2)
    start = overview.well
    row, col = pm.wells.at[start, "row"], pm.wells.at[start, "col"]
    right = [w for w in grid[row, col + 1:] if w >= 0]
    overview.key("right")
    assert overview.well == (right[0] if right else start)
    assert overview.key("enter") == overview.well  # Enter on a plate: the well to go to
    # Page Down: the next plate, the well at the same position when that plate has one
    well = overview.well
    overview.key("pagedown")
    assert overview.zoomed == 3
    same = pm.well_at(3, pm.wells.at[well, "row"], pm.wells.at[well, "col"])
    assert overview.well == (same if same is not None else pm.wells_of(3)[0])
    overview.key("pagedown")                 # round the screen
    assert overview.zoomed == 0
    overview.key("pageup")
    assert overview.zoomed == 3
    overview.key("escape")
    assert overview.zoomed is None and overview.plate == 3
    assert seen[-1] is None and len(seen) >= 10
    with pytest.raises(ValueError, match="unknown key"):
        overview.key("home")


def test_following_the_slider_selects_the_site_s_well(table, overview):
    pm = overview.map
    site = len(table) - 1
    overview.follow(site)
    well = pm.well_of_site(site)
    assert overview.well == well and overview.plate == pm.wells.at[well, "plate_index"]
    assert overview.zoomed is None          # the overview stays the overview
    overview.open(0)
    overview.follow(site)                   # a plate is shown: the site's plate is shown
    assert overview.zoomed == pm.wells.at[well, "plate_index"]


def test_one_plate_screen_opens_on_its_plate(sample_plate):
    frame = open_plate(sample_plate)
    first = frame.sites[[cols.EXPERIMENT, cols.PLATE]].iloc[0]
    frame.sites = frame.sites[(frame.sites[cols.EXPERIMENT] == first.iloc[0])
                              & (frame.sites[cols.PLATE] == first.iloc[1])].reset_index(drop=True)
    overview = PlateOverview(PlateMap(SiteTable(frame)))
    assert len(overview.map.plates) == 1 and overview.zoomed == 0
    overview.key("escape")
    assert overview.zoomed == 0


def test_search_finds_wells_by_name_and_compound(table, overview):
    frame = table.frame
    pm = overview.map
    name = frame[cols.WELL].iloc[0]
    expected = np.flatnonzero(pm.wells["well"] == name)
    found = overview.search(name)
    np.testing.assert_array_equal(np.sort(found), expected)
    letter, number = name[0], int(name[1:])
    np.testing.assert_array_equal(overview.search(f" {letter.lower()}{number} "), found)  # "b2" is B02
    assert overview.matches_per_plate().sum() == len(found)
    compound = frame[cols.COMPOUND].dropna().iloc[0]
    experiment = frame[cols.EXPERIMENT].iloc[0]
    found = overview.search(f"{compound.upper()} {experiment}")
    sites = np.flatnonzero((frame[cols.COMPOUND] == compound) & (frame[cols.EXPERIMENT] == experiment))
    assert set(found) == {pm.well_of_site(s) for s in sites} and len(found) > 0
    first_sites = pm.wells["first_site"].to_numpy()[found]
    assert (np.diff(first_sites) > 0).all()                   # slider order
    # next / previous match: round the matches, each on its plate
    visited = [overview.next_match() for _ in found]
    assert sorted(visited) == sorted(found) and overview.zoomed == pm.wells.at[visited[-1], "plate_index"]
    assert overview.next_match() == visited[0]
    assert overview.next_match(-1) == visited[-1]
    assert len(overview.search("   ")) == 0 and overview.next_match() is None
    assert len(overview.search("no-such-compound")) == 0


def _score(frame: pd.DataFrame, noisy_plate: int, plates: np.ndarray) -> np.ndarray:
    """A score that separates the controls on every plate but ``noisy_plate``."""
    control = control_labels(frame)
    rng = np.random.default_rng(1)
    score = np.where(control == "C+", 1.0, np.where(control == "C-", -1.0, 0.0)) + rng.normal(0, 0.05, len(frame))
    noisy = plates == noisy_plate
    score[noisy] = rng.normal(0, 1.0, noisy.sum())
    return score


def test_plate_summary_z_prime_hits_and_missing_files(plate_copy):
    frame0 = pd.read_csv(plate_copy / "metadata.csv")
    first = frame0.iloc[0]
    missing = next((plate_copy / "images" / first["experiment"] / f"Plate{first['plate']}")
                   .glob(f"{first['well']}_s{first['site']}_w*.png"))
    missing.unlink()
    table = SiteTable(open_plate(plate_copy))
    pm = PlateMap(table)
    assert "sites missing files" not in plate_summary(pm) or plate_summary(pm)["sites missing files"].sum() == 0
    for _ in table.plate.check_files():       # as the viewer does, in a worker, once the plate is open
        pass
    table.files_checked()
    frame = table.frame
    plate_of_site = pm.wells["plate_index"].to_numpy()[pm.site_well]
    table.set_columns({"svm_Cpos_vs_Cneg": _score(frame, 1, plate_of_site),
                       cols.HIT: (frame[cols.COMPOUND] == frame[cols.COMPOUND].dropna().iloc[0]).to_numpy()})
    frame = table.frame
    summary = plate_summary(pm, pm.colour_by(cols.CONDITION))   # a categorical colouring: the first score
    assert summary.attrs["score"] == "svm_Cpos_vs_Cneg" and list(summary["plate"]) == pm.plates
    # Z' by hand: well means of the controls, per plate
    wells = pd.DataFrame({"plate": plate_of_site, "well": pm.site_well, "score": frame["svm_Cpos_vs_Cneg"],
                          "control": control_labels(frame)}).groupby("well").agg(
        plate=("plate", "first"), score=("score", "mean"), control=("control", "first"))
    for p in range(len(pm.plates)):
        pos = wells.loc[(wells["plate"] == p) & (wells["control"] == "C+"), "score"]
        neg = wells.loc[(wells["plate"] == p) & (wells["control"] == "C-"), "score"]
        z = 1 - 3 * (pos.std() + neg.std()) / abs(pos.mean() - neg.mean())
        assert summary.at[p, "Z'"] == pytest.approx(z) and summary.at[p, "C+ mean"] == pytest.approx(pos.mean())
        assert summary.at[p, "C+ wells"] == len(pos) and summary.at[p, "C- wells"] == len(neg)
    assert summary.at[0, "Z'"] > 0.5 and summary.at[1, "Z'"] < 0
    assert "Z'" in summary.at[1, "flag"] and "Z'" not in summary.at[0, "flag"]
    # the site with a missing file, and the hit wells, on their plates
    bad_plate = plate_of_site[0]
    assert summary["sites missing files"].tolist() == [int(p == bad_plate) for p in range(len(pm.plates))]
    assert "files missing" in summary.at[bad_plate, "flag"]
    hit_wells = pm.site_well[frame[cols.HIT].to_numpy(bool)]
    assert summary["hit wells"].sum() == len(set(hit_wells)) > 0
    # a continuous colouring is the score summarised; one control well per side has no spread: no Z'
    one = frame.copy()
    summary = plate_summary(pm, pm.colour_by("svm_Cpos_vs_Cneg"))
    assert summary.attrs["score"] == "svm_Cpos_vs_Cneg"
    keep = (control_labels(one) != "C+") | (pm.site_well == pm.site_well[np.flatnonzero(control_labels(one) == "C+")[0]])
    table.set_columns({"svm_one": np.where(keep, one["svm_Cpos_vs_Cneg"], np.nan)})
    summary = plate_summary(pm, pm.colour_by("svm_one"))
    assert np.isnan(summary["Z'"]).sum() == len(pm.plates) and (summary["C+ wells"] <= 1).all()


def test_plate_images_paint_every_plate(table):
    pm = PlateMap(table)
    colouring = pm.colour_by(cols.CONDITION)
    images = pm.plate_images(colouring)
    assert images.shape == (len(pm.plates), *pm.shape, 4) and images.dtype == np.uint8
    for p in range(len(pm.plates)):
        np.testing.assert_array_equal(images[p], pm.plate_images(colouring, [p])[0])
    w = len(pm.wells) - 1
    info = pm.wells.iloc[w]
    expected = np.round(np.asarray(colouring.rgba[w]) * 255).astype(np.uint8)
    np.testing.assert_array_equal(images[info["plate_index"], info["row"], info["col"]], expected)
