"""Small vision transformers for the self-supervised methods (DINO, MAE).

The blocks are torch's own pre-norm ``nn.TransformerEncoderLayer``; what is
added here is how a tile becomes tokens.  Positions are fixed 2-D sine-cosine
embeddings (as in MAE) computed for any grid, spread over the same extent
whatever the grid's size: a 32 px crop cut into 4 x 4 patches gets the
positions an 8 x 8 grid of the 64 px tile spans, which is what DINO's
interpolated position embeddings do for its local crops.
"""

from __future__ import annotations

import torch
from torch import nn


def sincos_positions(h: int, w: int, dim: int, extent: float | None = None) -> torch.Tensor:
    """``(h * w, dim)`` fixed position embeddings of an ``h x w`` grid of patches (row-major),
    the grid spread over ``extent`` patches (default: its own size)."""
    if dim % 4:
        raise ValueError(f"the token width must be a multiple of 4 for 2-D positions, got {dim}")
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * ((extent or h) / h)
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * ((extent or w) / w)
    freq = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    y = (ys.view(h, 1, 1) * freq).expand(h, w, -1)
    x = (xs.view(1, w, 1) * freq).expand(h, w, -1)
    return torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=-1).reshape(h * w, dim)


def transformer(dim: int, depth: int, heads: int) -> nn.TransformerEncoder:
    """``depth`` pre-norm transformer blocks (GELU MLP 4x wide, no dropout), batch first."""
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


def init_weights(module: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear weights and zero biases, as ViT and MAE initialise."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ViT(nn.Module):
    """All stains of a patch in one token: ``(n, C, r, r)`` tiles -> ``(n, dim)`` CLS tokens.

    ``resolution`` is the tile size the positions are laid out for; smaller crops
    (DINO's local views) are spread over the same extent.
    """

    def __init__(self, in_ch: int, resolution: int, patch: int = 8, dim: int = 192, depth: int = 4,
                 heads: int = 3):
        super().__init__()
        if resolution % patch:
            raise ValueError(f"the tile size {resolution} must be a multiple of the patch size {patch}")
        self.patch, self.extent, self.out_dim = patch, resolution // patch, dim
        self.to_tokens = nn.Conv2d(in_ch, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = transformer(dim, depth, heads)
        self.norm = nn.LayerNorm(dim)
        init_weights(self)
        nn.init.trunc_normal_(self.cls, std=0.02)
        w = self.to_tokens.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.to_tokens(x)
        h, w = t.shape[-2:]
        t = t.flatten(2).transpose(1, 2) + sincos_positions(h, w, t.shape[1], self.extent).to(t)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], dim=1)
        return self.norm(self.blocks(t))[:, 0]
