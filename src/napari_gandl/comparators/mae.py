"""A channel-agnostic masked autoencoder (after Kraus et al., CVPR 2024, CA-MAE; He et al. 2022, MAE).

Each stain of a tile is cut into ``patch`` x ``patch`` patches *on its own*, and
every patch becomes one token through a patch embedding shared by all stains,
plus a fixed 2-D position embedding and a learned embedding of its stain.  A
tile of C stains is thus C x L tokens, and the network never assumes how many
stains there are or in which order: a model trained on five stains embeds a
plate with any of them, in any order, by stain name.

Training hides a random 75 % of the tokens (over stains and positions
alike); a ViT encoder sees the rest, and a small transformer decoder, given
the encoded tokens and a mask token at every hidden place (with that place's
position and stain), predicts the hidden patches' pixels.  The loss is the
mean squared error on the hidden patches.  The augmentations are its own:
flips, 90 degree rotations, per-stain gain and offset.

A tile's embedding is the mean of the encoder's outputs over all its tokens
(nothing hidden), the same width whatever the stains; a site's embedding
averages its tiles' as GAN-DL's does.  ``preview`` draws tiles, their visible
tokens and their reconstructions into ``samples/`` during training.
"""

from __future__ import annotations

import torch
from torch import nn

from napari_gandl.comparators.tiles import TileTrainConfig
from napari_gandl.comparators.vit import init_weights, sincos_positions, transformer

DEFAULTS = dict(resolution=64, batch=32, lr=5e-4,
                network=dict(patch=8, dim=192, depth=4, heads=3, decoder_dim=128, decoder_depth=2,
                             decoder_heads=4, mask_ratio=0.75),
                augment=dict(p=0.5, translate=0.0))  # its own (GAN-DL's ADA adapts its p from 0)


class MAE(nn.Module):
    def __init__(self, n_stains: int, resolution: int, patch: int = 8, dim: int = 192, depth: int = 4,
                 heads: int = 3, decoder_dim: int = 128, decoder_depth: int = 2, decoder_heads: int = 4,
                 mask_ratio: float = 0.75):
        super().__init__()
        if resolution % patch:
            raise ValueError(f"the tile size {resolution} must be a multiple of the patch size {patch}")
        if not 0 < mask_ratio < 1:
            raise ValueError(f"the mask ratio must be between 0 and 1, got {mask_ratio}")
        self.patch, self.grid, self.mask_ratio, self.dim = patch, resolution // patch, float(mask_ratio), dim
        self.to_token = nn.Linear(patch * patch, dim)  # one for every stain
        self.stain = nn.Parameter(torch.empty(n_stains, dim))
        self.encoder = transformer(dim, depth, heads)
        self.norm = nn.LayerNorm(dim)
        self.to_decoder = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.empty(1, 1, decoder_dim))
        self.decoder_stain = nn.Parameter(torch.empty(n_stains, decoder_dim))
        self.decoder = transformer(decoder_dim, decoder_depth, decoder_heads)
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.to_pixels = nn.Linear(decoder_dim, patch * patch)
        init_weights(self)
        for p in (self.stain, self.mask_token, self.decoder_stain):
            nn.init.trunc_normal_(p, std=0.02)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, C, r, r)`` -> ``(n, C * L, patch**2)``: stain by stain, patches row-major."""
        n, c, h, w = x.shape
        p = self.patch
        x = x.reshape(n, c, h // p, p, w // p, p).permute(0, 1, 2, 4, 3, 5)
        return x.reshape(n, c * (h // p) * (w // p), p * p)

    def unpatch(self, tokens: torch.Tensor, c: int, h: int, w: int) -> torch.Tensor:
        n, p = len(tokens), self.patch
        return tokens.reshape(n, c, h // p, w // p, p, p).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)

    def _places(self, stain_ids: torch.Tensor, h: int, w: int, stains: torch.Tensor, width: int) -> torch.Tensor:
        """``(C * L, width)`` position + stain embedding of every token."""
        pos = sincos_positions(h // self.patch, w // self.patch, width).to(stains)
        return (stains[stain_ids].unsqueeze(1) + pos.unsqueeze(0)).reshape(-1, width)

    def _stain_ids(self, x, stain_ids):
        if stain_ids is None:
            stain_ids = torch.arange(x.shape[1])
        return torch.as_tensor(stain_ids, dtype=torch.long, device=x.device)

    def embed(self, x: torch.Tensor, stain_ids=None) -> torch.Tensor:
        """``(n, C, r, r)`` tiles -> ``(n, dim)``; ``stain_ids``: the model's index of each of the C
        stains (default: the training stains, in order)."""
        ids = self._stain_ids(x, stain_ids)
        tokens = self.to_token(self.patches(x)) + self._places(ids, *x.shape[-2:], self.stain, self.dim)
        return self.norm(self.encoder(tokens)).mean(dim=1)

    def reconstruct(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Hide a random ``mask_ratio`` of the tokens and predict them: ``(prediction, hidden)``,
        ``(n, C * L, patch**2)`` pixels and ``(n, C * L)`` 1 where a token was hidden."""
        n, c, h, w = x.shape
        ids = self._stain_ids(x, None)
        tokens = self.to_token(self.patches(x)) + self._places(ids, h, w, self.stain, self.dim)
        total = tokens.shape[1]
        keep = max(1, int(round(total * (1 - self.mask_ratio))))
        order = torch.rand(n, total, device=x.device, generator=generator).argsort(dim=1)
        kept = order[:, :keep]
        visible = tokens.gather(1, kept.unsqueeze(-1).expand(-1, -1, self.dim))
        encoded = self.to_decoder(self.norm(self.encoder(visible)))
        width = encoded.shape[-1]
        full = self.mask_token.expand(n, total, width).scatter(1, kept.unsqueeze(-1).expand(-1, -1, width), encoded)
        full = full + self._places(ids, h, w, self.decoder_stain, width)
        prediction = self.to_pixels(self.decoder_norm(self.decoder(full)))
        hidden = torch.ones(n, total, device=x.device).scatter(1, kept, 0.0)
        return prediction, hidden

    def loss(self, x, aug):
        x = aug(x)
        prediction, hidden = self.reconstruct(x)
        error = (prediction - self.patches(x)).square().mean(dim=-1)
        return (error * hidden).sum() / hidden.sum()

    def preview(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Tiles, what the encoder saw (hidden patches dark) and the reconstruction (the hidden
        patches predicted), one after the other: ``(3 n, C, r, r)``."""
        n, c, h, w = x.shape
        prediction, hidden = self.reconstruct(x, generator)
        patches, hidden = self.patches(x), hidden.unsqueeze(-1)
        seen = self.unpatch(patches * (1 - hidden) - hidden, c, h, w)  # hidden: background (-1)
        rebuilt = self.unpatch(patches * (1 - hidden) + prediction * hidden, c, h, w)
        return torch.cat([x, seen, rebuilt])


def build(n_stains: int, cfg: TileTrainConfig) -> MAE:
    return MAE(n_stains, cfg.resolution, **cfg.network)
