"""ConvAE: a convolutional autoencoder trained on the plate; the bottleneck is the embedding.

The paper's autoencoder comparator (after Wallace et al., with residual
connections): a residual encoder takes a training-resolution tile to a
256-d code, a mirrored decoder rebuilds the tile, and the mean squared
error trains both.  Tiles are the crops GAN-DL trains on, with the same
augmentations.  Unlike the paper, no perceptual loss: it needs an ImageNet
ResNet-50, which cannot be downloaded here.  A site's embedding is the code
averaged over the tiles covering it.
"""

from __future__ import annotations


import torch.nn.functional as F
from torch import nn

from napari_gandl.comparators.tiles import ResEncoder, TileTrainConfig, _ResBlock

DEFAULTS = dict(resolution=64, batch=32, lr=1e-3,
                network=dict(dim=256, widths=[16, 32, 64, 128, 256]),
                augment=dict(p=0.5))  # its own, fixed (GAN-DL adapts its p from 0)


class ConvAE(nn.Module):
    def __init__(self, in_ch: int, resolution: int, dim: int = 256, widths=(16, 32, 64, 128, 256)):
        super().__init__()
        self.encoder = ResEncoder(in_ch, widths)
        side = resolution // self.encoder.reduction
        if side < 1 or side * self.encoder.reduction != resolution:
            raise ValueError(f"ConvAE resolution must be a multiple of {self.encoder.reduction}, "
                             f"got {resolution}")
        self.shape = (widths[-1], side, side)
        self.to_code = nn.Linear(widths[-1] * side * side, dim)
        self.from_code = nn.Linear(dim, widths[-1] * side * side)
        layers = []
        for cin, cout in zip(widths[::-1][:-1], widths[::-1][1:]):
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, padding=1),
                       nn.GroupNorm(8, cout), nn.SiLU(), _ResBlock(cout)]
        layers.append(nn.Conv2d(widths[0], in_ch, 3, padding=1))
        self.decoder = nn.Sequential(*layers)
        self.dim = dim

    def embed(self, x):
        return self.to_code(self.encoder(x).flatten(1))

    def decode(self, code):
        return self.decoder(F.silu(self.from_code(code)).view(-1, *self.shape))

    def loss(self, x, aug):
        x = aug(x)
        return F.mse_loss(self.decode(self.embed(x)), x)


def build(n_stains: int, cfg: TileTrainConfig) -> ConvAE:
    return ConvAE(n_stains, cfg.resolution, **cfg.network)
