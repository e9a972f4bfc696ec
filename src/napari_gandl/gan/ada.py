"""Adaptive discriminator augmentation (ADA; Karras et al., NeurIPS 2020).

The probability ``p`` of every augmentation is steered by the overfitting
heuristic ``r_t = E[sign(D(real))]``: a discriminator that grows confident
on the real images (``r_t`` above the target, 0.6 in the paper) is
overfitting, so ``p`` rises; below the target it falls.  ``r_t`` is
averaged over ``interval`` steps and ``p`` moves by
``sign(r_t - target) * images_seen / (speed_kimg * 1000)``, so it can go
from 0 to 1 in ``speed_kimg`` thousand images (500 in the paper, which
trains for tens of thousands of kimg; a CPU run sees tens, hence a faster
default).
"""

from __future__ import annotations

import torch

__all__ = ["AdaptiveAugment"]


class AdaptiveAugment:
    def __init__(self, p: float, target: float = 0.6, speed_kimg: float = 10.0, interval: int = 4):
        if not 0 < target < 1:
            raise ValueError(f"ADA target must be between 0 and 1, got {target!r}")
        if not speed_kimg > 0 or int(interval) < 1:
            raise ValueError("ADA speed_kimg must be > 0 and interval >= 1")
        self.p = float(p)
        self.target = float(target)
        self.speed_kimg = float(speed_kimg)
        self.interval = int(interval)
        self.sign_sum = 0.0  # sum of sign(D(real)) since the last update
        self.count = 0.0
        self.rt = float("nan")  # the last r_t

    def accumulate(self, real_logits: torch.Tensor) -> None:
        self.sign_sum += float(real_logits.detach().sign().sum())
        self.count += real_logits.numel()

    def update(self, images: int, reduce=None) -> float:
        """Adjust ``p`` after ``images`` real images; ``reduce`` sums across processes."""
        acc = torch.tensor([self.sign_sum, self.count], dtype=torch.float64)
        if reduce is not None:
            reduce(acc)
        self.sign_sum = self.count = 0.0
        if acc[1] > 0:
            self.rt = float(acc[0] / acc[1])
            step = images / (self.speed_kimg * 1000)
            direction = (self.rt > self.target) - (self.rt < self.target)
            self.p = min(1.0, max(0.0, self.p + direction * step))
        return self.p

    def state_dict(self) -> dict:
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count, "rt": self.rt}

    def load_state_dict(self, state: dict) -> None:
        self.p = float(state["p"])
        self.sign_sum = float(state["sign_sum"])
        self.count = float(state["count"])
        self.rt = float(state["rt"])
