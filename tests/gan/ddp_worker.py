"""Launched by torchrun from test_distributed.py: a few DDP training steps per rank.

Each rank reports a checksum of its own live weights so the test can check
that the ranks stayed in sync (same initial weights, all-reduced gradients)
while drawing different data.
"""

import json
import sys

import torch.distributed as dist

from napari_gandl.gan.trainer import Trainer
from napari_gandl.gan.config import make_config
from napari_gandl.plate import open_plate

plate, out, report = sys.argv[1], sys.argv[2], sys.argv[3]
align = sys.argv[4] if len(sys.argv) > 4 else "none"
contrastive = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
cfg = make_config("quick", resolution=32, batch=16, kimg=0.048, device="cpu", threads=1,
                  network=dict(channel_base=256, channel_max=32, d_channel_base=None,
                               d_channel_max=None), snapshot_kimg=1000.0, align=align,
                  contrastive=contrastive)
tr = Trainer(open_plate(plate), out, cfg)
first_reals = tr.sampler.sample(2, tr.np_rng).sum().item()
losses = [tr.step() for _ in range(3)]
tr.save(samples=False)
json.dump({
    "rank": dist.get_rank(),
    "world": dist.get_world_size(),
    "batch_per_rank": tr.batch_gpu,
    "nimg": tr.cur_nimg,
    "G": {k: float(p.double().sum()) for k, p in tr.G.named_parameters()},
    "D": {k: float(p.double().sum()) for k, p in tr.D.named_parameters()},
    "G_ema": {k: float(p.double().sum()) for k, p in tr.G_ema.named_parameters()},
    "data": first_reals,
    "align_head": {k: float(p.double().sum()) for k, p in tr.aligner.head.named_parameters()}
    if tr.aligner else {},
    "contrast_head": {k: float(p.double().sum()) for k, p in tr.contrast.head.named_parameters()}
    if tr.contrast else {},
    "loss_D": [l["loss_D"] for l in losses],
}, open(f"{report}/rank{dist.get_rank()}.json", "w"))
dist.destroy_process_group()
