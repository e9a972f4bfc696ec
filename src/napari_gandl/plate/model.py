"""The Plate: a table of sites beside a lazy ``(site, channel, y, x)`` pixel array."""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import uuid
import warnings
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Generator, Iterator

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


@dataclass
class FileReport:
    """What listing a plate's folders found: each site's problem ("" when all its files are
    there), and one message per kind of problem, naming the files."""

    problems: np.ndarray  # one string per site, in site order
    messages: list[str]


# Lists a plate's folders: yields (folders listed, folders) as it goes, returns the FileReport.
FileLister = Callable[[], Generator[tuple[int, int], None, FileReport]]

# Decoded tiles kept in memory (64 MiB of 8-bit 1024x1024 tiles: the last dozen RxRx sites), so
# that stepping back to a site in napari decodes nothing and the contrast sample is not read twice.
CACHED_TILES = 64


def bit_depth(dtype) -> str:
    """``uint8`` -> "8-bit", ``uint16`` -> "16-bit", ``float32`` -> "32-bit float"."""
    dtype = np.dtype(dtype)
    return f"{8 * dtype.itemsize}-bit" + (" float" if dtype.kind == "f" else "")


def check_tile(shape: tuple[int, ...], dtype, plate_shape: tuple[int, ...], plate_dtype, source: str) -> None:
    """A TileError naming ``source`` when a tile's header (its ``shape`` and pixel ``dtype``, read
    before decoding) disagrees with the plate's. Such a tile is set aside, never decoded, cropped,
    padded or converted: only its site is lost, and a bad tile never costs more than a tile."""
    problems = []
    if tuple(shape) != tuple(plate_shape):
        problems.append(f"is {'x'.join(map(str, shape))} pixels, the plate's tiles are "
                        f"{'x'.join(map(str, plate_shape))}")
    if np.dtype(dtype) != np.dtype(plate_dtype):
        problems.append(f"is {bit_depth(dtype)}, the plate's tiles are {bit_depth(plate_dtype)}")
    if problems:
        raise TileError(f"{source}: tile " + " and ".join(problems))


# Tiles (or TIFF files) whose headers are read, spread over the plate, to learn its geometry.
GEOMETRY_SAMPLE = 16


def plate_geometry(headers: dict[str, tuple]) -> tuple:
    """The geometry most of the sampled tiles share, from ``{file: (shape, dtype, ...)}`` headers;
    a PlateWarning names the files that disagree (they are set aside when read)."""
    counts = Counter(headers.values())
    common = counts.most_common(1)[0][0]
    odd = [f for f, h in headers.items() if h != common]
    if odd:
        warnings.warn(f"{len(odd)} of {len(headers)} sampled tiles differ from the plate's "
                      f"{'x'.join(map(str, common[0]))} {bit_depth(common[1])} tiles and will be set aside: "
                      + ", ".join(odd[:3]) + (" ..." if len(odd) > 3 else ""), PlateWarning, stacklevel=3)
    return common


# Plates opened in this process, by name: unpickled here, a plate is the same object.
_PLATES_HERE: weakref.WeakValueDictionary[str, Plate] = weakref.WeakValueDictionary()


def _plate_in_this_process(name: str, source: str, fingerprint: tuple) -> Plate:
    plate = _PLATES_HERE.get(name)
    return plate if plate is not None else _opened_again(source, fingerprint)


@functools.lru_cache(maxsize=4)  # a worker process opens each plate once, not once per task
def _opened_again(source: str, fingerprint: tuple) -> Plate:
    from napari_gandl.plate import open_plate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlateWarning)  # said where the plate was first opened
        plate = open_plate(source)
    if plate.fingerprint != fingerprint:
        sites, channels, shape, dtype, _ = fingerprint
        raise PlateError(
            f"{source}: opened again in another process, it differs from the plate first opened "
            f"({plate.n_sites} sites, {plate.n_channels} stains, {'x'.join(map(str, plate.tile_shape))} "
            f"{bit_depth(plate.dtype)} tiles, against {sites}, {channels}, {'x'.join(map(str, shape))} "
            f"{bit_depth(dtype)}, or other site ids): every process must see the same files")
    return plate


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
    ``problem`` column is empty for sites whose files were all found. A plate
    opened from its metadata has not looked at its files yet (``list_files``):
    :meth:`check_files` lists them, in steps a background thread can report,
    and :attr:`file_report` (which :attr:`usable_sites` reads) lists them at
    once when nothing has yet.
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
    list_files: FileLister | None = None  # None: the files were listed when the plate was opened
    source: Path | None = None  # the folder open_plate was given: what another process opens again

    def __post_init__(self):
        self._cached_tile = functools.lru_cache(maxsize=CACHED_TILES)(self.read_tile_lenient)
        self._decoded_site = functools.lru_cache(maxsize=max(1, CACHED_TILES // max(1, len(self.stains))))(
            self._decode_site)
        self._decoders: ThreadPoolExecutor | None = None
        self._data = None
        self._stains: dict[int, da.Array] = {}
        self._name = f"gandl-plate-{uuid.uuid4().hex}"  # unique per opened plate: napari's dask cache keys chunks by name
        self._checking = threading.Lock()
        self._report = None if self.list_files else FileReport(self.sites["problem"].to_numpy(), list(self.problems))
        self._fingerprint = None
        _PLATES_HERE[self._name] = self

    # ---------------------------------------------------------------- in other processes
    def __reduce__(self):
        """A plate travels to other processes (dask.distributed or multiprocessing workers computing
        its layers' arrays) as its folder and fingerprint, not its tiles, caches or threads: each
        worker process opens the folder once, and refuses it if it holds other sites."""
        if self.source is None:
            raise PlateError(f"{self.root}: this plate was not opened from a folder by open_plate, "
                             "so another process cannot open it")
        return _plate_in_this_process, (self._name, str(self.source), self.fingerprint)

    @property
    def fingerprint(self) -> tuple:
        """What must match where the plate is opened again: sites, stains, tile size and bit depth."""
        if self._fingerprint is None:
            ids = hashlib.blake2b("\n".join(self.sites["site_id"].astype(str)).encode(), digest_size=8)
            self._fingerprint = (self.n_sites, self.n_channels, tuple(self.tile_shape), np.dtype(self.dtype).str,
                                 ids.hexdigest())
        return self._fingerprint

    # ---------------------------------------------------------------- the files
    @property
    def files_checked(self) -> bool:
        return self._report is not None

    def check_files(self) -> Iterator[tuple[int, int]]:
        """List the plate's folders, once, yielding ``(folders listed, folders)``; then sites whose
        files are missing get their ``problem`` (a new ``sites`` frame) and :attr:`file_report` is
        set. Closing the generator early leaves the plate unchecked. Returns (as the generator's
        value) whether this call did the listing."""
        with self._checking:
            if self._report is not None:
                return False
            report = yield from self.list_files()
            self.sites = self.sites.assign(problem=report.problems)
            self.problems.extend(report.messages)
            self._report = report
            return True

    @property
    def file_report(self) -> FileReport:
        """What the plate's files are missing; lists its folders now (and warns what it found)
        when no check has run yet."""
        if self._report is None:
            steps = self.check_files()
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    listed_here = done.value
                    break
            if listed_here:
                for message in self._report.messages:
                    warnings.warn(message, PlateWarning, stacklevel=2)
        return self._report

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
    def unflagged_sites(self) -> np.ndarray:
        """Sites not known to miss a file: the ``problem`` column as it stands, without listing the
        files (on a screen opened from its metadata that is a pass over every file, 1.5 M for
        RxRx19a). What browsing and training sample from; a site whose file turns out missing or
        damaged is skipped when it is read."""
        return np.flatnonzero(self.sites["problem"].to_numpy() == "")

    @property
    def usable_sites(self) -> np.ndarray:
        """Sites whose files were all found (the files are listed first if they have not been)."""
        return np.flatnonzero(self.file_report.problems == "")

    @property
    def data(self) -> da.Array:
        """Lazy ``(site, channel, y, x)`` dask array; a chunk is one tile (or one TIFF's channels).

        Computing a slice decodes only the tiles it covers, through the tile cache; a
        damaged tile comes out as zeros with a PlateWarning naming the file. For one
        stain, take :meth:`stain` rather than ``data[:, c]``.
        """
        if self._data is None:
            import dask.array as da  # imported here: scripts that only read the site table do not need it

            # A blockwise graph of one function over block indices: slicing it culls to the
            # chunks it covers without building a task per tile first (bench_open measures it).
            channel_chunks = (self.chunk_channels,) * (self.n_channels // self.chunk_channels)
            self._data = da.map_blocks(
                self._read_chunk,
                chunks=((1,) * self.n_sites, channel_chunks, (self.tile_shape[0],), (self.tile_shape[1],)),
                dtype=self.dtype,
                meta=np.empty((0, 0, 0, 0), self.dtype),
                name=self._name,
            )
        return self._data

    def _read_chunk(self, block_id: tuple[int, int, int, int]) -> np.ndarray:
        site, first = block_id[0], block_id[1] * self.chunk_channels
        return np.stack([self._cached_tile(site, c) for c in range(first, first + self.chunk_channels)])[None]

    def stain(self, channel: int) -> da.Array:
        """Lazy ``(site, y, x)`` dask array of one stain, a chunk per tile: what its napari layer holds.

        Equal to ``data[:, channel]``, but built on its own: slicing the plate's array along
        the channel axis makes a task per site, 0.9 s and 300 MB per stain on a 307,200-site
        screen, where a stain's own blockwise array takes 50 ms and makes none (measured).
        """
        if channel not in self._stains:
            import dask.array as da

            if not self._stains:  # one chunks tuple for every stain: 14 MB at 307,200 sites instead of 5 x 14
                self._stain_chunks = ((1,) * self.n_sites, (self.tile_shape[0],), (self.tile_shape[1],))
            self._stains[channel] = da.map_blocks(
                functools.partial(self._read_stain_chunk, channel),
                chunks=self._stain_chunks,
                dtype=self.dtype,
                meta=np.empty((0, 0, 0), self.dtype),
                name=f"{self._name}-w{channel}",
            )
        return self._stains[channel]

    def _read_stain_chunk(self, channel: int, block_id: tuple[int, int, int]) -> np.ndarray:
        site = block_id[0]
        if self.chunk_channels == 1 and self.n_channels > 1:
            self._decoded_site(site)
        return self._cached_tile(site, channel)[None]

    def _decode_site(self, site: int) -> None:
        """Decode every stain's tile of ``site`` into the tile cache at once, in parallel (PNG
        decoding releases the GIL): napari slices the stain layers one after the other, so the
        first layer of a new site waits for about one tile instead of each layer for its own
        (bench_scale's slider step). Run once per site while the site is among the last cached."""
        list(self._decoder_pool().map(lambda c: self._cached_tile(site, c), range(self.n_channels)))

    def _decoder_pool(self) -> ThreadPoolExecutor:
        """The plate's threads for decoding tiles in parallel (PNG decoding releases the GIL)."""
        if self._decoders is None:
            self._decoders = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                                                thread_name_prefix="gandl-decode")
        return self._decoders

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
        Sites known to miss files are avoided (it does not wait for the files to be listed).
        """
        unflagged = self.unflagged_sites
        candidates = unflagged if len(unflagged) else np.arange(self.n_sites)
        first_shown = (self.n_sites - 1) // 2
        spread = candidates[np.linspace(0, len(candidates) - 1, n_sample_sites).astype(int)]
        sample_sites = list(dict.fromkeys([first_shown, *map(int, spread)]))[:n_sample_sites]
        # Decoding releases the GIL, so the sample tiles are read in parallel.
        keys = [(s, c) for c in range(self.n_channels) for s in sample_sites]
        tiles = dict(zip(keys, self._decoder_pool().map(lambda key: self._cached_tile(*key), keys)))
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
