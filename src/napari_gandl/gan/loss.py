"""GAN objectives: StyleGAN2 non-saturating logistic + lazy R1, or WGAN-GP.

Each function returns a scalar loss (already weighted) for one phase, so the
training loop stays independent of the objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "LOSSES",
    "g_loss",
    "d_loss",
    "r1_penalty",
    "gradient_penalty",
]

LOSSES = ("logistic", "wgan-gp")


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "logistic":
        return F.softplus(-fake_logits).mean()  # non-saturating
    if kind == "wgan-gp":
        return -fake_logits.mean()
    raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor,
           drift: float = 1e-3) -> torch.Tensor:
    if kind == "logistic":
        return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    if kind == "wgan-gp":
        # critic loss + small drift term that keeps the critic's output near 0
        return fake_logits.mean() - real_logits.mean() + drift * real_logits.square().mean()
    raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")


def r1_penalty(D, reals: torch.Tensor, gamma: float, augment_fn=None) -> torch.Tensor:
    """(gamma / 2) * E ||grad_x D(x)||^2 on real images (Mescheder et al. 2018)."""
    reals = reals.detach().requires_grad_(True)
    x = augment_fn(reals) if augment_fn is not None else reals
    logits = D(x)
    (grad,) = torch.autograd.grad(logits.float().sum(), reals, create_graph=True)
    return grad.float().square().sum(dim=[1, 2, 3]).mean() * (gamma / 2)


def gradient_penalty(D, reals: torch.Tensor, fakes: torch.Tensor, weight: float = 10.0,
                     augment_fn=None) -> torch.Tensor:
    """WGAN-GP: weight * E (||grad D(x_hat)|| - 1)^2 on real/fake interpolates."""
    alpha = torch.rand(reals.shape[0], 1, 1, 1, device=reals.device, dtype=reals.dtype)
    xh = (alpha * reals.detach() + (1 - alpha) * fakes.detach()).requires_grad_(True)
    x = augment_fn(xh) if augment_fn is not None else xh
    logits = D(x)
    (grad,) = torch.autograd.grad(logits.float().sum(), xh, create_graph=True)
    norm = grad.float().flatten(1).norm(dim=1)
    return weight * (norm - 1).square().mean()
