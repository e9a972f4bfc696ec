"""Cell-centred crops (BioGANs style) and site profiles aggregated from cells.

Nuclei are found in the nuclear stain (Hoechst / DAPI / DNA) with
scikit-image: Gaussian smoothing, Otsu's threshold, connected components
labelled, and the centroids of those not too small to be a nucleus taken
with ``regionprops``.  Each nucleus gives one ``size``-square crop centred on it;
a crop that would leave the image is shifted inside it (the cell is then
off-centre rather than padded with invented background).

A site's profile is the mean of its cells' features. Their standard deviation
and, per feature, the fraction of cells outlying a reference population were
part of it once; across the benchmark suite each made the profile worse (with
both, it ranked compounds below the tile average on every screen), so they were
removed (docs/benchmarks.md, "What a site's profile should be").
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage.filters import gaussian, threshold_otsu
from skimage.measure import label, regionprops

__all__ = [
    "aggregate_cells",
    "crop_at",
    "find_nuclei",
    "nuclear_channel",
    "site_crops",
]

NUCLEAR_DYES = ("hoechst", "dapi", "dna", "nuclei", "nuclear", "draq5")


def nuclear_channel(channel_names) -> int:
    """Index of the nuclear stain among ``channel_names`` (Hoechst, DAPI, DNA, ...).

    Falls back to the first channel (RxRx's w1 is Hoechst) with a warning."""
    for k, name in enumerate(channel_names):
        words = str(name).lower().replace("-", " ").replace("_", " ").split()
        if any(w in NUCLEAR_DYES for w in words):
            return k
    warnings.warn(f"no Hoechst/DAPI/DNA stain among {list(channel_names)}; finding nuclei in the "
                  f"first channel", stacklevel=2)
    return 0


def find_nuclei(dna: np.ndarray, size: int, sigma: float | None = None) -> np.ndarray:
    """Centroids ``(n, 2)`` (row, column) of the nuclei in a 2-D nuclear-stain image.

    ``size`` is the crop size the nuclei are for: the image is smoothed with
    ``sigma = max(1, size / 64)`` (unless given) so chromatin texture does
    not split a nucleus, and objects smaller than ``max(6, (size / 32)^2)``
    pixels are noise.  An image without foreground (flat) has no nuclei."""
    img = np.asarray(dna, np.float32)
    if img.ndim != 2:
        raise ValueError(f"find_nuclei needs a 2-D image, got shape {img.shape}")
    smooth = gaussian(img, sigma=max(1.0, size / 64) if sigma is None else sigma, preserve_range=True)
    if not np.isfinite(smooth).all() or np.ptp(smooth) <= 1e-6 * max(1.0, np.abs(smooth).max()):
        return np.zeros((0, 2), np.float64)
    min_area = max(6, int((size / 32) ** 2))
    props = [p for p in regionprops(label(smooth > threshold_otsu(smooth))) if p.area >= min_area]
    if not props:
        return np.zeros((0, 2), np.float64)
    return np.array([p.centroid for p in props], np.float64)


def crop_at(image: np.ndarray, centre, size: int) -> np.ndarray:
    """The ``size``-square crop of ``(C, H, W)`` centred on ``centre``, kept inside the image."""
    _, h, w = image.shape
    y = int(np.clip(round(centre[0]) - size // 2, 0, h - size))
    x = int(np.clip(round(centre[1]) - size // 2, 0, w - size))
    return image[:, y : y + size, x : x + size]


def site_crops(image: np.ndarray, size: int, nuclear: int = 0, max_cells: int | None = None,
               centres: np.ndarray | None = None) -> np.ndarray:
    """Cell-centred crops ``(n_cells, C, size, size)`` of one ``(C, H, W)`` site.

    ``nuclear``: index of the nuclear stain.  ``max_cells``: keep at most
    this many cells, evenly spread over the detected ones (deterministic).
    ``centres``: use these nucleus centroids instead of detecting them.
    A site smaller than ``size`` or without nuclei gives ``(0, C, size, size)``."""
    image = np.asarray(image)
    c, h, w = image.shape
    if h < size or w < size:
        return np.zeros((0, c, size, size), image.dtype)
    if centres is None:
        centres = find_nuclei(image[nuclear], size)
    if max_cells is not None and len(centres) > max_cells:
        centres = centres[np.linspace(0, len(centres) - 1, max_cells).round().astype(int)]
    if len(centres) == 0:
        return np.zeros((0, c, size, size), image.dtype)
    return np.stack([crop_at(image, ctr, size) for ctr in centres])


def aggregate_cells(cell_features: np.ndarray) -> np.ndarray:
    """A site's profile ``(F,)``: the mean of its cells' features ``(n_cells, F)``; NaN for a site
    without cells (it has no cell profile)."""
    f = np.asarray(cell_features, np.float64)
    if f.ndim != 2:
        raise ValueError(f"cell features must be (n_cells, features), got shape {f.shape}")
    if len(f) == 0:
        return np.full(f.shape[1], np.nan, np.float32)
    return f.mean(axis=0).astype(np.float32)
