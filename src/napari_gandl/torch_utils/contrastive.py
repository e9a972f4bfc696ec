"""The NT-Xent contrastive loss (Chen et al. 2020, SimCLR), shared by SimCLR and GAN-DL's contrast."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z: torch.Tensor, temperature: float, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """NT-Xent of ``z = cat([view_a, view_b])`` (``2n`` rows): row ``i`` of one view is the positive
    of row ``i`` of the other, every other row of both views a negative -- except, with ``exclude``
    (``n x n`` bool), the rows of pairs ``(i, j)`` it marks, which are left out of ``i``'s denominator
    (in both views; a row's positive always counts)."""
    n = len(z) // 2
    z = F.normalize(z, dim=1)
    sim = (z @ z.T) / temperature
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    drop = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    if exclude is not None:
        drop = drop | exclude.to(z.device).repeat(2, 2)
        drop[torch.arange(2 * n, device=z.device), positives] = False
    return F.cross_entropy(sim.masked_fill(drop, float("-inf")), positives)
