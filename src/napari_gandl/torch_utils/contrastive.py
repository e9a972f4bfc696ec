"""The NT-Xent contrastive loss (Chen et al. 2020, SimCLR), shared by SimCLR and GAN-DL's site contrast."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of ``z = cat([view_a, view_b])`` (``2n`` rows): row ``i`` of one view is the positive
    of row ``i`` of the other, every other row of both views a negative."""
    n = len(z) // 2
    z = F.normalize(z, dim=1)
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, positives)
