"""Handcrafted, CellProfiler-style per-site features: the comparison embedding.

For every site and stain: intensity mean, sd and 5/25/50/75/95th
percentiles; gradient and Laplacian energy; local variance in 3x3 and 9x9
windows; grey-level co-occurrence contrast (8 levels) at distances 1 and 4
pixels; density of bright spots (local maxima above median + 4 robust sd,
per 1000 px^2); and gradient energy relative to the variance (scale-free
"sharpness").  Sites are read and processed in batches, so memory stays
bounded whatever the plate size.

The result has the same shape as an embedding table: ``site_id``, the
plate's metadata columns, then float32 feature columns named
``{stain}_{feature}``.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
from scipy import ndimage

FEATURES = ("mean", "sd", "p05", "p25", "p50", "p75", "p95", "grad_energy", "lap_energy",
            "locvar3", "locvar9", "glcm_contrast1", "glcm_contrast4", "spot_density", "sharpness")


def _stain_label(name: str, k: int) -> str:
    label = re.sub(r"[^0-9A-Za-z]+", "_", str(name)).strip("_")
    return label or f"ch{k + 1}"


def site_features(batch: np.ndarray) -> np.ndarray:
    """Features of a batch of sites ``(B, C, H, W)`` -> ``(B, C, len(FEATURES))``."""
    x = np.asarray(batch, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    B, C, H, W = x.shape
    flat = x.reshape(B, C, -1)
    mean = flat.mean(-1)
    sd = flat.std(-1)
    pct = np.percentile(flat, [5, 25, 50, 75, 95], axis=-1)               # (5, B, C)
    gy = np.diff(x, axis=2)
    gx = np.diff(x, axis=3)
    grad = (gy ** 2).mean((2, 3)) + (gx ** 2).mean((2, 3))
    lap = ndimage.laplace(x, axes=(2, 3)) if _has_axes() else _laplace(x)
    lap_e = (lap ** 2).mean((2, 3))
    locvar = []
    x2 = x * x
    for size in (3, 9):
        m1 = ndimage.uniform_filter(x, size=(1, 1, size, size), mode="reflect")
        m2 = ndimage.uniform_filter(x2, size=(1, 1, size, size), mode="reflect")
        locvar.append(np.clip(m2 - m1 * m1, 0, None).mean((2, 3)))
    # grey-level co-occurrence contrast on 8 levels between the 1st and 99th percentile
    lo = np.percentile(flat, 1, axis=-1)[..., None, None]
    hi = np.percentile(flat, 99, axis=-1)[..., None, None]
    q = np.floor(np.clip((x - lo) / np.maximum(hi - lo, 1e-6), 0, 0.9999) * 8)
    contrast = []
    for d in (1, 4):
        ch = ((q[..., :, d:] - q[..., :, :-d]) ** 2).mean((2, 3))
        cv = ((q[..., d:, :] - q[..., :-d, :]) ** 2).mean((2, 3))
        contrast.append(0.5 * (ch + cv))
    # bright spots: 3x3 local maxima above median + 4 robust sd (MAD), so
    # pixel noise does not count and a few spots do not raise the threshold
    med = pct[2]
    mad = np.median(np.abs(flat - med[..., None]), axis=-1) * 1.4826
    mx = ndimage.maximum_filter(x, size=(1, 1, 3, 3), mode="nearest")
    thr = (med + 4 * np.maximum(mad, 0.5))[..., None, None]
    spots = ((x == mx) & (x > thr)).sum((2, 3)) * (1000.0 / (H * W))
    sharp = grad / np.maximum(sd ** 2, 1e-6)
    out = np.stack([mean, sd, *pct, grad, lap_e, *locvar, *contrast, spots, sharp], axis=-1)
    return out.astype(np.float32)


def _has_axes() -> bool:
    import inspect
    return "axes" in inspect.signature(ndimage.laplace).parameters


def _laplace(x: np.ndarray) -> np.ndarray:
    k = np.zeros((1, 1, 3, 3), np.float32)
    k[0, 0] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    return ndimage.convolve(x, k, mode="reflect")


def feature_names(channel_names: Sequence[str]) -> list[str]:
    return [f"{_stain_label(c, k)}_{f}" for k, c in enumerate(channel_names) for f in FEATURES]
