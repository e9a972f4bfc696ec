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
  (staining and exposure vary between wells and plates),
* Gaussian blur (focus varies between sites), the same for every stain of an
  image and applied to each stain on its own.

:func:`random_resized_crops` cuts views of a batch for the self-supervised
methods (DINO's global and local crops): a random square of each image,
resampled to a given size, every stain with the same square.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from napari_gandl.config import Config

__all__ = ["AugmentConfig", "augment", "gaussian_blur", "random_resized_crops"]


@dataclass
class AugmentConfig(Config):
    p: float = 0.5  # probability of each transform, per image
    flips: bool = True
    rot90: bool = True
    translate: float = 0.125  # max shift as a fraction of the image size
    gain: float = 0.2  # per-stain gain ~ exp(N(0, gain))
    offset: float = 0.1  # per-stain offset ~ N(0, offset) (images are ~[-1, 1])
    blur: float = 0.0  # Gaussian blur with sigma ~ U(0, blur) pixels (0: off)


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
    if cfg.blur > 0:
        sigma = torch.rand(n, device=dev, generator=generator) * cfg.blur
        x = gaussian_blur(x, sigma * _mask(n, p, dev, generator).view(n).to(sigma.dtype))
    if cfg.gain > 0 or cfg.offset > 0:
        on = _mask(n, p, dev, generator).view(n, 1)
        g = torch.exp(torch.randn(n, c, device=dev, generator=generator) * cfg.gain)
        o = torch.randn(n, c, device=dev, generator=generator) * cfg.offset
        g = torch.where(on, g, torch.ones_like(g))
        o = torch.where(on, o, torch.zeros_like(o))
        # gain about the background level (-1) so dark stays dark
        x = (x + 1.0) * g.view(n, c, 1, 1).to(x.dtype) - 1.0 + o.view(n, c, 1, 1).to(x.dtype)
    return x


# gaussian_blur and random_resized_crops are torch's conv2d and grid_sample with a kernel or a
# sampling grid per image, like the ops above: torchvision's versions do not load with the CPU
# torch wheel (see comparators/densenet.py), and kornia would be a dependency for two ops.


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of ``[N, C, H, W]`` by its own Gaussian ``sigma[N]`` (pixels; 0 leaves it
    as it is), each stain on its own, edges reflected; differentiable in ``x``."""
    n, c, h, w = x.shape
    radius = int(torch.ceil(3 * sigma.max()).item()) if len(sigma) else 0
    radius = min(radius, (min(h, w) - 1) // 2)
    if radius < 1:
        return x
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.to(x.dtype).clamp(min=1e-6).view(n, 1)
    kernel = torch.exp(-0.5 * (offsets.view(1, -1) / s) ** 2)
    kernel = torch.where(sigma.view(n, 1) > 0, kernel, (offsets == 0).to(x.dtype).expand(n, -1))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, dim=0)  # one per image and stain
    k = 2 * radius + 1
    out = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(n * c, 1, 1, k), groups=n * c)
    out = F.conv2d(out, kernel.view(n * c, 1, k, 1), groups=n * c)
    return out.view(n, c, h, w)


def random_resized_crops(x: torch.Tensor, size: int, scale=(0.4, 1.0),
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """One random square crop of each image of ``[N, C, H, W]``, resampled (bilinear) to
    ``size`` x ``size``: its area is a fraction in ``scale`` of the image's, it lies wholly
    inside the image, and every stain of an image is cut the same way."""
    n = x.shape[0]
    dev = x.device
    lo, hi = float(scale[0]), float(scale[1])
    area = lo + (hi - lo) * torch.rand(n, device=dev, generator=generator)
    side = area.sqrt()  # as a fraction of the image's side
    centre = (torch.rand(n, 2, device=dev, generator=generator) * 2 - 1) * (1 - side).view(n, 1)
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0] = side
    theta[:, 1, 1] = side
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
