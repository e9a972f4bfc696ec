"""Stain mismatch: real crops whose stains do not lie on the same cells, shown to GAN-DL's discriminator as fakes.

The adversarial loss asks D only for what tells the current generator's
images from real ones, and a generator that draws each stain plausibly
can leave D blind to where one stain lies relative to another -- yet an
infection can be just that (a stain leaving the nucleus, an organelle
collapsing onto another).  With ``--mismatch W`` every discriminator step
also sees half a batch of real crops in which one stain, chosen at random
per crop, is replaced by the same stain of another crop of the same site:
each stain alone is real, with the site's own intensities and texture,
only the stains no longer belong together.  D learns to call them fake,
weighted ``W`` against the generator's fakes (negative data augmentation,
Sinha et al. 2021).  The generator's loss is unchanged.
"""

from __future__ import annotations

import torch


def mismatched(reals: torch.Tensor, partners: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``reals`` ``[N, C, H, W]`` with, in each crop, one random stain taken from the same crop of
    ``partners`` (another crop of its site)."""
    n, c = reals.shape[:2]
    if c < 2:
        raise ValueError("stain mismatch needs at least two stains")
    stain = torch.randint(0, c, (n,), device=reals.device, generator=generator)
    take = stain.view(n, 1, 1, 1) == torch.arange(c, device=reals.device).view(1, c, 1, 1)
    return torch.where(take, partners.to(reals.device, reals.dtype), reals)
