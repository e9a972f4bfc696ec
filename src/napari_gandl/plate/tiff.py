"""A folder of multichannel TIFF / OME-TIFF files, read as one plate with one site per file."""

from __future__ import annotations

import functools
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from napari_gandl.plate.model import (
    GEOMETRY_SAMPLE, Plate, PlateError, PlateWarning, TileError, check_tile, plate_geometry,
)
from napari_gandl.plate.stains import stains_for_channels, stains_from_names

SUFFIXES = (".tif", ".tiff")


def tiff_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def channel_axis(axes: str, shape: tuple[int, ...]) -> int | None:
    """Which axis of a TIFF series holds the channels (None for a single-channel image)."""
    for letter in "CS":
        if letter in axes:
            return axes.index(letter)
    if len(shape) == 3:  # unlabelled 3-D stack: the short axis is the channel axis
        return int(np.argmin(shape))
    return None


def as_cyx(array: np.ndarray, axes: str, source: str) -> np.ndarray:
    """Reorder a TIFF series to ``(channel, y, x)``; extra axes (Z, T) take their first plane."""
    c = channel_axis(axes, array.shape)
    if c is not None:
        array = np.moveaxis(array, c, 0)
    else:
        array = array[None]
    while array.ndim > 3:
        if array.shape[1] > 1:
            warnings.warn(f"{source}: extra axis of length {array.shape[1]}; using its first plane", PlateWarning)
        array = array[:, 0]
    if array.ndim != 3:
        raise TileError(f"{source}: cannot interpret an image of shape {array.shape} (axes {axes!r})")
    return array


def ome_channel_names(tif: tifffile.TiffFile) -> list[str]:
    if not tif.ome_metadata:
        return []
    try:
        tree = ET.fromstring(tif.ome_metadata)
    except ET.ParseError:
        return []
    return [c.get("Name", "") for c in tree.iter() if c.tag.endswith("}Channel") or c.tag == "Channel"]


def _cyx_shape(series, source: str) -> tuple[int, ...]:
    """``(channels, y, x)`` of a TIFF series from its header (a zero-copy view stands in for it)."""
    with warnings.catch_warnings():  # about extra axes: said when a file is read
        warnings.simplefilter("ignore", PlateWarning)
        return as_cyx(np.broadcast_to(np.zeros((), series.dtype), series.shape), series.axes, source).shape


def tiff_header(path: Path) -> tuple[tuple[int, int], np.dtype, int, list[str]]:
    """``((height, width), pixel type, channels, OME channel names)`` of a TIFF, from its header."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape = _cyx_shape(series, str(path))
            return tuple(shape[1:]), np.dtype(series.dtype), shape[0], ome_channel_names(tif)
    except TileError:
        raise
    except Exception as exc:  # tifffile raises several error types for broken files
        raise TileError(f"{path}: cannot read TIFF header ({exc})") from None


def read_tiff(path: Path, tile_shape: tuple[int, int], dtype, n_channels: int) -> np.ndarray:
    """One site ``(channel, y, x)`` of a folder whose files hold ``n_channels`` tiles of
    ``tile_shape`` and ``dtype``; a TileError names the file when it is unreadable or disagrees
    (checked on the header, before decoding)."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape = _cyx_shape(series, str(path))
            if shape[0] != n_channels:
                raise TileError(f"{path}: has {shape[0]} channels, the folder's files have {n_channels}")
            check_tile(shape[1:], series.dtype, tile_shape, dtype, str(path))
            return as_cyx(series.asarray(), series.axes, str(path))
    except TileError:
        raise
    except Exception as exc:  # tifffile raises several error types for broken files
        raise TileError(f"{path}: cannot decode TIFF ({exc})") from None


def open_tiff_folder(folder: Path) -> Plate:
    folder = folder.resolve()
    files = tiff_files(folder)
    if not files:
        raise PlateError(f"{folder}: no .tif/.tiff files")
    # Tile size, bit depth and channels: those most of a sample of file headers spread over the folder share.
    headers, names = {}, {}
    for i in np.unique(np.linspace(0, len(files) - 1, min(GEOMETRY_SAMPLE, len(files))).astype(int)):
        try:
            tile, pixels, channels, stain_names = tiff_header(files[i])
        except TileError as exc:
            warnings.warn(f"{exc}; skipped", PlateWarning)
            continue
        headers[str(files[i])], names[str(files[i])] = (tile, pixels, channels), stain_names
    if not headers:
        raise PlateError(f"{folder}: none of the TIFF files sampled across the folder can be read")
    tile_shape, dtype, n_channels = plate_geometry(headers)
    names = names[next(f for f, h in headers.items() if h == (tile_shape, dtype, n_channels))]
    stains = (
        stains_from_names(names) if len(names) == n_channels and all(names)
        else stains_for_channels(list(range(1, n_channels + 1)))
    )
    stems = [re.sub(r"\.ome$", "", p.stem, flags=re.I) for p in files]
    sites = pd.DataFrame(
        {
            "site_id": stems,
            "experiment": folder.name,
            "plate": 1,
            "well": stems,
            "site": 1,
            "path": [str(p) for p in files],
            "problem": "",
        }
    )

    @functools.lru_cache(maxsize=4)
    def read_site_lenient(site: int) -> np.ndarray:
        try:
            return read_strict_site(site)
        except TileError as exc:
            warnings.warn(f"{exc}; shown as zeros", PlateWarning)
            return np.zeros((n_channels, *tile_shape), dtype)

    @functools.lru_cache(maxsize=4)
    def read_strict_site(site: int) -> np.ndarray:
        return read_tiff(files[site], tile_shape, dtype, n_channels)

    return Plate(
        root=folder,
        kind="tiff",
        sites=sites,
        stains=stains,
        tile_shape=tuple(tile_shape),
        dtype=np.dtype(dtype),
        read_tile_strict=lambda site, c: read_strict_site(site)[c],
        read_tile_lenient=lambda site, c: read_site_lenient(site)[c],
        chunk_channels=n_channels,
    )
