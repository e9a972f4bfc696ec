"""torchrun process groups: gradients and buffers averaged over ranks (gloo on CPU, NCCL on CUDA)."""

from __future__ import annotations

import os

import torch


def process_group():
    """``torch.distributed`` when this process is one rank of an initialised group, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Initialise the process group when launched by torchrun; (rank, world)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def broadcast_modules(modules) -> None:
    """Rank 0's parameters and buffers to every rank."""
    dist = process_group()
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(module) -> None:
    """Mean of ``module``'s gradients (and buffers) over the ranks, in one all-reduce."""
    dist = process_group()
    if dist is None:
        return
    world = dist.get_world_size()
    params = [p for p in module.parameters() if p.grad is not None]
    bufs = list(module.buffers())
    flat = torch.cat([p.grad.flatten() for p in params] + [b.flatten().float() for b in bufs])
    dist.all_reduce(flat)
    flat /= world
    off = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[off : off + n].view_as(p.grad))
        off += n
    for b in bufs:
        n = b.numel()
        b.copy_(flat[off : off + n].view_as(b).to(b.dtype))
        off += n


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (unchanged without a process group)."""
    dist = process_group()
    if dist is None:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.broadcast(t, src=0)
    return bool(t.item())
