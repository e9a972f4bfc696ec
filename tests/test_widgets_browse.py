"""Plate map, similar sites and montage docks in a real (headless) viewer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt

from napari_gandl import columns as cols
from napari_gandl._viewer import site_table
from napari_gandl._widgets.montage import MontageWidget
from napari_gandl._widgets.plate_map import PlateMapWidget
from napari_gandl._widgets.similar import LAYER_NAME, SimilarSitesWidget
from napari_gandl.viewmodels.montage import DOSES


@pytest.fixture
def viewer(make_napari_viewer, sample_plate):
    viewer = make_napari_viewer()
    viewer.open(str(sample_plate), plugin="napari-gandl")
    return viewer


def _two_sites_in_one_well(root):
    """Make the second well's site the second site of the first well (files and metadata)."""
    meta = pd.read_csv(root / "metadata.csv")
    first = meta.iloc[0]
    k = int(np.flatnonzero((meta["experiment"] == first["experiment"]) & (meta["plate"] == first["plate"]))[1])
    second = meta.iloc[k]
    folder = root / "images" / second["experiment"] / f"Plate{second['plate']}"
    for png in folder.glob(f"{second['well']}_s{second['site']}_w*.png"):
        png.rename(folder / png.name.replace(f"{second['well']}_s{second['site']}", f"{first['well']}_s2"))
    meta.loc[k, ["well", "site", "well_id"]] = [first["well"], 2, first["well_id"]]
    meta.loc[k, "site_id"] = f"{first['well_id']}_2"
    meta.to_csv(root / "metadata.csv", index=False)


def test_plate_map_click_moves_the_slider_and_steps_through_the_well(make_napari_viewer, plate_copy, qtbot):
    _two_sites_in_one_well(plate_copy)
    viewer = make_napari_viewer()
    viewer.open(str(plate_copy), plugin="napari-gandl")
    dock = PlateMapWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Plate map")
    table = site_table(viewer)
    assert dock.colour_by.value == cols.CONDITION and dock.colouring.kind == "categorical"
    pm = dock.plate_map
    well = int(np.flatnonzero(pm.wells["well"] == pd.read_csv(plate_copy / "metadata.csv")["well"].iloc[0])[0])
    plate = int(pm.wells.at[well, "plate_index"])
    sites = pm.sites_of(well)
    assert len(sites) == 2
    # the overview: every plate, named by its number under its experiment; a click opens one
    assert dock.overview.zoomed is None and len(dock.canvas.rects) == len(pm.plates) == 4
    centre = dock.canvas.plate_centre(plate)
    assert dock.canvas.hit(centre) == ("plate", plate)
    assert pm.plates[plate] in dock.hover_text(dock.canvas.hit(centre))
    qtbot.mouseClick(dock.canvas, Qt.MouseButton.LeftButton, pos=centre)
    assert dock.overview.zoomed == plate and not dock.back.native.isHidden() and pm.plates[plate] in dock.where.value
    # one plate: a click on a well goes to its first site, the stepper to the next
    centre = dock.canvas.well_centre(well)
    assert pm.wells.iloc[well]["well"] in dock.hover_text(dock.canvas.hit(centre))
    qtbot.mouseClick(dock.canvas, Qt.MouseButton.LeftButton, pos=centre)
    assert viewer.dims.current_step[0] == sites[0] == table.current
    dock.stepper.step(+1)
    assert viewer.dims.current_step[0] == sites[1]
    assert dock.canvas.current_well == well
    # the map follows the slider (to the plate of the site), and a new result column can colour it
    viewer.dims.set_current_step(0, len(table) - 1)
    last = pm.well_of_site(len(table) - 1)
    assert dock.canvas.current_well == last != well and dock.overview.zoomed == pm.wells.at[last, "plate_index"]
    last_sites = pm.sites_of(last)  # ◀ / ▶ step through the well the slider went to
    assert list(dock.stepper.rows) == list(last_sites) and dock.stepper.text.value.startswith(
        f"sites of the well {list(last_sites).index(len(table) - 1) + 1} / {len(last_sites)}")
    table.set_columns({"svm_task": np.linspace(-1, 1, len(table))})
    dock.colour_by.value = "svm_task"
    assert dock.colouring.kind == "continuous"
    assert viewer.screenshot(canvas_only=True).max() > 0


def test_plate_map_keys_search_and_summary(viewer, qtbot):
    dock = PlateMapWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Plate map")
    table = site_table(viewer)
    pm, overview = dock.plate_map, dock.overview
    canvas = dock.canvas
    viewer.dims.set_current_step(0, 0)      # the overview selects the plate of the site shown
    assert overview.plate == 0
    # keys: arrows select a plate, Enter opens it, Page Down the next, Enter on a plate goes to the well
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert overview.plate == 1 and overview.zoomed is None
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert overview.zoomed == 1 and canvas.plate_rect is not None
    qtbot.keyClick(canvas, Qt.Key.Key_PageDown)
    assert overview.zoomed == 2
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert table.current == pm.sites_of(overview.well)[0] and canvas.current_well == overview.well
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert overview.zoomed is None and dock.back.native.isHidden() and canvas.rects
    # search: typed, the matches are counted; Enter goes to the first match's site, on its plate
    name = table.frame[cols.WELL].iloc[len(table) - 1]
    qtbot.keyClicks(dock.find.native, name.lower())
    matched = np.flatnonzero(pm.wells["well"] == name)
    qtbot.waitUntil(lambda: len(overview.matched_wells) > 0, timeout=5000)  # once typing pauses
    assert sorted(overview.matched_wells) == list(matched)
    assert dock.matches.value.startswith(f"{len(matched)} well")
    table.current = 0
    qtbot.keyClick(dock.find.native, Qt.Key.Key_Return)
    first = overview.matched_wells[0]
    assert table.current == pm.sites_of(first)[0] and overview.zoomed == pm.wells.at[first, "plate_index"]
    dock.next_match.native.click()
    if len(matched) > 1:
        assert table.current == pm.sites_of(overview.matched_wells[1])[0]
    # the summary: one row per plate; a plate whose controls overlap is flagged and listed first
    frame = table.frame
    plate_of_site = pm.wells["plate_index"].to_numpy()[pm.site_well]
    control = np.where(frame[cols.CONDITION] == "Active SARS-CoV-2", -1.0, 1.0)
    rng = np.random.default_rng(0)
    score = control + rng.normal(0, 0.01, len(frame))
    score[plate_of_site == 3] = rng.normal(0, 1, (plate_of_site == 3).sum())
    table.set_columns({"svm_task": score})
    assert dock.table_view.rowCount() == len(pm.plates)
    assert dock.table_view.item(0, 0).text() == pm.plates[3] and "Z'" in dock.table_view.item(0, 6).text()
    assert list(canvas.flagged) == [False, False, False, True]
    dock.table_view.cellClicked.emit(0, 0)
    assert overview.zoomed == 3 and "Z'" in dock.where.value


def _attach_embedding(viewer, dim: int = 8):
    table = site_table(viewer)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(len(table), dim)), columns=[f"f{i:03d}" for i in range(dim)])
    frame.insert(0, cols.SITE_ID, table.frame[cols.SITE_ID].to_numpy())
    table.set_columns(frame, embedding=True, source="test")
    return table


def test_similar_sites_return_the_site_itself_first(viewer, qtbot):
    table = _attach_embedding(viewer)
    dock = SimilarSitesWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Similar sites")
    dock.picker.normalisation.value = "none"
    dock.run()
    qtbot.waitUntil(lambda: dock.record is not None, timeout=30000)
    viewer.dims.set_current_step(0, 11)
    dock.k.value = 6
    dock.find()
    qtbot.waitUntil(lambda: dock.found is not None, timeout=30000)
    found = dock.found
    assert found["site"].iloc[0] == 11 and found["distance"].iloc[0] == pytest.approx(0, abs=1e-5)
    assert dock.results.rowCount() == 6
    assert dock.results.item(0, 1).text() == table.frame[cols.SITE_ID].iloc[11]
    stains = [layer for layer in viewer.layers
              if layer.name.startswith(LAYER_NAME) and layer.name != f"{LAYER_NAME} · labels"]
    assert len(stains) == table.plate.n_channels
    labels = viewer.layers[f"{LAYER_NAME} · labels"]
    assert list(labels.features["site"]) == list(found["site"])
    assert labels.features["label"][0].startswith("1. " + table.frame[cols.WELL].iloc[11])
    dock.results.cellClicked.emit(3, 0)
    assert viewer.dims.current_step[0] == found["site"].iloc[3]


def test_montage_layer_shape_and_labels(viewer, qtbot, tmp_path):
    table = site_table(viewer)
    dock = MontageWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Montage")
    dock.mode.value = DOSES
    compound = dock.which.choices[0]
    dock.which.value = compound
    dock.per_group.value = 2
    assert dock.build() is not None, dock.status.value
    qtbot.waitUntil(lambda: dock.montage is not None, timeout=30000)
    montage = dock.montage
    doses = table.frame.loc[table.frame[cols.COMPOUND] == compound, cols.DOSE].nunique()
    h, w = montage.tile_shape
    for stain, c in zip(table.plate.stains, range(table.plate.n_channels)):
        layer = viewer.layers[f"montage · {stain.label}"]
        assert layer.data.shape == (doses * (h + 4) - 4, 2 * (w + 4) - 4)
        np.testing.assert_array_equal(layer.data, montage.grid[c])
    labels = viewer.layers["montage · labels"]
    assert len(labels.data) == len(montage.sites) == 2 * doses
    assert list(labels.text.values) == montage.labels
    assert all(label.startswith(compound) for label in montage.labels[::2])
    png = dock.export(tmp_path / "montage.png")
    assert png.stat().st_size > 0
    dock.export_path.value = tmp_path / "montage.jpg"
    dock._export_clicked()
    assert "as .png or .tif" in dock.status.value
