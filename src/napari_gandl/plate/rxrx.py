"""RxRx1 / RxRx19a folders: ``metadata.csv`` + ``images/{experiment}/Plate{n}/{well}_s{site}_w{channel}.png``.

The dataset root is the folder holding ``metadata.csv`` and ``images/``. A
user may point at the root, at an experiment folder or at one ``Plate{n}``
folder; ``metadata.csv`` is found by walking up, and its rows under that folder
are the sites: every tile's path follows from its row, so nothing is listed
before the first site is shown (RxRx19a has 1.5 M tiles). The plate folders
are listed afterwards, once, to find missing files (``Plate.check_files``).
Without ``metadata.csv`` the sites come from the file names alone.
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
    GEOMETRY_SAMPLE, FileReport, Plate, PlateError, PlateWarning, TileError, check_tile, plate_geometry,
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
    """``metadata.csv``, parsed strictly by pyarrow's CSV reader and checked by
    :func:`validate_metadata`; a PlateError names the file and the line of anything that cannot
    be parsed cleanly. Text columns that repeat (experiment, well, cell type, condition, compound)
    become categoricals, so that 300,000 rows take tens of MB, not hundreds."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    text = {name: pa.string() for name in ("site_id", "well_id", "experiment", "well")}
    try:
        # one thread: on 2 cores as fast, and 70 MB less resident after reading 300,000 rows (measured)
        table = pcsv.read_csv(path, read_options=pcsv.ReadOptions(use_threads=False),
                              parse_options=pcsv.ParseOptions(newlines_in_values=True),
                              convert_options=pcsv.ConvertOptions(column_types=text, strings_can_be_null=True))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise PlateError(f"{path}: cannot be parsed as CSV ({_csv_problem(path, str(exc))})") from None
    if path.read_bytes().count(b'"') % 2:  # pyarrow reads a quote left open at the end of the file to its end
        raise PlateError(f"{path}: cannot be parsed as CSV "
                         f"({_csv_problem(path, 'a quote opens a field that is never closed')})")
    # columns whose values repeat in the first rows (counting every row's distinct values took 0.4 s)
    head = table.slice(0, 10_000)
    repeating = [name for name, column in zip(head.column_names, head.columns)
                 if pa.types.is_string(column.type) and pc.count_distinct(column).as_py() <= len(head) // 2]
    meta = table.to_pandas()
    for name in repeating:
        meta[name] = meta[name].astype("category")
    del table, head
    meta = validate_metadata(meta, path)
    pa.default_memory_pool().release_unused()  # what pyarrow's allocator keeps after reading and checking (90 MB)
    return meta


def _csv_problem(path: Path, problem: str) -> str:
    """Where and why a CSV file cannot be parsed. pyarrow's messages do not say which line, so
    pandas' strict parser, which does, reads the file again to name it (only for a broken file)."""
    try:
        pd.read_csv(path, on_bad_lines="error", dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as found:
        detail = " ".join(str(found).split()).replace("Error tokenizing data. C error: ", "")
        quote = re.search(r"EOF inside string starting at row (\d+)", detail)  # a row counted from 0
        if quote:
            detail = f"line {int(quote[1]) + 1}: a quote opens a field that is never closed"
        return detail
    return " ".join(problem.split())


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
    typed = meta.copy(deep=False)  # copy-on-write: the columns replaced below are new, the rest shared
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
    """An RxRx dataset root, experiment or ``Plate{n}`` folder.

    With a ``metadata.csv`` at or above ``path``, the sites are its rows under ``path`` and every
    tile's path follows from its row: opening reads the metadata and 16 tile headers, and lists
    one plate folder (for the channels), however large the screen. The files are listed later, by
    :meth:`Plate.check_files` (napari does it in the background). Without ``metadata.csv``, or when
    it has no row under ``path``, the sites come from the tile file names found there.
    """
    path = path.resolve()
    root = find_root(path)
    if root is None:
        return _open_scanned(path, path)
    if not (root / "images").is_dir():
        raise PlateError(f"{root}: has metadata.csv but no images/ folder")
    metadata_path = root / "metadata.csv"
    meta = read_metadata(metadata_path)
    sites, folders, site_folder = _rows_under(path, root / "images", meta)
    if sites is None:
        scan_from = root / "images" if path == root else path
        warnings.warn(f"{metadata_path}: no row for the sites under {scan_from}; their metadata comes from "
                      "the file names", PlateWarning)
        return _open_scanned(scan_from, root)
    channels = _channels(folders)
    well_codes, well_names = pd.factorize(sites["well"])
    well_names = [str(w) for w in well_names]
    numbers = sites["site"].to_numpy()
    site_ids = sites["site_id"]

    def stem(site: int) -> str:
        return f"{well_names[well_codes[site]]}_s{numbers[site]}"

    def tile_path(site: int, channel: int) -> str:
        return os.path.join(folders[site_folder[site]], f"{stem(site)}_w{channels[channel]}.png")

    def list_files():
        """List each plate folder once: which tiles of the metadata's sites exist, and which tiles
        there have no row. A tile is present when its exact name (the one it is read by) is in
        its folder's listing: set lookups, 0.9 s of CPU for RxRx19a's 1.5 M tiles where parsing every
        name with a regular expression took 4.5 s of CPU (measured on bench_scale's screen);
        only the names left over are parsed, to name the tiles that have no row."""
        n_sites, n_channels = len(numbers), len(channels)
        present = np.zeros((n_sites, n_channels), bool)
        order = np.argsort(site_folder, kind="stable")
        bounds = np.searchsorted(site_folder[order], np.arange(len(folders) + 1))
        suffixes = [f"_w{c}.png" for c in channels]
        unlisted: list[str] = []
        for k, folder in enumerate(folders):
            rows = order[bounds[k]:bounds[k + 1]]
            try:
                names = set(os.listdir(folder))
            except OSError:  # the plate's folder is missing: so are its files
                names = set()
            folder_stems = [stem(site) for site in rows.tolist()]  # one folder's names at a time
            for c, suffix in enumerate(suffixes):
                present[rows, c] = [name + suffix in names for name in folder_stems]
            if len(names) > present[rows].sum():  # names that are not the rows' tiles: tiles without a row?
                expected = {name + suffix for name in folder_stems for suffix in suffixes}
                extra = (TILE_NAME.match(name) for name in names - expected)
                stems_without_row = {f"{m['well']}_s{int(m['site'])}" for m in extra if m} - set(folder_stems)
                unlisted += [f"{folder}{os.sep}{name}" for name in sorted(stems_without_row)]
            yield k + 1, len(folders)
        return _file_report(present, stem, site_ids, channels, tile_path, metadata_path, unlisted)

    shape, dtype = _geometry(tile_path, len(sites), len(channels), path)
    return _rxrx_plate(root, sites, channels, tile_path, shape, dtype, metadata_path=metadata_path,
                       list_files=list_files)


def _rows_under(path: Path, images: Path, meta: pd.DataFrame):
    """The metadata rows whose plate folder is at or below ``path`` (in slider order), the plate
    folders, and each row's folder (an index into them); ``(None, [], None)`` when there is none.
    An experiment is ``images/{experiment}``, or one level deeper (RxRx1 on Kaggle:
    ``images/train/HRCE-1``)."""
    pair = meta.groupby(["experiment", "plate"], sort=False, observed=True).ngroup().to_numpy()
    first = meta.iloc[np.unique(pair, return_index=True)[1]]
    levels = sorted(p for p in images.iterdir() if p.is_dir())
    located: dict[str, Path] = {}

    def experiment_folder(name: str) -> Path:
        if name not in located:
            located[name] = next((level / name for level in [images, *levels] if (level / name).is_dir()),
                                 images / name)
        return located[name]

    plate_folder = [experiment_folder(str(e)) / f"Plate{p}" for e, p in zip(first["experiment"], first["plate"])]
    inside = np.array([folder == path or path in folder.parents for folder in plate_folder], bool)
    if not inside.any():
        return None, [], None
    mine = inside[pair]
    sites = meta[mine].assign(_folder=pair[mine]).sort_values(KEY, kind="stable").reset_index(drop=True)
    for name in sites.columns:
        if isinstance(sites[name].dtype, pd.CategoricalDtype):
            sites[name] = sites[name].cat.remove_unused_categories()
    used, site_folder = np.unique(sites.pop("_folder").to_numpy(), return_inverse=True)
    front = ["site_id", *KEY]
    sites = sites[front + [c for c in sites.columns if c not in front]].assign(problem="")
    return sites, [str(plate_folder[u]) for u in used], site_folder.astype(np.int32)


def _channels(folders: list[str]) -> list[int]:
    """The channel numbers of the tiles in the first plate folder that has any."""
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                found = {int(m["channel"]) for e in entries if (m := TILE_NAME.match(e.name))}
        except OSError:
            continue
        if found:
            return sorted(found)
    raise PlateError(f"{folders[0]}: no <well>_s<site>_w<channel>.png tiles in the plate folders metadata.csv "
                     f"names ({len(folders)} folder(s))")


def _file_report(present, stem, site_ids, channels, tile_path, metadata_path, unlisted) -> FileReport:
    """Each site's problem and the messages that name the missing and unlisted files."""
    problems = np.full(len(present), "", dtype=object)
    gaps, empty = [], []
    for s in np.flatnonzero(~present.all(axis=1)):
        missing = np.flatnonzero(~present[s])
        if len(missing) == len(channels):
            problems[s] = "no image files"
            empty.append(str(site_ids.iat[s]))
            continue
        problems[s] = "missing " + ", ".join(f"{stem(s)}_w{channels[c]}.png" for c in missing)
        gaps.append(tile_path(s, missing[0]) + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
    messages = []
    if gaps:
        messages.append(f"{len(gaps)} site(s) miss channel files, shown as zeros: " + _summarise(gaps, 3))
    if empty:
        messages.append(f"{metadata_path}: {len(empty)} row(s) have no image files, shown as zeros: "
                        + _summarise(empty))
    if unlisted:
        messages.append(f"{metadata_path}: {len(unlisted)} site(s) have image files but no row, so they are not "
                        "shown (add rows for them to see them): " + _summarise(unlisted, 3))
    return FileReport(problems, messages)


def _open_scanned(scan_from: Path, root: Path | None) -> Plate:
    """Sites from the tile file names under ``scan_from`` (a folder without metadata rows)."""
    folders = plate_folders(scan_from)
    if not folders:
        raise PlateError(f"{scan_from}: no Plate<n> folders with <well>_s<site>_w<channel>.png tiles found")
    tiles = scan_tiles(folders)
    if tiles.empty:
        raise PlateError(f"{scan_from}: Plate folders hold no <well>_s<site>_w<channel>.png tiles")
    channels = sorted(int(c) for c in tiles["channel"].unique())
    files = tiles.pivot_table(index=KEY, columns="channel", values="path", aggfunc="first").reindex(columns=channels)
    sites = files.index.to_frame(index=False)
    sites.insert(0, "site_id", site_ids(sites))
    folder_of = {(e, p): str(folder) for e, p, folder in folders}
    site_folder = [folder_of[e, p] for e, p in zip(sites["experiment"], sites["plate"])]
    paths = [os.path.join(f, f"{w}_s{n}_w") for f, w, n in zip(site_folder, sites["well"], sites["site"])]

    def tile_path(site: int, channel: int) -> str:
        found = files.iat[site, channel]
        return found if isinstance(found, str) else f"{paths[site]}{channels[channel]}.png"

    # A site missing some channel keeps the others; the gap is recorded.
    missing = files.isna().to_numpy()
    present = ~missing
    wells, numbers = sites["well"].to_numpy(), sites["site"].to_numpy()
    report = _file_report(present, lambda s: f"{wells[s]}_s{numbers[s]}", sites["site_id"], channels, tile_path,
                          None, [])
    sites["problem"] = report.problems
    for message in report.messages:
        warnings.warn(message, PlateWarning)
    shape, dtype = _geometry(tile_path, len(sites), len(channels), scan_from, usable=np.flatnonzero(~missing.ravel()))
    return _rxrx_plate(root or scan_from, sites, channels, tile_path, shape, dtype, problems=report.messages)


def _geometry(tile_path, n_sites: int, n_channels: int, where: Path, usable=None) -> tuple:
    """Tile size and bit depth: those most of the headers of tiles spread over the plate share."""
    tiles = np.arange(n_sites * n_channels) if usable is None else usable
    headers = {}
    for i in tiles[np.unique(np.linspace(0, len(tiles) - 1, min(GEOMETRY_SAMPLE, len(tiles))).astype(int))]:
        p = tile_path(*divmod(int(i), n_channels))
        try:
            headers[p] = png_header(p)
        except TileError as exc:
            warnings.warn(str(exc), PlateWarning)
    if not headers:
        raise PlateError(f"{where}: none of the tiles sampled across the plate could be read")
    return plate_geometry(headers)


def _rxrx_plate(root, sites, channels, tile_path, shape, dtype, **extra) -> Plate:
    def strict(site: int, channel: int) -> np.ndarray:
        return read_png(tile_path(site, channel), shape, dtype)

    def lenient(site: int, channel: int) -> np.ndarray:
        try:
            return read_png(tile_path(site, channel), shape, dtype)
        except TileError as exc:
            warnings.warn(f"{exc}; shown as zeros", PlateWarning)
            return np.zeros(shape, dtype)

    return Plate(
        root=root,
        kind="rxrx",
        sites=sites,
        stains=stains_for_channels([int(c) for c in channels]),
        tile_shape=shape,
        dtype=dtype,
        read_tile_strict=strict,
        read_tile_lenient=lenient,
        pixel_size_um=PIXEL_SIZE_UM.get(shape[0]),
        **extra,
    )
