"""Properties of the metadata and tile-geometry parsing, over generated inputs (hypothesis): a valid
metadata.csv reads back row for row; a stray quote or a repeated site is an error naming the file
and where; the plate's geometry is what most tiles share, and every tile that differs is refused."""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from napari_gandl.plate import PlateError, PlateWarning, TileError
from napari_gandl.plate.model import check_tile, plate_geometry
from napari_gandl.plate.rxrx import png_header, read_metadata, read_png
from napari_gandl.plate.tiff import read_tiff, tiff_header

# Words pandas reads as missing values (NA, null, nan, ...) are not generated: they are no site's name.
NA_WORDS = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
            "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
name = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True).filter(lambda s: s not in NA_WORDS)
well = st.from_regex(r"[A-P](0[1-9]|1[0-9]|2[0-4])", fullmatch=True)
key = st.tuples(name, st.integers(1, 40), well, st.integers(1, 9))
note = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), include_characters='\n,"'),
               max_size=12).map(lambda s: "x" + s)
plain_note = st.from_regex(r"x[a-z ]{0,10}", fullmatch=True)
COLUMNS = ["experiment", "plate", "well", "site", "note"]


def rows_of(notes):
    return st.lists(st.tuples(key, notes), min_size=1, max_size=25, unique_by=lambda r: r[0]).map(
        lambda rows: pd.DataFrame([(*k, n) for k, n in rows], columns=COLUMNS))


def written(frame: pd.DataFrame, folder: str) -> Path:
    path = Path(folder) / "metadata.csv"
    frame.to_csv(path, index=False)
    return path


@settings(max_examples=60, deadline=None)
@given(frame=rows_of(note))
def test_valid_metadata_reads_back_row_for_row(frame):
    """Any names and any text (commas, quotes, line breaks, any script) survive: no row lost,
    doubled or changed."""
    with tempfile.TemporaryDirectory() as folder:
        meta = read_metadata(written(frame, folder))
    assert list(meta.columns) == ["site_id", *COLUMNS]
    # text columns whose values repeat come back as categoricals (by design: compact at 300,000 rows)
    read = meta[COLUMNS].astype({c: object for c in COLUMNS if isinstance(meta[c].dtype, pd.CategoricalDtype)})
    pd.testing.assert_frame_equal(read, frame, check_dtype=False)
    expected = frame["experiment"] + "_" + frame["plate"].astype(str) + "_" + frame["well"] + "_" + frame["site"].astype(str)
    assert list(meta["site_id"]) == list(expected)


@settings(max_examples=60, deadline=None)
@given(frame=rows_of(plain_note), data=st.data())
def test_a_stray_quote_is_an_error_naming_its_line(frame, data):
    with tempfile.TemporaryDirectory() as folder:
        path = written(frame, folder)
        lines = path.read_text().splitlines()
        line = data.draw(st.integers(2, len(lines)), label="line")
        fields = lines[line - 1].split(",")
        field = data.draw(st.integers(0, len(fields) - 1), label="field")
        fields[field] = '"' + fields[field]
        lines[line - 1] = ",".join(fields)
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(PlateError, match=re.escape(f"{path}: cannot be parsed as CSV (line {line}: a quote "
                                                       "opens a field that is never closed)")):
            read_metadata(path)


@settings(max_examples=40, deadline=None)
@given(frame=rows_of(plain_note), data=st.data())
def test_a_site_given_twice_is_an_error_naming_it(frame, data):
    i = data.draw(st.integers(0, len(frame) - 1), label="row")
    again = pd.concat([frame, frame.iloc[[i]]], ignore_index=True)
    site = "_".join(str(v) for v in frame.iloc[i][["experiment", "plate", "well", "site"]])
    with tempfile.TemporaryDirectory() as folder:
        path = written(again, folder)
        with pytest.raises(PlateError, match=re.escape(f"{path}: duplicated site_id {site} "
                                                       f"(lines {i + 2}, {len(frame) + 2})")):
            read_metadata(path)


shape = st.tuples(st.integers(1, 4096), st.integers(1, 4096))
pixels = st.sampled_from([np.dtype("uint8"), np.dtype("uint16"), np.dtype("float32")])


@settings(max_examples=200, deadline=None)
@given(common=st.tuples(shape, pixels), n_common=st.integers(1, 16), others=st.lists(st.tuples(shape, pixels),
                                                                                      max_size=15))
def test_the_plate_geometry_is_what_most_tiles_share_and_every_other_tile_is_refused(common, n_common, others):
    others = [o for o in others if o != common][:n_common - 1]  # fewer than the common geometry's tiles
    headers = {f"tile{i}.png": common for i in range(n_common)}
    headers.update({f"odd{i}.png": o for i, o in enumerate(others)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert plate_geometry(headers) == common
    assert [w.category for w in caught] == ([PlateWarning] if others else [])  # the odd ones are named
    if others:
        assert "odd0.png" in str(caught[0].message)
    for source, (tile_shape, dtype) in headers.items():
        if (tile_shape, dtype) == common:
            check_tile(tile_shape, dtype, *common, source)
        else:
            with pytest.raises(TileError, match=re.escape(f"{source}: tile is ")):
                check_tile(tile_shape, dtype, *common, source)


@settings(max_examples=30, deadline=None)
@given(size=st.tuples(st.integers(1, 48), st.integers(1, 48)), dtype=st.sampled_from(["uint8", "uint16"]),
       seed=st.integers(0, 2**16))
def test_tile_headers_say_what_decoding_gives(size, dtype, seed):
    """The PNG and TIFF headers the geometry comes from agree with the pixels decoded."""
    tile = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, size, dtype=dtype, endpoint=True)
    with tempfile.TemporaryDirectory() as folder:
        png, tif = Path(folder) / "t.png", Path(folder) / "t.tif"
        Image.fromarray(tile).save(png)
        assert png_header(str(png)) == (size, np.dtype(dtype))
        np.testing.assert_array_equal(read_png(str(png), size, dtype), tile)
        stack = np.stack([tile, tile[::-1, ::-1]])
        tifffile.imwrite(tif, stack, photometric="minisblack", metadata={"axes": "CYX"})
        assert tiff_header(tif)[:3] == (size, np.dtype(dtype), 2)
        np.testing.assert_array_equal(read_tiff(tif, size, dtype, 2), stack)
