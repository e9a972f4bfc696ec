"""SimCLR: contrastive learning on the plate's tiles; the encoder output is the embedding.

Two augmented views of each training tile (the augmentations GAN-DL's
discriminator sees: flips, 90 degree rotations, shifts, per-stain gain and
offset) go through a residual encoder and a projection head; the NT-Xent
loss (Chen et al. 2020) pulls the two views of a tile together and pushes
the other tiles of the batch away.  As in SimCLR, the embedding is the
encoder's globally pooled output (256-d), not the projection.  A site's
embedding is averaged over the tiles covering it.
"""

from __future__ import annotations


import torch
from torch import nn

from napari_gandl.comparators.tiles import ResEncoder, TileTrainConfig
from napari_gandl.torch_utils.contrastive import nt_xent

DEFAULTS = dict(resolution=64, batch=64, lr=1e-3,
                network=dict(proj_dim=128, temperature=0.2, widths=[16, 32, 64, 128, 256]),
                augment=dict(p=0.5))  # its own, fixed (GAN-DL adapts its p from 0)


class SimCLR(nn.Module):
    def __init__(self, in_ch: int, proj_dim: int = 128, temperature: float = 0.2,
                 widths=(16, 32, 64, 128, 256)):
        super().__init__()
        self.encoder = ResEncoder(in_ch, widths)
        self.dim = widths[-1]
        self.head = nn.Sequential(nn.Linear(self.dim, self.dim), nn.SiLU(), nn.Linear(self.dim, proj_dim))
        self.temperature = float(temperature)

    def embed(self, x):
        return self.encoder(x).mean(dim=(2, 3))

    def loss(self, x, aug):
        return nt_xent(self.head(self.embed(torch.cat([aug(x), aug(x)]))), self.temperature)


def build(n_stains: int, cfg: TileTrainConfig) -> SimCLR:
    return SimCLR(n_stains, **cfg.network)
