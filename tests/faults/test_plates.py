"""Faults in a plate: tiles of another size or bit depth (the first one included), a huge tile,
a metadata.csv that does not parse or names a site twice."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fault_helpers import child_env, one_line_error, tile_path, to_16_bit
from napari_gandl.embedding import feature_columns
from napari_gandl.plate import PlateWarning, open_plate

FEATURES = feature_columns(75)  # handcrafted: 15 statistics x 5 stains


def embed_damaged(plate, handcrafted, tmp_path, gandl, victims) -> str:
    """``gandl embed`` of the damaged ``plate`` (handcrafted), checked to exit with 0, to lose only
    the ``victims`` sites' rows (NaN) and to give every other row as the undamaged plate does;
    returns its warnings (``gandl embed: warning: ...`` lines), one a line."""
    out = tmp_path / "damaged.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        rc, err = gandl("embed", plate, "--method", "handcrafted", "--out", out)
    assert rc == 0, err
    got, clean = pd.read_parquet(out), pd.read_parquet(handcrafted)
    assert list(got["site_id"]) == list(clean["site_id"])
    lost = got[FEATURES].isna().all(axis=1).to_numpy()
    assert list(np.flatnonzero(lost)) == sorted(victims)
    np.testing.assert_array_equal(got.loc[~lost, FEATURES].to_numpy(), clean.loc[~lost, FEATURES].to_numpy())
    prefix = "gandl embed: warning: "
    return "\n".join(line[len(prefix):] for line in err.splitlines() if line.startswith(prefix))


def test_an_odd_sized_first_tile_loses_only_its_site(sample_plate, plate_copy, handcrafted, tmp_path, gandl):
    row = open_plate(plate_copy).sites.iloc[0]
    victim = tile_path(plate_copy, row, 1)
    Image.fromarray(np.full((48, 40), 9, np.uint8)).save(victim)
    plate = open_plate(plate_copy)
    assert plate.tile_shape == (64, 64) and plate.dtype == np.uint8  # from the plate, not its first file
    said = embed_damaged(plate_copy, handcrafted, tmp_path, gandl, victims=[0])
    assert f"site 0 not embedded: {victim}: tile is 48x40 pixels, the plate's tiles are 64x64" in said
    assert {w.rstrip(":,;") for w in said.split() if ".png" in w} == {str(victim)}  # no good file blamed
    assert said.count("sampled tiles differ from the plate's") == 1  # the plate is opened once


def test_one_16_bit_site_in_an_8_bit_plate_is_set_aside_not_wrapped(plate_copy, handcrafted, tmp_path, gandl):
    row = open_plate(plate_copy).sites.iloc[7]
    victims = [tile_path(plate_copy, row, c) for c in range(1, 6)]
    for png in victims:
        to_16_bit(png)
    said = embed_damaged(plate_copy, handcrafted, tmp_path, gandl, victims=[7])
    assert f"site 7 not embedded: {victims[0]}: tile is 16-bit, the plate's tiles are 8-bit" in said
    # the napari reader shows it as zeros, with a warning naming it, instead of its values mod 256
    plate = open_plate(plate_copy)
    with pytest.warns(PlateWarning, match=f"{victims[2]}: tile is 16-bit"):
        shown = np.asarray(plate.data[7, 2])
    assert shown.dtype == np.uint8 and (shown == 0).all()


def test_a_12000_pixel_first_tile_is_refused_from_its_header(plate_copy):
    row = open_plate(plate_copy).sites.iloc[0]
    victim = tile_path(plate_copy, row, 1)
    Image.new("L", (12000, 12000)).save(victim)  # 144 MB of pixels, 0.1 MB of file
    probe = (
        "import json, resource, warnings\n"
        "import numpy as np\n"
        "from napari_gandl.plate import TileError, open_plate\n"
        "warnings.simplefilter('ignore')\n"
        f"plate = open_plate({str(plate_copy)!r})\n"
        "np.asarray(plate.data[1, 0])  # a good tile: what reading one costs\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "shown = np.asarray(plate.data[0, 0])\n"
        "try:\n"
        "    plate.read_site(0)\n"
        "except TileError as exc:\n"
        "    print(exc)\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(json.dumps([plate.tile_shape, shown.shape, int(shown.max()), grown / 1024]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=child_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    error, summary = done.stdout.strip().splitlines()
    assert error == f"{victim}: tile is 12000x12000 pixels, the plate's tiles are 64x64"
    tile_shape, shown_shape, shown_max, grown_mib = json.loads(summary)
    assert tile_shape == shown_shape == [64, 64] and shown_max == 0
    assert grown_mib < 16  # decoding it would take 137 MiB


def test_metadata_with_an_unbalanced_quote_is_an_error_naming_the_line(plate_copy, tmp_path, gandl):
    meta = plate_copy / "metadata.csv"
    lines = meta.read_text().splitlines()
    fields = lines[5].split(",")
    fields[2] = '"' + fields[2]  # line 6: a quote opens the cell_type field and is never closed
    lines[5] = ",".join(fields)
    meta.write_text("\n".join(lines) + "\n")
    rc, err = gandl("embed", plate_copy, "--method", "handcrafted", "--out", tmp_path / "e.parquet")
    assert rc == 2
    assert one_line_error(err, "embed") == (f"{meta}: cannot be parsed as CSV (line 6: a quote opens a field "
                                            "that is never closed)")


def test_metadata_with_a_duplicated_site_id_is_an_error_naming_it(plate_copy, handcrafted, tmp_path, gandl):
    meta = plate_copy / "metadata.csv"
    table = pd.read_csv(meta)
    twice = table.iloc[3]
    pd.concat([table, table.iloc[[3]]]).to_csv(meta, index=False)  # the row again, as line 102
    rc, err = gandl("embed", plate_copy, "--method", "handcrafted", "--out", tmp_path / "e.parquet")
    assert rc == 2
    assert one_line_error(err, "embed") == f"{meta}: duplicated site_id {twice.site_id} (lines 5, 102)"
    # given to analyse, the same metadata is refused too, not de-duplicated
    rc, err = gandl("analyse", handcrafted, "--metadata", meta, "--out", tmp_path / "report")
    assert rc == 2
    assert one_line_error(err, "analyse") == f"{meta}: duplicated site_id values, e.g. {twice.site_id}"
