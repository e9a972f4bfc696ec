"""A small network on D's embedding that trains beside D (the site contrast's projection, code recovery's
regressor): its own Adam, its gradients averaged across DDP processes, saved with the checkpoint so a
run resumes exactly. It is not part of the embedding."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def mlp(dim: int, out: int) -> nn.Sequential:
    """``dim -> dim -> out`` with a SiLU between."""
    return nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, out))


class AuxiliaryHead:
    def __init__(self, head: nn.Module, device, lr: float = 1e-3,
                 sync: Callable[[nn.Module], None] | None = None):
        from napari_gandl.torch_utils.optim import Adam

        self.head = head.to(device)
        self.opt = Adam(self.head.parameters(), lr=lr, betas=(0.9, 0.99))
        self.sync = sync

    def zero_grad(self):
        self.opt.zero_grad(set_to_none=True)

    def step(self):
        if self.sync is not None:
            self.sync(self.head)
        self.opt.step()

    def state_dict(self) -> dict:
        return {"head": self.head.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, sd: dict):
        self.head.load_state_dict(sd["head"])
        self.opt.load_state_dict(sd["opt"])
