"""benchmarks/scale_fixture.py: a screen in the RxRx layout whose tiles are hard links to a small
plate's, read by the reader like any other (a tiny one here; the benchmark builds 307,200 sites)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import scale_fixture  # noqa: E402

from napari_gandl.plate import open_plate  # noqa: E402


@pytest.fixture(scope="module")
def scaled(sample_plate, tmp_path_factory):
    """2 experiments x 1 plate x 6 wells x 2 sites of the sample plate's tiles."""
    dest = tmp_path_factory.mktemp("scaled") / "screen"
    return scale_fixture.build(sample_plate, dest, ["HRCE-1", "VERO-1"], plates=1, wells=6, sites=2,
                               progress=False)


def test_layout_and_metadata(sample_plate, scaled):
    meta = pd.read_csv(scaled / "metadata.csv")
    source = pd.read_csv(sample_plate / "metadata.csv")
    assert len(meta) == 2 * 1 * 6 * 2
    assert set(source.columns) <= set(meta.columns)
    assert meta["site_id"].is_unique
    assert set(meta["experiment"]) == {"HRCE-1", "VERO-1"}
    assert list(meta["well"].unique()) == scale_fixture.WELLS_384[:6]
    # each experiment's wells come from the source's wells of its cell type
    assert (meta["cell_type"] == meta["experiment"].str.split("-").str[0]).all()
    channels = sorted(int(p.name.split("_w")[1][:-4])
                      for p in (scaled / "images" / "HRCE-1" / "Plate1").glob("A01_s1_w*.png"))
    assert channels == [1, 2, 3, 4, 5]
    files = sorted(p.relative_to(scaled).as_posix() for p in (scaled / "images").rglob("*.png"))
    expected = sorted(f"images/{e}/Plate{p}/{w}_s{s}_w{c}.png"
                      for e, p, w, s in meta[["experiment", "plate", "well", "site"]].itertuples(index=False)
                      for c in channels)
    assert files == expected


def test_tiles_are_hard_links_to_the_source(sample_plate, scaled):
    source_inodes = {os.stat(p).st_ino for p in (sample_plate / "images").rglob("*.png")}
    for tile in (scaled / "images").rglob("*.png"):
        assert tile.stat().st_ino in source_inodes  # a link, not a copy
        assert tile.stat().st_nlink >= 2


def test_open_plate_reads_it_and_check_files_finds_a_missing_tile(sample_plate, scaled, tmp_path):
    plate = open_plate(scaled)
    assert plate.n_sites == 24 and plate.n_channels == 5
    # the first site's pixels are those of the source site it links to
    meta = pd.read_csv(scaled / "metadata.csv")
    first = meta.iloc[0]
    tile = scaled / "images" / first["experiment"] / f"Plate{first['plate']}" / f"{first['well']}_s{first['site']}_w1.png"
    site = plate.sites.index[plate.sites["site_id"] == first["site_id"]][0]
    src = next(p for p in (sample_plate / "images").rglob("*.png") if os.path.samefile(p, tile))
    from PIL import Image

    assert np.array_equal(plate.read_tile(int(site), 0), np.asarray(Image.open(src)))
    steps = list(plate.check_files())
    assert steps[-1][0] == steps[-1][1] == 2  # two plate folders listed
    assert plate.files_checked and len(plate.usable_sites) == 24

    # a removed link is reported by the file check (the link is put back after)
    gone = scaled / "images" / "VERO-1" / "Plate1" / "A02_s2_w3.png"
    kept = tmp_path / "kept.png"
    os.link(gone, kept)
    gone.unlink()
    try:
        missing = open_plate(scaled)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            report = missing.file_report
        assert len(missing.usable_sites) == 23
        assert any("A02_s2_w3.png" in message for message in report.messages)
    finally:
        os.link(kept, gone)


def test_building_again_does_nothing(sample_plate, scaled):
    before = (scaled / "metadata.csv").stat().st_mtime_ns
    assert scale_fixture.build(sample_plate, scaled, ["HRCE-1", "VERO-1"], plates=1, wells=6, sites=2,
                               progress=False) == scaled
    assert (scaled / "metadata.csv").stat().st_mtime_ns == before
