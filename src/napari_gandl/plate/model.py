"""The Plate: a table of sites beside a lazy ``(site, channel, y, x)`` pixel array."""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from napari_gandl.plate.stains import Stain

if TYPE_CHECKING:
    import dask.array as da


class PlateError(ValueError):
    """A folder or file that cannot be read as a plate; the message names it."""


class TileError(PlateError):
    """One tile (image file) that cannot be decoded or has the wrong shape."""


class PlateWarning(UserWarning):
    """Something in a plate was skipped or repaired; the message names the file."""


# Reads one tile: (site index, channel index) -> 2-D array, or raises TileError.
TileReader = Callable[[int, int], np.ndarray]


def fit_tile(tile: np.ndarray, shape: tuple[int, int], source: str, strict: bool) -> np.ndarray:
    """Check a tile against the plate's tile shape; crop or zero-pad it when not strict."""
    if tile.shape == shape:
        return tile
    message = f"{source}: tile is {tile.shape[0]}x{tile.shape[1]} pixels, the plate's tiles are {shape[0]}x{shape[1]}"
    if strict:
        raise TileError(message)
    warnings.warn(message + "; cropped/zero-padded to fit", PlateWarning, stacklevel=3)
    fitted = np.zeros(shape, tile.dtype)
    h, w = min(shape[0], tile.shape[0]), min(shape[1], tile.shape[1])
    fitted[:h, :w] = tile[:h, :w]
    return fitted


class TileStack:
    """Array-like ``(site, channel, y, x)`` view over tile files, read on indexing.

    Dask calls ``__getitem__`` once per chunk; each call decodes only the tiles
    it covers. A small LRU cache keeps the last tiles so that stepping back and
    forth between sites in napari does not decode them again.
    """

    def __init__(self, shape, dtype, read_tile: TileReader, cache_tiles: int = 64):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = 4
        self._read_tile = read_tile
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_tiles = cache_tiles
        self._lock = threading.Lock()

    def tile(self, site: int, channel: int) -> np.ndarray:
        key = (site, channel)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        tile = self._read_tile(site, channel)
        with self._lock:
            self._cache[key] = tile
            while len(self._cache) > self._cache_tiles:
                self._cache.popitem(last=False)
        return tile

    def __getitem__(self, index) -> np.ndarray:
        """Basic indexing (integers and slices) as numpy does it."""
        if not isinstance(index, tuple):
            index = (index,)
        index = index + (slice(None),) * (4 - len(index))
        as_slices = tuple(slice(i, i + 1) if isinstance(i, (int, np.integer)) else i for i in index)
        if not all(isinstance(i, slice) for i in as_slices):
            raise IndexError("TileStack supports integer and slice indexing only")
        sites = range(*as_slices[0].indices(self.shape[0]))
        channels = range(*as_slices[1].indices(self.shape[1]))
        ys = range(*as_slices[2].indices(self.shape[2]))
        xs = range(*as_slices[3].indices(self.shape[3]))
        out = np.zeros((len(sites), len(channels), len(ys), len(xs)), self.dtype)
        if out.size:
            for i, s in enumerate(sites):
                for j, c in enumerate(channels):
                    out[i, j] = self.tile(s, c)[as_slices[2], as_slices[3]]
        dropped = tuple(k for k, i in enumerate(index) if isinstance(i, (int, np.integer)))
        return out.squeeze(axis=dropped) if dropped else out


class ChannelTiles:
    """Array-like ``(site, y, x)`` view of one channel of a TileStack: a napari layer's data.

    Indexing decodes only the tiles it covers (through the stack's cache). napari
    slices a plain array-like in about 0.1 ms, where slicing the dask array costs
    25 ms per slice plus 0.3 s for dask's first compute (measured on 1,536 sites,
    see benchmarks/bench_open.py), and opening a plate slices each layer twice.
    """

    def __init__(self, stack: TileStack, channel: int):
        self._stack, self._channel = stack, channel
        self.shape = (stack.shape[0], *stack.shape[2:])
        self.dtype = stack.dtype
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if not isinstance(index, tuple):
            index = (index,)
        if len(index) > 3:
            raise IndexError(f"too many indices for a {self.ndim}-d array")
        return self._stack[(index[0] if index else slice(None), self._channel, *index[1:])]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Every site of the channel (what numpy asks for): decodes the whole channel."""
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def _percentiles(values: np.ndarray, q: tuple[float, float]) -> tuple[float, float]:
    """``np.percentile`` of 8/16-bit pixels from a histogram (5x faster on 4 M pixels:
    0.02 s against 0.12 s per channel, measured; opening a plate is timed in bench_open)."""
    if values.dtype in (np.uint8, np.uint16):
        cumulative = np.cumsum(np.bincount(values))
        ranks = np.asarray(q) / 100 * (cumulative[-1] - 1)
        return tuple(float(v) for v in np.searchsorted(cumulative, ranks, side="right"))
    return tuple(float(v) for v in np.percentile(values, q))


@dataclass
class Plate:
    """A screen (or part of one) opened for reading.

    ``sites`` has one row per site, aligned with axis 0 of ``data``; its
    ``problem`` column is empty for sites whose files were all found.
    """

    root: Path
    kind: str  # "rxrx" or "tiff"
    sites: pd.DataFrame
    stains: list[Stain]
    tile_shape: tuple[int, int]
    dtype: np.dtype
    read_tile_strict: TileReader
    read_tile_lenient: TileReader
    chunk_channels: int = 1  # channels decoded together (1 for PNG tiles, all for a TIFF)
    pixel_size_um: float | None = None
    metadata_path: Path | None = None
    problems: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._stack = TileStack(
            (len(self.sites), len(self.stains), *self.tile_shape), self.dtype, self.read_tile_lenient
        )
        self._data = None

    @property
    def n_sites(self) -> int:
        return len(self.sites)

    @property
    def n_channels(self) -> int:
        return len(self.stains)

    @property
    def channel_names(self) -> list[str]:
        return [s.name for s in self.stains]

    @property
    def usable_sites(self) -> np.ndarray:
        return np.flatnonzero(self.sites["problem"].to_numpy() == "")

    @property
    def data(self) -> da.Array:
        """Lazy ``(site, channel, y, x)`` array; a chunk is one tile (or one TIFF)."""
        if self._data is None:
            import dask.array as da  # imported here: opening a plate in napari does not need dask

            chunks = (1, self.chunk_channels, *self.tile_shape)
            self._data = da.from_array(
                self._stack,
                chunks=chunks,
                name=f"gandl-plate-{id(self):x}",
                meta=np.empty((0, 0, 0, 0), self.dtype),
                asarray=False,
                fancy=False,
            )
        return self._data

    def channel(self, channel: int) -> ChannelTiles:
        """Lazy ``(site, y, x)`` array of one channel, read tile by tile (napari's layer data)."""
        return ChannelTiles(self._stack, channel)

    def read_tile(self, site: int, channel: int) -> np.ndarray:
        """One tile, decoded now; raises TileError naming the file if it is unreadable."""
        return self.read_tile_strict(site, channel)

    def read_site(self, site: int) -> np.ndarray:
        """All channels of one site as ``(C, H, W)``; raises TileError naming a bad file."""
        return np.stack([self.read_tile_strict(site, c) for c in range(self.n_channels)])

    def contrast_limits(self, n_sample_sites: int = 4) -> list[tuple[float, float]]:
        """Per-channel display range from a few sites spread over the plate.

        Reads ``n_sample_sites`` sites, never the whole plate. The middle site,
        which napari shows first, is one of them, so showing it reads nothing new.
        """
        candidates = self.usable_sites if len(self.usable_sites) else np.arange(self.n_sites)
        first_shown = (self.n_sites - 1) // 2
        spread = candidates[np.linspace(0, len(candidates) - 1, n_sample_sites).astype(int)]
        sample_sites = list(dict.fromkeys([first_shown, *map(int, spread)]))[:n_sample_sites]
        # Decoding releases the GIL, so the sample tiles are read in parallel.
        keys = [(s, c) for c in range(self.n_channels) for s in sample_sites]
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            tiles = dict(zip(keys, pool.map(lambda key: self._stack.tile(*key), keys)))
        limits = []
        for c in range(self.n_channels):
            values = np.concatenate([tiles[s, c].ravel() for s in sample_sites])
            lo, hi = _percentiles(values, (0.5, 99.9)) if values.size else (0, 1)
            if hi <= lo:
                hi = lo + 1
            limits.append((float(lo), float(hi)))
        return limits

    def site_label(self, site: int) -> str:
        row = self.sites.iloc[site]
        return f"{row['experiment']} plate {row['plate']} well {row['well']} site {row['site']}"
