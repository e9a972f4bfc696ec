"""The napari reader in a real (headless) viewer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from PIL import Image

from napari_gandl._reader import napari_get_reader
from napari_gandl.plate.model import GEOMETRY_SAMPLE

STAINS = ["w1 Hoechst (nuclei)", "w2 ConA (endoplasmic reticulum)", "w3 Phalloidin (actin)",
          "w4 SYTO14 (nucleoli and cytoplasmic RNA)", "w5 WGA (Golgi and plasma membrane)"]


def tile(root, row, channel):
    path = root / "images" / row.experiment / f"Plate{row.plate}" / f"{row.well}_s{row.site}_w{channel}.png"
    return np.asarray(Image.open(path))


def wait_for_file_check(qtbot, layer) -> None:
    """Until the worker thread that lists the plate's files has listed them and ended."""
    from qtpy.QtCore import QThreadPool

    plate = layer.metadata["napari_gandl"]["site_table"].plate
    qtbot.waitUntil(lambda: plate.files_checked and QThreadPool.globalInstance().activeThreadCount() == 0,
                    timeout=60_000)


def site_files(row) -> list[tuple[str, str, str]]:
    """The last three path parts of a site's five tiles."""
    return [(row.experiment, f"Plate{row.plate}", f"{row.well}_s{row.site}_w{c}.png") for c in range(1, 6)]


def test_get_reader_declines_what_it_cannot_read(tmp_path, sample_plate):
    (tmp_path / "notes.txt").write_text("x")
    assert napari_get_reader(str(tmp_path)) is None
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None
    assert napari_get_reader(str(tmp_path / "missing")) is None
    assert napari_get_reader([str(sample_plate), str(tmp_path)]) is None
    assert callable(napari_get_reader(str(sample_plate)))


@pytest.mark.parametrize("sub", ["", "images/HRCE-1/Plate1"])
def test_viewer_opens_plate_as_one_layer_per_stain(make_napari_viewer, sample_plate, sub):
    viewer = make_napari_viewer()
    path = sample_plate / sub if sub else sample_plate
    layers = viewer.open(str(path), plugin="napari-gandl")
    assert [layer.name for layer in layers] == STAINS
    sites = layers[0].metadata["napari_gandl"]["site_table"].frame
    assert viewer.dims.nsteps[0] == len(sites) == (100 if not sub else 25)
    assert viewer.dims.axis_labels[0] == "site"
    for layer in layers:
        assert layer.blending == "additive"
        lo, hi = layer.contrast_limits
        assert 0 <= lo < hi <= 255
    assert tuple(layers[0].colormap.colors[-1][:3]) == pytest.approx((19 / 255, 0, 249 / 255))

    site = len(sites) - 2
    viewer.dims.set_current_step(0, site)
    row = sites.iloc[site]
    plate = layers[0].metadata["napari_gandl"]["site_table"].plate
    for c, layer in enumerate(layers):
        # a dask array of the stain, one chunk per tile, as scripts and other plugins expect
        assert isinstance(layer.data, da.Array) and layer.data.chunksize == (1, 64, 64)
        shown = layer.data[viewer.dims.current_step[0]].compute()
        np.testing.assert_array_equal(shown, tile(sample_plate, row, c + 1))
        np.testing.assert_array_equal(shown, plate.read_tile(site, c))
    assert viewer.screenshot(canvas_only=True).max() > 0  # something is drawn


def test_viewer_open_reads_only_the_contrast_sample(make_napari_viewer, sample_plate, count_opens):
    viewer = make_napari_viewer()
    with count_opens() as opened:
        viewer.open(str(sample_plate), plugin="napari-gandl")
        viewer.screenshot(canvas_only=True)
    # a few tile headers to learn the tile size and bit depth + 4 sample sites x 5 stains;
    # the site shown first is among them
    assert len(opened) <= GEOMETRY_SAMPLE + 4 * 5
    with count_opens() as opened:
        viewer.dims.set_current_step(0, 41)
        viewer.screenshot(canvas_only=True)
    sites = viewer.layers[0].metadata["napari_gandl"]["site_table"].frame
    assert sorted({Path(p).parts[-3:] for p in opened}) == site_files(sites.iloc[41])  # that site's, no other
    with count_opens() as opened:
        viewer.dims.set_current_step(0, 40)
        viewer.dims.set_current_step(0, 41)
        viewer.screenshot(canvas_only=True)
    # site 40 is decoded; back on 41, its tiles come from the cache
    assert sorted({Path(p).parts[-3:] for p in opened}) == site_files(sites.iloc[40])
    for site in range(20):  # 100 tiles more: the decoded tiles kept in memory are bounded
        viewer.dims.set_current_step(0, site)
    with count_opens() as opened:
        viewer.dims.set_current_step(0, 41)
    assert sorted({Path(p).parts[-3:] for p in opened}) == site_files(sites.iloc[41])


def test_damaged_plate_opens_and_its_files_are_listed_in_the_background(make_napari_viewer, plate_copy, qtbot):
    victim = next((plate_copy / "images" / "VERO-1" / "Plate2").glob("*_w3.png"))
    victim.unlink()
    viewer = make_napari_viewer()
    layers = viewer.open(str(plate_copy), plugin="napari-gandl")
    assert len(layers) == 5
    table = layers[0].metadata["napari_gandl"]["site_table"]
    changed = []
    table.changed.connect(changed.append)
    qtbot.waitUntil(lambda: changed == [("problem",)], timeout=60_000)  # a worker lists the plate's folders
    problems = table.frame["problem"]
    assert (problems != "").sum() == 1
    assert problems[problems != ""].iloc[0] == f"missing {victim.name}"


def test_corrupt_tile_is_shown_as_zeros_with_a_warning_naming_it(make_napari_viewer, plate_copy, qtbot):
    from napari_gandl.plate import PlateWarning

    viewer = make_napari_viewer()
    layers = viewer.open(str(plate_copy), plugin="napari-gandl")
    wait_for_file_check(qtbot, layers[0])  # napari's worker threads take every thread's warnings while they run
    row = layers[0].metadata["napari_gandl"]["site_table"].frame.iloc[10]
    victim = plate_copy / "images" / row.experiment / f"Plate{row.plate}" / f"{row.well}_s{row.site}_w2.png"
    victim.write_bytes(victim.read_bytes()[:60])  # truncated after the plate was opened
    with pytest.warns(PlateWarning, match=victim.name):
        viewer.dims.set_current_step(0, 10)
    assert layers[1].data[10].compute().max() == 0
    # the other stains are real
    np.testing.assert_array_equal(layers[0].data[10].compute(), tile(plate_copy, row, 1))


def test_sample_data(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_GANDL_CACHE", str(tmp_path))
    monkeypatch.setenv("NAPARI_GANDL_SAMPLE_PRESET", "test")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-gandl", "synthetic_screen")
    assert len(viewer.layers) == 5
    from napari_gandl.synthetic import GENERATOR_VERSION

    assert (tmp_path / f"sample-test-v{GENERATOR_VERSION}" / "metadata.csv").is_file()


def test_manifest_validates():
    result = subprocess.run([sys.executable, "-m", "npe2", "validate", "napari-gandl"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def navigator_boxes(navigator) -> list[tuple[int, str]]:
    """What the navigator's four boxes show on screen: (entries, text)."""
    return [(box.native.count(), box.native.currentText()) for box in
            (navigator.experiment, navigator.plate, navigator.well, navigator.site)]


def test_site_navigator_follows_and_drives_the_slider(make_napari_viewer, sample_plate):
    from napari_gandl._widgets.navigator import SiteNavigator

    viewer = make_napari_viewer()
    navigator = SiteNavigator(viewer)
    assert navigator.summary.value == "open a plate folder"
    layers = viewer.open(str(sample_plate), plugin="napari-gandl")
    sites = layers[0].metadata["napari_gandl"]["site_table"].frame

    viewer.dims.set_current_step(0, 60)
    row = sites.iloc[60]
    assert (navigator.experiment.value, navigator.plate.value, navigator.well.value) == (
        row.experiment, str(row.plate), row.well)
    assert row.site_id in navigator.summary.value and row.cell_type in navigator.summary.value
    assert navigator_boxes(navigator) == [(2, row.experiment), (2, str(row.plate)), (25, row.well), (1, "1")]

    target = sites[(sites.experiment == "HRCE-1") & (sites.plate == 2)].iloc[4]
    navigator.experiment.value = "HRCE-1"
    navigator.plate.value = "2"
    navigator.well.value = target.well
    assert viewer.dims.current_step[0] == target.name
    assert target.site_id in navigator.summary.value

    # the find box: every word narrows; Enter goes to the first match
    navigator.find.value = "vero-1_2_"
    navigator.find.native.textEdited.emit("vero-1_2_")
    assert navigator.matches.value == "25 sites match"
    navigator.find.native.returnPressed.emit()
    first = sites[(sites.experiment == "VERO-1") & (sites.plate == 2)].index[0]
    assert viewer.dims.current_step[0] == first
    assert navigator_boxes(navigator)[:2] == [(2, "VERO-1"), (2, "2")]


def test_navigator_docked_after_the_plate_is_filled_and_stays_filled(make_napari_viewer, sample_plate):
    """The boxes were empty in the dock, on any plate: napari refreshes a dock's choices when a layer
    is added, and boxes given fixed choices were emptied by it."""
    viewer = make_napari_viewer()
    viewer.open(str(sample_plate), plugin="napari-gandl")
    _, navigator = viewer.window.add_plugin_dock_widget("napari-gandl", "Site navigator")
    shown = navigator_boxes(navigator)
    assert [n for n, _ in shown] == [2, 2, 25, 1] and all(text for _, text in shown)
    viewer.dims.set_current_step(0, 60)
    viewer.add_points(np.zeros((1, 3)))  # napari resets the dock's choices
    after = navigator_boxes(navigator)
    assert [n for n, _ in after] == [2, 2, 25, 1] and all(text for _, text in after)
    assert navigator.well.value == viewer.layers[0].metadata["napari_gandl"]["site_table"].frame.well.iloc[60]


def test_navigator_is_in_the_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    widget, navigator = viewer.window.add_plugin_dock_widget("napari-gandl", "Site navigator")
    assert navigator.summary.value == "open a plate folder"


def test_rxrx19a_tiles_get_their_pixel_size(make_napari_viewer, tmp_path):
    folder = tmp_path / "images" / "VERO-2" / "Plate7"
    folder.mkdir(parents=True)
    blank = np.zeros((1024, 1024), np.uint8)
    blank[::7, ::5] = 40
    for site in (1, 2):
        for channel in range(1, 6):
            Image.fromarray(blank).save(folder / f"C03_s{site}_w{channel}.png")
    viewer = make_napari_viewer()
    layers = viewer.open(str(folder), plugin="napari-gandl")
    assert len(layers) == 5
    assert tuple(layers[0].scale) == pytest.approx((1.0, 0.65, 0.65))
    assert str(layers[0].units[-1]) == "micrometer"
    assert layers[0].metadata["napari_gandl"]["site_table"].frame["site_id"].tolist() == ["VERO-2_7_C03_1", "VERO-2_7_C03_2"]


def test_slider_and_site_table_follow_each_other_and_the_canvas_says_which_site(make_napari_viewer, sample_plate,
                                                                                qtbot):
    from napari_gandl._viewer import site_table

    viewer = make_napari_viewer()
    viewer.open(str(sample_plate), plugin="napari-gandl")
    table = viewer.layers[0].metadata["napari_gandl"]["site_table"]
    assert site_table(viewer) is table
    # the label of the first site shown follows the first paint
    qtbot.waitUntil(lambda: viewer.text_overlay.visible, timeout=5_000)
    assert viewer.text_overlay.text.startswith(table.frame.site_id.iloc[table.current])
    heard = []
    table.current_changed.connect(heard.append)
    viewer.dims.set_current_step(0, 60)
    assert table.current == 60 and heard == [60]
    row = table.frame.iloc[60]
    assert viewer.text_overlay.visible
    assert viewer.text_overlay.text.startswith(row.site_id) and row.cell_type in viewer.text_overlay.text
    table.current = 12
    assert viewer.dims.current_step[0] == 12 and heard == [60, 12]
    assert viewer.text_overlay.text.startswith(table.frame.site_id.iloc[12])


def test_first_slice_imports_no_distributed_and_a_later_client_still_schedules(sample_plate):
    """Without a client, the layers' slices run on dask's threaded scheduler without importing
    ``distributed``; a Client created afterwards is what computes dask collections."""
    script = f"""
import sys
import numpy as np
import dask
import dask.array
from napari_gandl._viewer import plate_layer_data
from napari_gandl.plate import open_plate
layers = plate_layer_data(open_plate({str(sample_plate)!r}))
assert np.asarray(layers[0][0][3]).shape == (64, 64), layers[0][0].shape
assert "distributed" not in sys.modules
from distributed import Client, get_worker
with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
    assert dask.config.get("scheduler") == "dask.distributed"
    assert int(dask.array.ones(8, chunks=2).sum().compute()) == 8
    # get_worker raises outside a worker, so this computes only on the client's worker
    ran_on = dask.delayed(lambda: get_worker().address)().compute()
    assert ran_on in client.scheduler_info()["workers"], ran_on
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
