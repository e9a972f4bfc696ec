"""What checking a checkpoint's integrity costs, on a checkpoint of the ``paper`` preset's size.

A ``paper`` run (256 px, StyleGAN2 widths of 512, 5 stains) is built with
random weights and Adam moments (one optimiser step on zero gradients fills
them: the file then holds everything a real run's does), saved as a run
saves it, then timed: the CRC-32 check of every zip member that
:func:`napari_gandl.torch_utils.checkpoint.read_tensors` does before loading,
``torch.load(weights_only=True)`` alone, and the two together. Each figure is
the median of five repeats with the file in the page cache (the check reads
the file once; from a cold disk that read brings it into the cache, where
``torch.load`` then finds it). Writes its section of docs/benchmarks.md.

    python benchmarks/bench_checkpoint.py [--no-report]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def paper_payload() -> dict:
    from napari_gandl.gan.checkpoint import FORMAT
    from napari_gandl.gan.config import make_config
    from napari_gandl.gan.networks import NetworkConfig, build_networks

    cfg = make_config("paper", device="cpu")
    net = NetworkConfig.from_dict({**cfg.network, "img_channels": 5, "resolution": cfg.resolution})
    G, D, G_ema = build_networks(net, torch.device("cpu"))
    optimisers = {}
    for name, model in (("opt_G", G), ("opt_D", D)):
        opt = torch.optim.Adam(model.parameters(), lr=cfg.g_lr)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()  # fills both Adam moments, as in a real run's checkpoint
        optimisers[name] = opt.state_dict()
    return {"format": FORMAT, "G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
            **optimisers, "cur_nimg": 0, "step": 0, "elapsed_s": 0.0, "config": cfg.to_dict()}


def median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-report", action="store_true", help="print the section, leave docs/benchmarks.md alone")
    args = ap.parse_args()
    from _report import publish

    from napari_gandl.torch_utils.checkpoint import check_integrity, read_tensors, save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"
        t0 = time.perf_counter()
        save_checkpoint(path, paper_payload())
        save_s = time.perf_counter() - t0
        size = path.stat().st_size
        what = "GAN checkpoint"
        check_integrity(path, what)  # into the page cache
        check_s = median_time(lambda: check_integrity(path, what))
        load_s = median_time(lambda: torch.load(path, map_location="cpu", weights_only=True))
        both_s = median_time(lambda: read_tensors(path, what))
    load = os.getloadavg()[0]
    body = f"""
A checkpoint of the `paper` preset (256 px, widths of 512, 5 stains; G, D, G_ema and both Adam
states): **{size / 2**20:.0f} MiB**, written in {save_s:.1f} s (atomic, fsynced). Median of 5, file in
the page cache:

| step | seconds | MB/s |
|---|---|---|
| CRC-32 check of every zip member | {check_s:.2f} | {size / 1e6 / check_s:.0f} |
| `torch.load(weights_only=True)` alone | {load_s:.2f} | {size / 1e6 / load_s:.0f} |
| both (what loading a checkpoint does) | {both_s:.2f} | |

The check adds **{100 * check_s / load_s:.0f} %** to a load ({check_s:.2f} s once per `gandl embed`,
`gandl train --resume` or model opened in napari). From a cold disk it is the read that brings the
file into the page cache, where `torch.load` then finds it, so the disk reads the file once either way.
1-minute load average at the end of this run: {load:.1f} (other developers' tests were running
on this 2-core machine).
"""
    publish("checkpoint", "Checkpoint integrity check", body, write=not args.no_report)


if __name__ == "__main__":
    main()
