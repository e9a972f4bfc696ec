"""Tiles of a site and training crops from a Plate, with per-stain normalisation fitted on the plate.

Method-neutral: any embedder that works on tiles (GAN-DL, the comparators)
cuts sites with :func:`site_tiles` and trains on :class:`TileSampler` crops.
Memory is bounded by the batch size plus a small byte-capped cache of
(downsampled) sites: the plate is read site by site on demand and never
loaded whole.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from cachetools import LRUCache

from napari_gandl.config import Config
from napari_gandl.preprocessing.crops import crop_at
from napari_gandl.preprocessing.normaliser import Normalizer, fit_normalizer

__all__ = [
    "DataConfig",
    "Normalizer",
    "TileSampler",
    "fit_normalizer",
    "downsample",
    "tile_positions",
    "site_tiles",
]


@dataclass
class DataConfig(Config):
    scale: int = 1  # integer box-downsampling factor applied to whole tiles
    norm_sites: int = 48  # sites read to fit the per-stain normalisation
    low_pct: float = 0.5
    high_pct: float = 99.8
    # byte cap of the decoded-site cache (0 disables): 1 GB holds a 700-site plate of 256^2 5-stain tiles,
    # which a 256 MB cache made decode again and again
    cache_mb: float = 1024.0
    # "tiles": training images anywhere in a site; "crops": centred on a cell, whose nucleus
    # is found in the nuclear stain (see napari_gandl.embedding.crops)
    sampling: str = "tiles"



def downsample(img: np.ndarray, scale: int) -> np.ndarray:
    """Box-average ``(C, H, W)`` by an integer factor (cropping the remainder)."""
    if scale <= 1:
        return img.astype(np.float32, copy=False)
    c, h, w = img.shape
    h2, w2 = h // scale, w // scale
    x = img[:, : h2 * scale, : w2 * scale].astype(np.float32)
    return x.reshape(c, h2, scale, w2, scale).mean(axis=(2, 4))


def tile_positions(length: int, size: int) -> list[int]:
    """Start offsets of the fewest ``size`` windows covering ``length`` evenly."""
    if length <= size:
        return [0]
    n = math.ceil(length / size)
    return [int(round(v)) for v in np.linspace(0, length - size, n)]


def site_tiles(img: np.ndarray, size: int) -> np.ndarray:
    """Cut a ``(C, H, W)`` image into ``size``-square tiles covering all of it.

    Images smaller than ``size`` are padded with the background value (-1).
    Returns ``(T, C, size, size)``.
    """
    c, h, w = img.shape
    if h < size or w < size:
        pad = np.full((c, max(h, size), max(w, size)), -1.0, np.float32)
        pad[:, :h, :w] = img
        img, (c, h, w) = pad, pad.shape
    tiles = [
        img[:, y : y + size, x : x + size]
        for y in tile_positions(h, size)
        for x in tile_positions(w, size)
    ]
    return np.stack(tiles).astype(np.float32, copy=False)


SAMPLINGS = ("tiles", "crops")


class TileSampler:
    """Random ``resolution``-square crops of normalised, downsampled sites.

    With ``cfg.sampling == "crops"`` every crop is centred on a random cell of
    the site (nuclei found when the site is read, kept in a byte-capped cache
    too); sites without nuclei are skipped.

    ``sample(n, rng)`` reads at most ``n`` sites (fewer when cached); decoded
    sites live in an LRU cache capped at ``cfg.cache_mb`` megabytes, so memory
    does not grow with the plate.
    """

    def __init__(self, plate, resolution: int, cfg: DataConfig, normalizer: Normalizer,
                 sites=None):
        self.plate = plate
        self.resolution = int(resolution)
        self.cfg = cfg
        self.norm = normalizer
        self.sites = np.asarray(plate.unflagged_sites if sites is None else sites, dtype=np.int64)
        if len(self.sites) == 0:
            raise ValueError(f"plate {plate.root} has no usable sites to train on")
        h, w = plate.tile_shape
        self.shape = (h // max(cfg.scale, 1), w // max(cfg.scale, 1))
        if min(self.shape) < self.resolution:
            raise ValueError(
                f"tiles of {plate.root} are {h}x{w} pixels; downsampled by {cfg.scale} they are "
                f"smaller than the training resolution {self.resolution} -- lower --resolution "
                f"or the downsampling factor"
            )
        self._cache = LRUCache(maxsize=max(1, int(cfg.cache_mb * 2**20)), getsizeof=lambda a: a.nbytes)
        self._bad: set[int] = set()
        if cfg.sampling not in SAMPLINGS:
            raise ValueError(f"--sampling must be one of {', '.join(SAMPLINGS)}, got {cfg.sampling!r}")
        self.cells = cfg.sampling == "crops"
        if self.cells:
            from napari_gandl.preprocessing.crops import nuclear_channel

            self.nuclear = nuclear_channel(plate.channel_names)
            # a site's nucleus centres (about 5 KB for 300 cells) are kept for as many sites as a
            # sixteenth of the site cache's bytes holds, not for every site visited: on a whole
            # screen that would grow to gigabytes
            self._centres = LRUCache(maxsize=max(1, int(cfg.cache_mb * 2**20 / 16)), getsizeof=lambda a: a.nbytes)

    def load(self, site: int) -> np.ndarray:
        """Normalised, downsampled ``(C, h, w)`` float16 array of one site."""
        img = self._cache.get(site)
        if img is None:
            img = self.norm(downsample(self.plate.read_site(int(site)), self.cfg.scale)).astype(np.float16)
            if img.nbytes <= self._cache.maxsize:
                self._cache[site] = img
        return img

    def sample(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        r = self.resolution
        out = np.empty((n, self.plate.n_channels, r, r), np.float32)
        self.last_sites = np.empty(n, np.int64)  # the site of each crop (batch labels for --align)
        i = 0
        while i < n:
            site = int(self.sites[rng.integers(len(self.sites))])
            if site in self._bad:
                continue
            try:
                img = self.load(site)
            except ValueError as exc:  # TileError: skip the site, keep training
                warnings.warn(f"skipping site {site} during training: {exc}", stacklevel=2)
                self._bad.add(site)
                if len(self._bad) >= len(self.sites):
                    raise
                continue
            if self.cells and len(self.nuclei(site, img)) == 0:
                continue
            out[i] = self._crop(site, img, rng)
            self.last_sites[i] = site
            i += 1
        return torch.from_numpy(out)

    def partners(self, rng: np.random.Generator, within: str = "site") -> torch.Tensor:
        """The positive pairs of GAN-DL's contrast (``gan/contrast.py``): for each crop of the last
        ``sample``, another random crop of its site (``within="site"``, read from the cache while it
        holds them) or of another site of its well (``"well"``; its own site when the well has no
        other usable one)."""
        r = self.resolution
        out = np.empty((len(self.last_sites), self.plate.n_channels, r, r), np.float32)
        for i, site in enumerate(self.last_sites):
            site = int(site)
            mate = self._well_mate(site, rng) if within == "well" else None
            out[i] = self._crop(*(mate or (site, self.load(site))), rng)
        return torch.from_numpy(out)

    @functools.cached_property
    def well_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per site of the plate, an integer naming its plate and one naming its well."""
        meta = self.plate.sites
        return (meta.groupby(["experiment", "plate"], sort=False).ngroup().to_numpy(),
                meta.groupby(["experiment", "plate", "well"], sort=False).ngroup().to_numpy())

    @functools.cached_property
    def _sites_by_well(self) -> tuple[np.ndarray, np.ndarray]:
        """The training sites sorted by well, and their well codes (for a well's sites by bisection)."""
        wells = self.well_codes[1][self.sites]
        order = np.argsort(wells, kind="stable")
        return self.sites[order], wells[order]

    def wells_with_one_site(self) -> tuple[int, int]:
        """How many of the training sites' wells have a single training site, of how many wells."""
        sizes = np.unique(self._sites_by_well[1], return_counts=True)[1]
        return int((sizes == 1).sum()), len(sizes)

    def _well_mate(self, site: int, rng: np.random.Generator) -> tuple[int, np.ndarray] | None:
        """A random other usable training site of ``site``'s well and its image; None when there is none."""
        sites, wells = self._sites_by_well
        well = self.well_codes[1][site]
        members = sites[np.searchsorted(wells, well, "left"):np.searchsorted(wells, well, "right")]
        for mate in rng.permutation([m for m in members.tolist() if m != site and m not in self._bad]).tolist():
            try:
                img = self.load(mate)
            except ValueError:  # TileError: as in sample, the site is skipped from now on
                self._bad.add(mate)
                continue
            if not self.cells or len(self.nuclei(mate, img)):
                return mate, img
        return None

    def _crop(self, site: int, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random ``resolution``-square of a loaded site: centred on one of its cells (crops sampling)
        or anywhere in it (tiles)."""
        r = self.resolution
        if self.cells:
            centres = self.nuclei(site, img)
            return crop_at(img, centres[rng.integers(len(centres))], r)
        _, h, w = img.shape
        y = int(rng.integers(h - r + 1))
        x = int(rng.integers(w - r + 1))
        return img[:, y : y + r, x : x + r]

    def nuclei(self, site: int, img: np.ndarray) -> np.ndarray:
        """Nucleus centroids of a (loaded) site, found once while cached; a site without any is set aside."""
        centres = self._centres.get(site)
        if centres is None:
            from napari_gandl.preprocessing.crops import find_nuclei

            centres = find_nuclei(img[self.nuclear], self.resolution)
            if centres.nbytes <= self._centres.maxsize:
                self._centres[site] = centres
            if len(centres) == 0:
                self._bad.add(site)
                if len(self._bad) >= len(self.sites):
                    raise ValueError(f"no nuclei found in the {self.plate.channel_names[self.nuclear]} "
                                     f"stain of any site of {self.plate.root}; train on tiles instead")
        return centres
