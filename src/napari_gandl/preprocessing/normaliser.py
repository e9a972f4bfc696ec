"""Per-stain normalisation: raw intensities to about [-1, 1], fitted on a sample of the plate's sites."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from napari_gandl.config import Config
from napari_gandl.plate.model import bit_depth


@dataclass
class Normalizer(Config):
    """Per-stain affine map from raw intensities to roughly [-1, 1]."""

    low: list = field(default_factory=list)
    high: list = field(default_factory=list)
    dtype: str = ""  # pixel type of the tiles it was fitted on (the plate's bit depth); "" if not recorded


    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(…, C, H, W) raw -> float32 normalised."""
        lo = np.asarray(self.low, np.float32).reshape(-1, 1, 1)
        hi = np.asarray(self.high, np.float32).reshape(-1, 1, 1)
        return ((x.astype(np.float32) - lo) * (2.0 / (hi - lo)) - 1.0).astype(np.float32)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        lo = np.asarray(self.low, np.float32).reshape(-1, 1, 1)
        hi = np.asarray(self.high, np.float32).reshape(-1, 1, 1)
        return (np.asarray(x, np.float32) + 1.0) * ((hi - lo) / 2.0) + lo


def spread_sites(plate, n: int) -> np.ndarray:
    """Up to ``n`` of the plate's unflagged sites spread evenly over the plate (a ValueError when it has none)."""
    cand = plate.unflagged_sites
    if len(cand) == 0:
        raise ValueError(f"plate {plate.root} has no usable sites to train on")
    pick = np.unique(np.linspace(0, len(cand) - 1, min(n, len(cand))).round().astype(int))
    return cand[pick]


def read_spread(plate, n: int, read) -> list:
    """``read(site)`` of up to ``n`` sites spread over the plate; a site that cannot be read (a
    TileError naming its file) is skipped with a warning, and a ValueError says when none could be."""
    sites = spread_sites(plate, n)
    out = []
    for site in sites:
        try:
            out.append(read(int(site)))
        except ValueError as exc:
            warnings.warn(f"site {int(site)} skipped: {exc}", stacklevel=3)
    if not out:
        raise ValueError(f"plate {plate.root}: none of the {len(sites)} sites sampled across it could be read")
    return out


def fit_normalizer(plate, cfg) -> Normalizer:
    """Per-stain low/high percentiles (``cfg.low_pct``, ``cfg.high_pct``) over a spread-out sample
    of ``cfg.norm_sites`` sites (``cfg``: a :class:`~napari_gandl.preprocessing.sampling.DataConfig`)."""
    per_channel = [[] for _ in range(plate.n_channels)]
    rng = np.random.default_rng(0)
    for img in read_spread(plate, cfg.norm_sites, plate.read_site):
        for ch in range(plate.n_channels):
            v = img[ch].ravel()
            if v.size > 20000:
                v = rng.choice(v, 20000, replace=False)
            per_channel[ch].append(v)
    low, high = [], []
    for ch, parts in enumerate(per_channel):
        v = np.concatenate(parts).astype(np.float64)
        lo, hi = np.percentile(v, [cfg.low_pct, cfg.high_pct])
        if not hi > lo:
            hi = lo + 1.0
        low.append(float(lo))
        high.append(float(hi))
    return Normalizer(low, high, np.dtype(plate.dtype).name)


def check_bit_depth(normalizer: Normalizer, plate, model) -> None:
    """A one-line ValueError when ``plate``'s pixels are of another type than the tiles ``model``'s
    normaliser was fitted on: the same intensity means another thing there (a 16-bit tile reads
    up to 256 times brighter than an 8-bit one). Nothing is checked for a normaliser that did not
    record its type (runs written before it did)."""
    if normalizer.dtype and np.dtype(normalizer.dtype) != np.dtype(plate.dtype):
        raise ValueError(f"{plate.root} holds {bit_depth(plate.dtype)} tiles but {model} was "
                         f"trained on {bit_depth(normalizer.dtype)} tiles; convert the plate to "
                         f"{bit_depth(normalizer.dtype)} or train a model on it")
