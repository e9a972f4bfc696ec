"""RxRx1 / RxRx19a folders: ``metadata.csv`` + ``images/{experiment}/Plate{n}/{well}_s{site}_w{channel}.png``.

The dataset root is the folder holding ``metadata.csv`` and ``images/``. A
user may point at the root, at an experiment folder or at one ``Plate{n}``
folder; only that part of the tree is scanned, and ``metadata.csv`` is found by
walking up. Without ``metadata.csv`` the sites come from the file names alone.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from PIL import Image

from napari_gandl.plate.model import (
    GEOMETRY_SAMPLE, Plate, PlateError, PlateWarning, TileError, check_tile, plate_geometry,
)
from napari_gandl.plate.stains import stains_for_channels

TILE_NAME = re.compile(r"^(?P<well>[A-Za-z]+\d+)_s(?P<site>\d+)_w(?P<channel>\d+)\.png$", re.I)
PLATE_DIR = re.compile(r"^Plate(?P<plate>\d+)$", re.I)
KEY = ["experiment", "plate", "well", "site"]
# RxRx19a is imaged at 0.65 um per pixel on 1024x1024 tiles.
PIXEL_SIZE_UM = {1024: 0.65}
# PNG modes of single-channel tiles, and the pixel type each decodes to.
PNG_TYPES = {"1": np.bool_, "L": np.uint8, "I;16": np.uint16, "I;16B": np.uint16, "I;16L": np.uint16,
             "I": np.int32, "F": np.float32}


def find_root(path: Path, levels: int = 4) -> Path | None:
    """The nearest folder at or above ``path`` that holds ``metadata.csv``."""
    for folder in [path, *path.parents][: levels + 1]:
        if (folder / "metadata.csv").is_file():
            return folder
    return None


def plate_folders(path: Path) -> list[tuple[str, int, Path]]:
    """``(experiment, plate, folder)`` for every ``Plate{n}`` folder at or below ``path``."""
    found = []
    match = PLATE_DIR.match(path.name)
    if match:
        return [(path.parent.name, int(match["plate"]), path)]
    for dirpath, dirnames, _ in os.walk(path):
        for name in sorted(dirnames):
            match = PLATE_DIR.match(name)
            if match:
                found.append((Path(dirpath).name, int(match["plate"]), Path(dirpath) / name))
        dirnames[:] = [d for d in dirnames if not PLATE_DIR.match(d)]
    return sorted(found, key=lambda item: (item[0], item[1]))


def looks_like_rxrx(path: Path) -> bool:
    """Cheap check used by the napari reader: no image is decoded."""
    if not path.is_dir():
        return False
    if PLATE_DIR.match(path.name):
        return any(TILE_NAME.match(e.name) for e in os.scandir(path))
    root = find_root(path)
    if root is not None and (root / "images").is_dir():
        return True
    return bool(plate_folders(path))


def scan_tiles(folders: list[tuple[str, int, Path]]) -> pd.DataFrame:
    """One row per tile file: experiment, plate, well, site, channel, path."""
    rows = []
    for experiment, plate, folder in folders:
        with os.scandir(folder) as entries:
            for entry in entries:
                match = TILE_NAME.match(entry.name)
                if match:
                    rows.append(
                        (experiment, plate, match["well"], int(match["site"]), int(match["channel"]), entry.path)
                    )
    return pd.DataFrame(rows, columns=[*KEY, "channel", "path"])


def read_metadata(path: Path) -> pd.DataFrame:
    """``metadata.csv``, parsed strictly and checked by :func:`validate_metadata`; a PlateError
    names the file and the line of anything pandas cannot parse cleanly."""
    try:
        meta = pd.read_csv(path, dtype={"well": str, "experiment": str}, on_bad_lines="error")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split()).replace("Error tokenizing data. C error: ", "")
        quote = re.search(r"EOF inside string starting at row (\d+)", detail)  # a row counted from 0
        if quote:
            detail = f"line {int(quote[1]) + 1}: a quote opens a field that is never closed"
        raise PlateError(f"{path}: cannot be parsed as CSV ({detail})") from None
    return validate_metadata(meta, path)


def _lines(rows, limit: int = 5) -> str:
    """File line numbers of data rows (the header is line 1)."""
    return _summarise([str(int(r) + 2) for r in rows], limit)


def validate_metadata(meta: pd.DataFrame, path) -> pd.DataFrame:
    """The site metadata checked and typed, whichever parser read it: the key columns present
    and filled, ``plate`` and ``site`` integers, no ``site_id`` or site given twice. A PlateError
    names the file, the problem and the lines (or ``site_id``s) where it is; nothing is dropped
    or guessed. Adds ``site_id`` (experiment_plate_well_site) when the file has none."""
    missing = [c for c in KEY if c not in meta.columns]
    if missing:
        raise PlateError(f"{path}: missing column(s) {', '.join(missing)}; a metadata.csv needs "
                         f"{', '.join(KEY)} (remove the file to take sites from the file names)")
    meta = meta.reset_index(drop=True)
    for column in [*KEY, *(["site_id"] if "site_id" in meta.columns else [])]:
        empty = np.flatnonzero(meta[column].isna().to_numpy())
        if len(empty):
            raise PlateError(f"{path}: empty {column} on line(s) {_lines(empty)}")
    typed = meta.copy()
    for column in ("plate", "site"):
        number = pd.to_numeric(meta[column], errors="coerce")
        bad = np.flatnonzero((number.isna() | (number % 1 != 0)).to_numpy())
        if len(bad):
            raise PlateError(f"{path}: {column} must be an integer, found {meta[column].iloc[bad[0]]!r} "
                             f"on line(s) {_lines(bad)}")
        typed[column] = number.astype(int)
    if "site_id" not in typed.columns:
        typed.insert(0, "site_id", site_ids(typed))
    typed["site_id"] = typed["site_id"].astype(str)
    twice = typed["site_id"].duplicated(keep=False).to_numpy()
    if twice.any():
        raise PlateError(f"{path}: duplicated site_id {_summarise(list(dict.fromkeys(typed['site_id'][twice])))} "
                         f"(lines {_lines(np.flatnonzero(twice))})")
    twice = typed.duplicated(subset=KEY, keep=False).to_numpy()
    if twice.any():
        raise PlateError(f"{path}: the same experiment, plate, well and site on lines {_lines(np.flatnonzero(twice))}")
    return typed


def site_ids(table: pd.DataFrame) -> pd.Series:
    return (
        table["experiment"].astype(str) + "_" + table["plate"].astype(str) + "_"
        + table["well"].astype(str) + "_" + table["site"].astype(str)
    )


def _summarise(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


@contextmanager
def _png(path: str) -> Iterator[Image.Image]:
    """A single-channel PNG opened lazily (its header read, no pixel decoded); errors name the file."""
    try:
        with Image.open(path) as image:
            if image.mode not in PNG_TYPES:
                raise TileError(f"{path}: expected a single-channel (grey) PNG, found mode {image.mode}")
            yield image
    except TileError:
        raise
    except FileNotFoundError:
        raise TileError(f"{path}: file not found") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError for broken files
        raise TileError(f"{path}: cannot decode PNG ({exc})") from None


def png_header(path: str) -> tuple[tuple[int, int], np.dtype]:
    """``((height, width), pixel type)`` of a PNG tile, from its header alone."""
    with _png(path) as image:
        return (image.height, image.width), np.dtype(PNG_TYPES[image.mode])


def read_png(path: str, shape: tuple[int, int], dtype) -> np.ndarray:
    """Decode one PNG tile of a plate whose tiles are ``shape`` and ``dtype``; a TileError names the
    file when it is unreadable or disagrees (checked on the header, before decoding)."""
    with _png(path) as image:
        check_tile((image.height, image.width), PNG_TYPES[image.mode], shape, dtype, path)
        image.load()
        return np.asarray(image).astype(dtype, copy=False)  # big-endian 16-bit to native


def open_rxrx(path: Path) -> Plate:
    path = path.resolve()
    root = find_root(path)
    images = root / "images" if root is not None else None
    scan_from = images if (images is not None and path == root) else path
    if not scan_from.is_dir():
        raise PlateError(f"{root}: has metadata.csv but no images/ folder")
    folders = plate_folders(scan_from)
    if not folders:
        raise PlateError(f"{path}: no Plate<n> folders with <well>_s<site>_w<channel>.png tiles found")
    tiles = scan_tiles(folders)
    if tiles.empty:
        raise PlateError(f"{path}: Plate folders hold no <well>_s<site>_w<channel>.png tiles")

    problems: list[str] = []
    channels = sorted(tiles["channel"].unique())
    files = tiles.pivot_table(index=KEY, columns="channel", values="path", aggfunc="first")
    files = files.reindex(columns=channels)

    # Sites present in the files, plus metadata where it exists.
    sites = files.index.to_frame(index=False)
    meta = read_metadata(root / "metadata.csv") if root is not None else None
    if meta is not None:
        scanned = set(zip(sites["experiment"], sites["plate"]))
        in_scope = meta[[(e, p) in scanned for e, p in zip(meta["experiment"], meta["plate"])]]
        merged = sites.merge(in_scope, on=KEY, how="outer", indicator=True)
        no_images = merged[merged["_merge"] == "right_only"]
        if len(no_images):
            message = (
                f"{root / 'metadata.csv'}: {len(no_images)} row(s) have no image files and are left out: "
                + _summarise(list(no_images["site_id"].astype(str)))
            )
            warnings.warn(message, PlateWarning)
            problems.append(message)
        no_rows = merged[merged["_merge"] == "left_only"]
        if len(no_rows):
            message = (
                f"{root / 'metadata.csv'}: {len(no_rows)} site(s) have images but no metadata row; "
                "they are kept with metadata from file names: "
                + _summarise(list(site_ids(no_rows)))
            )
            warnings.warn(message, PlateWarning)
            problems.append(message)
        sites = merged[merged["_merge"] != "right_only"].drop(columns="_merge")
        sites["site_id"] = sites["site_id"].where(sites["site_id"].notna(), site_ids(sites))
        front = ["site_id", *KEY]
        sites = sites[front + [c for c in sites.columns if c not in front]]
    else:
        sites.insert(0, "site_id", site_ids(sites))
    sites = sites.sort_values(KEY).reset_index(drop=True)
    files = files.reindex(pd.MultiIndex.from_frame(sites[KEY]))
    paths = files.to_numpy(dtype=object)

    # A site missing some channel keeps the others; the gap is recorded.
    sites["problem"] = ""
    missing = pd.isna(paths)
    gaps = []
    for s in np.flatnonzero(missing.any(axis=1)):
        row = sites.iloc[s]
        names = [f"{row['well']}_s{row['site']}_w{channels[c]}.png" for c in np.flatnonzero(missing[s])]
        folder = next(Path(p).parent for p in paths[s] if isinstance(p, str))
        sites.loc[s, "problem"] = "missing " + ", ".join(names)
        gaps.append(f"{folder / names[0]}" + (f" (+{len(names) - 1} more)" if len(names) > 1 else ""))
    if gaps:
        message = f"{len(gaps)} site(s) miss channel files, shown as zeros: " + _summarise(gaps, 3)
        warnings.warn(message, PlateWarning)
        problems.append(message)

    # Tile size and bit depth: those most of a sample of tile headers spread over the plate share.
    present = [p for p in paths.ravel() if isinstance(p, str)]
    headers = {}
    for i in np.unique(np.linspace(0, len(present) - 1, min(GEOMETRY_SAMPLE, len(present))).astype(int)):
        try:
            headers[present[i]] = png_header(present[i])
        except TileError as exc:
            warnings.warn(str(exc), PlateWarning)
    if not headers:
        raise PlateError(f"{scan_from}: none of the tiles sampled across the plate could be read")
    shape, dtype = plate_geometry(headers)

    def source(site: int, channel: int) -> str:
        p = paths[site, channel]
        return p if isinstance(p, str) else f"{sites.at[site, 'site_id']} w{channels[channel]} (no file)"

    def strict(site: int, channel: int) -> np.ndarray:
        p = paths[site, channel]
        if not isinstance(p, str):
            raise TileError(f"{source(site, channel)}: channel file is missing")
        return read_png(p, shape, dtype)

    def lenient(site: int, channel: int) -> np.ndarray:
        p = paths[site, channel]
        if not isinstance(p, str):
            return np.zeros(shape, dtype)
        try:
            return read_png(p, shape, dtype)
        except TileError as exc:
            warnings.warn(f"{exc}; shown as zeros", PlateWarning)
            return np.zeros(shape, dtype)

    return Plate(
        root=root or path,
        kind="rxrx",
        sites=sites,
        stains=stains_for_channels([int(c) for c in channels]),
        tile_shape=shape,
        dtype=dtype,
        read_tile_strict=strict,
        read_tile_lenient=lenient,
        pixel_size_um=PIXEL_SIZE_UM.get(shape[0]),
        metadata_path=(root / "metadata.csv") if meta is not None else None,
        problems=problems,
    )
