"""Multi-stain images for display: tiled grids, additive colour composites and PNG grids (Qt-free)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from napari_gandl.files import atomic_path


def tile_grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """``(N, C, H, W)`` images -> one ``(C, rows*(H+pad)-pad, cols*(W+pad)-pad)`` grid."""
    images = np.asarray(images, np.float32)
    n, c, h, w = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.zeros((c, rows * (h + pad) - pad, cols * (w + pad) - pad), np.float32)
    grid[:] = images.min(axis=(0, 2, 3))[:, None, None]
    for i in range(n):
        r, k = divmod(i, cols)
        grid[:, r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[i]
    return grid


def composite(stack: np.ndarray, colors, limits, gain: float = 1.0) -> np.ndarray:
    """``(..., C, H, W)`` intensities -> ``(..., H, W, 3)`` uint8 additive composite.

    Each stain is scaled by its contrast ``limits`` and tinted with its RGB
    colour, as napari's additive blending shows it (``gain`` < 1 dims the sum
    of many stains).
    """
    x = np.asarray(stack, np.float32)
    lo = np.asarray([lim[0] for lim in limits], np.float32).reshape(-1, 1, 1)
    hi = np.asarray([lim[1] for lim in limits], np.float32).reshape(-1, 1, 1)
    x = np.clip((x - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)
    rgb = np.einsum("...chw,ck->...hwk", x, np.asarray(colors, np.float32)[:, :3]) * gain
    return (np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def save_grid(images: np.ndarray, colours, path: Path, cols: int = 8) -> None:
    """``(N, C, H, W)`` normalised images (about [-1, 1]) as one PNG grid, each stain in its colour."""
    from PIL import Image

    images = np.asarray(images, np.float32)
    c = images.shape[1]
    grid = composite(tile_grid(images, cols=min(cols, len(images)), pad=0), colours, [(-1.0, 1.0)] * c,
                     gain=1.0 / max(1.0, c / 2.5))
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
