"""The plate model on the synthetic screen and on damaged copies of it (no viewer)."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from napari_gandl.plate import PlateError, PlateWarning, TileError, can_open, open_plate
from napari_gandl.plate.model import GEOMETRY_SAMPLE

N_SITES = 100  # test preset: 2 cell types x 2 plates x 25 wells x 1 site


def png(root, experiment, plate, well, site, channel):
    return np.asarray(Image.open(root / "images" / experiment / f"Plate{plate}" / f"{well}_s{site}_w{channel}.png"))


def test_open_root_reads_metadata_and_stains(sample_plate):
    plate = open_plate(sample_plate)
    assert plate.kind == "rxrx"
    assert plate.n_sites == N_SITES
    assert plate.channel_names == ["w1 Hoechst", "w2 ConA", "w3 Phalloidin", "w4 SYTO14", "w5 WGA"]
    assert plate.stains[4].target == "Golgi and plasma membrane"
    expected = ["site_id", "experiment", "plate", "well", "site", "well_id", "cell_type",
                "disease_condition", "treatment", "treatment_conc", "SMILES", "problem"]
    assert list(plate.sites.columns) == expected
    assert set(plate.sites["cell_type"]) == {"HRCE", "VERO"}
    assert (plate.sites["problem"] == "").all()
    assert plate.data.shape == (N_SITES, 5, 64, 64)
    assert plate.data.numblocks == (N_SITES, 5, 1, 1)  # one chunk per tile


def test_pixels_equal_png_files(sample_plate):
    plate = open_plate(sample_plate)
    for i in (0, 37, N_SITES - 1):
        row = plate.sites.iloc[i]
        site = plate.data[i].compute()
        for c in range(5):
            expected = png(sample_plate, row.experiment, row.plate, row.well, row.site, c + 1)
            np.testing.assert_array_equal(site[c], expected)
        np.testing.assert_array_equal(plate.read_site(i), site)


@pytest.mark.parametrize("sub, n", [("images/VERO-1", 50), ("images/VERO-1/Plate2", 25)])
def test_open_subfolder_finds_metadata_above(sample_plate, sub, n):
    plate = open_plate(sample_plate / sub)
    assert plate.n_sites == n
    assert set(plate.sites["experiment"]) == {"VERO-1"}
    assert plate.sites["cell_type"].eq("VERO").all()  # metadata joined from the root's metadata.csv
    assert plate.root == sample_plate.resolve()


def test_without_metadata_sites_come_from_file_names(plate_copy):
    (plate_copy / "metadata.csv").unlink()
    plate = open_plate(plate_copy / "images" / "HRCE-1" / "Plate1")
    assert plate.n_sites == 25
    assert plate.sites["site_id"].str.startswith("HRCE-1_1_").all()
    assert "cell_type" not in plate.sites


def test_extra_files_are_ignored(plate_copy):
    (plate_copy / "images" / "HRCE-1" / "Plate1" / "notes.txt").write_text("imaged on a Tuesday")
    (plate_copy / "images" / "HRCE-1" / "Plate1" / "thumbnail.jpg").write_bytes(b"\xff\xd8")
    (plate_copy / "other.csv").write_text("a,b\n1,2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlateWarning)
        assert open_plate(plate_copy).n_sites == N_SITES


def test_missing_channel_keeps_the_site_and_names_the_file(plate_copy):
    plate = open_plate(plate_copy)
    row = plate.sites.iloc[3]
    victim = plate_copy / "images" / row.experiment / f"Plate{row.plate}" / f"{row.well}_s{row.site}_w4.png"
    victim.unlink()
    plate = open_plate(plate_copy)  # from the metadata: no file is listed yet
    assert not plate.files_checked and plate.sites.loc[3, "problem"] == ""
    with pytest.warns(PlateWarning, match=f"{victim}: file not found; shown as zeros"):
        site = plate.data[3].compute()  # browsing before the files are listed
    assert site[3].max() == 0 and site[0].max() > 0  # the gap is zeros, the other stains are real
    with pytest.warns(PlateWarning, match=rf"1 site\(s\) miss channel files, shown as zeros: {victim}"):
        usable = plate.usable_sites  # lists the plate's folders
    assert plate.n_sites == N_SITES
    assert plate.sites.loc[3, "problem"] == f"missing {row.well}_s{row.site}_w4.png"
    assert 3 not in usable and len(usable) == N_SITES - 1
    with pytest.raises(TileError, match="w4"):
        plate.read_site(3)


def test_corrupt_png_warns_when_browsing_and_raises_when_strict(plate_copy):
    plate = open_plate(plate_copy)
    row = plate.sites.iloc[10]
    victim = plate_copy / "images" / row.experiment / f"Plate{row.plate}" / f"{row.well}_s{row.site}_w2.png"
    victim.write_bytes(victim.read_bytes()[:60])  # truncated
    plate = open_plate(plate_copy)
    with pytest.warns(PlateWarning, match=str(victim.name)):
        tile = plate.data[10, 1].compute()
    assert tile.max() == 0
    with pytest.raises(TileError, match=str(victim)):
        plate.read_tile(10, 1)
    assert plate.read_site(11).shape == (5, 64, 64)  # the rest still reads


def test_metadata_rows_without_images_are_kept_as_zeros_and_named(plate_copy):
    meta = pd.read_csv(plate_copy / "metadata.csv")
    ghost = meta.iloc[[0]].assign(well="A01", site_id=lambda d: d.experiment + "_" + d.plate.astype(str) + "_A01_1")
    pd.concat([meta, ghost]).to_csv(plate_copy / "metadata.csv", index=False)
    plate = open_plate(plate_copy)
    assert plate.n_sites == N_SITES + 1  # the metadata's sites, known before any file is listed
    assert list(plate.check_files()) == [(1, 4), (2, 4), (3, 4), (4, 4)]  # napari's background listing
    assert list(plate.check_files()) == []  # once
    assert re.fullmatch(rf"{plate_copy / 'metadata.csv'}: 1 row\(s\) have no image files, shown as zeros: "
                        rf"{ghost.site_id.iloc[0]}", " ".join(plate.file_report.messages))
    ghost_site = int(np.flatnonzero(plate.sites["site_id"] == ghost.site_id.iloc[0])[0])
    assert plate.sites.loc[ghost_site, "problem"] == "no image files"
    assert ghost_site not in plate.usable_sites and len(plate.usable_sites) == N_SITES


def test_images_without_metadata_rows_are_named(plate_copy):
    meta = pd.read_csv(plate_copy / "metadata.csv")
    dropped = meta.iloc[5]
    meta.drop(index=5).to_csv(plate_copy / "metadata.csv", index=False)
    plate = open_plate(plate_copy)
    assert plate.n_sites == N_SITES - 1 and dropped.site_id not in set(plate.sites["site_id"])
    folder = plate_copy / "images" / dropped.experiment / f"Plate{dropped.plate}"
    with pytest.warns(PlateWarning, match=rf"1 site\(s\) have image files but no row, so they are not shown "
                                          rf".*: {folder}/{dropped.well}_s{dropped.site}"):
        assert len(plate.usable_sites) == N_SITES - 1


def test_metadata_without_key_columns_is_an_error(plate_copy):
    pd.read_csv(plate_copy / "metadata.csv").drop(columns=["well"]).to_csv(plate_copy / "metadata.csv", index=False)
    with pytest.raises(PlateError, match=r"metadata.csv: missing column\(s\) well"):
        open_plate(plate_copy)


def test_mixed_tile_sizes(plate_copy):
    plate = open_plate(plate_copy)
    row = plate.sites.iloc[20]
    victim = plate_copy / "images" / row.experiment / f"Plate{row.plate}" / f"{row.well}_s{row.site}_w1.png"
    Image.fromarray(np.full((80, 70), 7, np.uint8)).save(victim)
    plate = open_plate(plate_copy)
    with pytest.warns(PlateWarning, match=r"80x70 pixels, the plate's tiles are 64x64"):
        tile = plate.data[20, 0].compute()
    assert tile.shape == (64, 64) and (tile == 0).all()  # set aside, not cropped
    with pytest.raises(TileError, match=victim.name):
        plate.read_site(20)


def test_empty_and_foreign_folders(tmp_path):
    with pytest.raises(PlateError, match="empty"):
        open_plate(tmp_path)
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(PlateError, match="neither an RxRx folder"):
        open_plate(tmp_path)
    with pytest.raises(PlateError, match="no such folder"):
        open_plate(tmp_path / "nope")
    assert not can_open(tmp_path) and not can_open(tmp_path / "readme.txt")


def test_metadata_without_images_folder(tmp_path):
    (tmp_path / "metadata.csv").write_text("site_id,experiment,plate,well,site\n")
    with pytest.raises(PlateError, match="no images/ folder"):
        open_plate(tmp_path)


def test_opening_reads_only_the_contrast_sample(sample_plate, count_opens):
    with count_opens() as opened:
        plate = open_plate(sample_plate)
        plate.contrast_limits(n_sample_sites=4)
    # the headers of a few tiles to learn the tile size and bit depth, then 4 sites x 5 stains
    assert len(opened) == GEOMETRY_SAMPLE + 4 * 5
    with count_opens() as opened:
        plate.data[57].compute()
    assert len(opened) == 5
    assert all("_s1_w" in p for p in opened)


_LISTED: list[str] | None = None


def _audit_listing(event, args):
    if _LISTED is not None and event in ("os.listdir", "os.scandir"):
        _LISTED.append(str(args[0]))


sys.addaudithook(_audit_listing)


def test_opening_from_the_metadata_lists_one_plate_folder_and_the_check_each_once(sample_plate):
    """A screen opens from its metadata.csv: one plate folder is listed (for the channels), not
    the 1.5 M files of RxRx19a; the check lists each of its plate folders once."""
    global _LISTED
    _LISTED = []
    try:
        plate = open_plate(sample_plate)
        at_open = [p for p in _LISTED if "Plate" in Path(p).name]
        _LISTED.clear()
        assert len(plate.usable_sites) == N_SITES
        checked = sorted(p for p in _LISTED if "Plate" in Path(p).name)
    finally:
        _LISTED = None
    assert len(at_open) == 1
    assert checked == sorted(str(p) for p in (sample_plate / "images").glob("*/Plate*"))


def test_a_stain_slice_decodes_only_its_site_and_stepping_back_decodes_nothing(sample_plate, count_opens):
    plate = open_plate(sample_plate)
    with count_opens() as opened:
        stains = [plate.data[:, c] for c in range(5)]
        sliced = [stain[57] for stain in stains]
    assert opened == []  # building and slicing the arrays reads nothing
    assert all(s.chunksize == (1, 64, 64) for s in stains)
    with count_opens() as opened:
        shown = [s.compute() for s in sliced]
    row = plate.sites.iloc[57]
    site_files = [(row.experiment, f"Plate{row.plate}", f"{row.well}_s{row.site}_w{c}.png") for c in range(1, 6)]
    assert sorted({Path(p).parts[-3:] for p in opened}) == site_files
    for c, tile in enumerate(shown):
        np.testing.assert_array_equal(tile, plate.read_tile(57, c))
    with count_opens() as opened:
        again = plate.data[57].compute()
    assert opened == []  # decoded tiles are kept
    np.testing.assert_array_equal(again, np.stack(shown))
    plate.data[:20].compute()  # 100 other tiles: more than the cache keeps
    with count_opens() as opened:
        plate.data[57].compute()
    assert sorted({Path(p).parts[-3:] for p in opened}) == site_files  # decoded again


def test_the_first_stain_layer_of_a_site_decodes_the_sites_tiles_for_the_others(sample_plate, count_opens):
    """napari slices the stain layers one after the other: the first decodes every stain's tile of
    the site (in parallel), the others then read nothing."""
    plate = open_plate(sample_plate)
    row = plate.sites.iloc[33]
    site_files = [(row.experiment, f"Plate{row.plate}", f"{row.well}_s{row.site}_w{c}.png") for c in range(1, 6)]
    with count_opens() as opened:
        first = plate.stain(2)[33].compute()
    assert sorted({Path(p).parts[-3:] for p in opened}) == site_files
    np.testing.assert_array_equal(first, plate.read_tile(33, 2))
    with count_opens() as opened:
        others = [plate.stain(c)[33].compute() for c in (0, 1, 3, 4)]
    assert opened == []
    for c, tile in zip((0, 1, 3, 4), others):
        np.testing.assert_array_equal(tile, plate.read_tile(33, c))


def test_reopened_folder_shows_its_files_as_they_are_now(plate_copy):
    from dask.cache import Cache  # napari keeps computed chunks in such a cache, keyed by task name

    row = open_plate(plate_copy).sites.iloc[3]
    victim = plate_copy / "images" / row.experiment / f"Plate{row.plate}" / f"{row.well}_s{row.site}_w1.png"
    with Cache(2**28):
        before = open_plate(plate_copy).data[3, 0].compute()
        Image.fromarray(np.full((64, 64), 9, np.uint8)).save(victim)
        after = open_plate(plate_copy).data[3, 0].compute()
    assert not (before == 9).all() and (after == 9).all()


def test_tiff_folder_one_site_per_file(tmp_path):
    rng = np.random.default_rng(1)
    stacks = [rng.integers(0, 4000, (3, 40, 50), dtype=np.uint16) for _ in range(3)]
    for k, stack in enumerate(stacks):
        tifffile.imwrite(tmp_path / f"field{k}.ome.tif", stack, metadata={"axes": "CYX", "Channel": {"Name": ["DAPI", "Actin-488", "Mystery"]}})
    # a YXS (samples) file of a different folder layout is read the same way
    plate = open_plate(tmp_path)
    assert plate.kind == "tiff" and plate.n_sites == 3
    assert plate.sites["site_id"].tolist() == ["field0", "field1", "field2"]
    assert [s.target for s in plate.stains] == ["nuclei", "actin", ""]
    assert plate.data.shape == (3, 3, 40, 50) and plate.data.dtype == np.uint16
    np.testing.assert_array_equal(plate.data[2].compute(), stacks[2])
    np.testing.assert_array_equal(plate.data[:, 1][2].compute(), stacks[2][1])  # one stain, as napari shows it


def test_tiff_channels_last_and_bad_file(tmp_path):
    rng = np.random.default_rng(2)
    good = rng.integers(0, 255, (32, 32, 4), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", good, photometric="minisblack", metadata={"axes": "YXC"})
    tifffile.imwrite(tmp_path / "b.tif", good[..., :2], photometric="minisblack", metadata={"axes": "YXC"})
    plate = open_plate(tmp_path)
    np.testing.assert_array_equal(plate.read_site(0), np.moveaxis(good, -1, 0))
    with pytest.raises(TileError, match=r"b.tif: has 2 channels"):
        plate.read_site(1)
    with pytest.warns(PlateWarning, match="b.tif"):
        assert plate.data[1].compute().max() == 0
