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

from napari_gandl.plate.model import Plate, PlateError, PlateWarning, TileError, fit_tile
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


def read_tiff(path: Path) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
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
    # Shape, dtype and channel names from the first readable file's header.
    header = None
    for path in files:
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                header = (series.shape, series.axes, series.dtype, ome_channel_names(tif))
            break
        except Exception as exc:
            warnings.warn(f"{path}: cannot read TIFF header ({exc}); skipped", PlateWarning)
    if header is None:
        raise PlateError(f"{folder}: none of the {len(files)} TIFF files can be read")
    shape, axes, dtype, names = header
    probe = as_cyx(np.zeros(shape, np.uint8), axes, str(files[0]))
    n_channels, tile_shape = probe.shape[0], probe.shape[1:]
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
        path = files[site]
        array = read_tiff(path)
        if array.shape[0] != n_channels:
            raise TileError(f"{path}: has {array.shape[0]} channels, the folder's first file has {n_channels}")
        return np.stack([fit_tile(a, tile_shape, str(path), strict=True) for a in array])

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
