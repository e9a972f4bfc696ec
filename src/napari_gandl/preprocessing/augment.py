"""Differentiable augmentations that respect fluorescence microscopy.

Applied to real *and* generated images before the discriminator sees them
(as in DiffAugment / ADA), so that D cannot memorise a small screen and the
generator is not pushed to reproduce the augmentations.  Every operation is
differentiable w.r.t. the image and treats stains independently: no RGB,
colour-space or hue assumptions.

* random horizontal / vertical flips and 90 degree rotations (cells have no
  canonical orientation),
* integer translation with zero padding (background is dark),
* per-stain intensity jitter: an independent gain and offset per channel
  (staining and exposure vary between wells and plates).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from napari_gandl.config import Config

__all__ = ["AugmentConfig", "augment"]


@dataclass
class AugmentConfig(Config):
    p: float = 0.5  # probability of each transform, per image
    flips: bool = True
    rot90: bool = True
    translate: float = 0.125  # max shift as a fraction of the image size
    gain: float = 0.2  # per-stain gain ~ exp(N(0, gain))
    offset: float = 0.1  # per-stain offset ~ N(0, offset) (images are ~[-1, 1])


    @property
    def enabled(self) -> bool:
        return self.p > 0


def _mask(n, p, device, generator):
    return (torch.rand(n, device=device, generator=generator) < p).view(n, 1, 1, 1)


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None):
    """Augment a batch ``[N, C, H, W]``; each image draws its own transforms."""
    if not cfg.enabled:
        return x
    n, c, h, w = x.shape
    dev = x.device
    p = cfg.p
    if cfg.flips:
        x = torch.where(_mask(n, p, dev, generator), x.flip(3), x)
        x = torch.where(_mask(n, p, dev, generator), x.flip(2), x)
    if cfg.rot90 and h == w:
        k = torch.randint(0, 4, (n,), device=dev, generator=generator)
        k = torch.where(_mask(n, p, dev, generator).view(n), k, torch.zeros_like(k))
        out = x
        for r in (1, 2, 3):
            out = torch.where((k == r).view(n, 1, 1, 1), torch.rot90(x, r, dims=(2, 3)), out)
        x = out
    if cfg.translate > 0:
        max_dy = max(1, int(round(h * cfg.translate)))
        max_dx = max(1, int(round(w * cfg.translate)))
        on = _mask(n, p, dev, generator).view(n)
        dy = torch.randint(-max_dy, max_dy + 1, (n,), device=dev, generator=generator) * on
        dx = torch.randint(-max_dx, max_dx + 1, (n,), device=dev, generator=generator) * on
        # gather with zero padding: out[y, x] = in[y - dy, x - dx]
        ys = torch.arange(h, device=dev).view(1, h) - dy.view(n, 1)  # [n, h]
        xs = torch.arange(w, device=dev).view(1, w) - dx.view(n, 1)  # [n, w]
        valid = ((ys >= 0) & (ys < h)).view(n, 1, h, 1) & ((xs >= 0) & (xs < w)).view(n, 1, 1, w)
        ys = ys.clamp(0, h - 1)
        xs = xs.clamp(0, w - 1)
        x = x.gather(2, ys.view(n, 1, h, 1).expand(n, c, h, w))
        x = x.gather(3, xs.view(n, 1, 1, w).expand(n, c, h, w))
        x = x * valid.to(x.dtype) + (-1.0) * (~valid).to(x.dtype)  # pad with "black"
    if cfg.gain > 0 or cfg.offset > 0:
        on = _mask(n, p, dev, generator).view(n, 1)
        g = torch.exp(torch.randn(n, c, device=dev, generator=generator) * cfg.gain)
        o = torch.randn(n, c, device=dev, generator=generator) * cfg.offset
        g = torch.where(on, g, torch.ones_like(g))
        o = torch.where(on, o, torch.zeros_like(o))
        # gain about the background level (-1) so dark stays dark
        x = (x + 1.0) * g.view(n, c, 1, 1).to(x.dtype) - 1.0 + o.view(n, c, 1, 1).to(x.dtype)
    return x
