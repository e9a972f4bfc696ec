"""Adam with ``torch.optim.Adam``'s update and state layout.

Hand-written because of a measurement: constructing a ``torch.optim``
optimiser imports TorchDynamo, which costs several seconds per process on a
small CPU -- noticeable at every ``gandl train`` start and every torchrun rank.
"""

from __future__ import annotations

import torch


class Adam:
    """Adam (Kingma & Ba); ``state_dict()`` holds tensors and plain numbers only."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = [p for p in params]
        self.lr, self.betas, self.eps = float(lr), tuple(float(b) for b in betas), float(eps)
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        self.step_count += 1
        b1, b2 = self.betas
        bc1 = 1 - b1**self.step_count
        bc2 = 1 - b2**self.step_count
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v / bc2).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)

    def state_dict(self) -> dict:
        return {
            "state": {i: {"exp_avg": m, "exp_avg_sq": v}
                      for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq))},
            "step": self.step_count,
            "param_groups": [{"lr": self.lr, "betas": list(self.betas), "eps": self.eps}],
        }

    def load_state_dict(self, sd: dict):
        if len(sd["state"]) != len(self.params):
            raise ValueError("optimiser state does not match the network")
        self.step_count = int(sd["step"])
        g = sd["param_groups"][0]
        self.lr, self.betas, self.eps = float(g["lr"]), tuple(g["betas"]), float(g["eps"])
        for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq)):
            m.copy_(sd["state"][i]["exp_avg"])
            v.copy_(sd["state"][i]["exp_avg_sq"])
