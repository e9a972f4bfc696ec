"""Throughput of GAN-DL training and embedding on this machine, beside the other trainable methods.

* training images/s with the ``quick`` preset networks at 64x64 and 128x128
  (full training step: D phase with lazy R1, G phase, EMA), CPU;
* training images/s of the tile-trained methods (ConvAE, SimCLR, DINO with
  each backbone, the channel-agnostic MAE) at 64x64 with their own defaults,
  through the loop ``gandl train --method`` runs (a step's time: sampling,
  augmentation, forward, backward, optimiser; checkpoints excluded), and their
  embedding sites/s on the same sites as GAN-DL's;
* embedding sites/s of the GAN-DL discriminator (tiles at training resolution
  covering the site, averaged) against a DenseNet-121 (the paper's baseline:
  the package's DenseNet-121 with an N-stain stem, random initialisation since
  no weights can be downloaded) on the same sites: same input size, same stain count, same
  batch, same threads.  Goal: GAN-DL >= 3x faster.

    python benchmarks/bench_gan_throughput.py [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402


def rxrx19a_densenet(n_stains: int) -> nn.Module:
    """The paper's baseline network: the package's DenseNet-121 with an N-stain stem
    and a 1024-d embedding layer (as in the RxRx19a release), random initialisation."""
    from napari_gandl.comparators.densenet import DenseNet121

    net = DenseNet121()
    net.features.conv0 = nn.Conv2d(n_stains, 64, 7, stride=2, padding=3, bias=False)
    return nn.Sequential(_Pooled(net), nn.Linear(net.feature_dim, 1024)).eval()


class _Pooled(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.pooled(x)


def _timeit(fn, min_time=8.0, min_iters=3):
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - t0 < min_time:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def train_throughput(plate, resolution: int, batch: int, threads: int, seconds: float) -> float:
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.gan.config import make_config

    out = Path(tempfile.mkdtemp(prefix="gandl-bench-"))
    try:
        cfg = make_config("quick", resolution=resolution, batch=batch, kimg=1e9, device="cpu",
                          threads=threads)
        tr = Trainer(plate, out / "run", cfg)
        tr.step()  # includes the first (lazy) R1 pass
        n0, t0 = tr.cur_nimg, time.perf_counter()
        while time.perf_counter() - t0 < seconds or tr.step_idx < 18:  # >= one R1 interval
            tr.step()
        return (tr.cur_nimg - n0) / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(out, ignore_errors=True)


TILE_METHODS = {  # label: (method, network settings over its defaults)
    "ConvAE": ("convae", {}), "SimCLR": ("simclr", {}), "DINO, residual CNN": ("dino", {"backbone": "cnn"}),
    "DINO, small ViT": ("dino", {"backbone": "vit"}), "MAE (channel-agnostic)": ("mae", {}),
}


def tile_throughput(name: str, network: dict, plate, seconds: float, run: Path) -> tuple[float, int]:
    """Training img/s (and the batch) of a tile method's own defaults, measured over ``seconds`` of
    step time after two warm-up steps; the run is left in ``run`` for the embedding timing."""
    from napari_gandl.comparators.tiles import iterate_tile_training

    module = importlib.import_module(f"napari_gandl.comparators.{name}")
    defaults = {**module.DEFAULTS, "network": {**module.DEFAULTS["network"], **network}}
    first = None
    with closing(iterate_tile_training(name, module.build, defaults, plate, run, minutes=1e6, device="cpu")) as rows:
        for row in rows:
            if row["step"] == 2:
                first = row
            elif first is not None and row["elapsed_s"] - first["elapsed_s"] >= seconds:
                break
    return (row["nimg"] - first["nimg"]) / (row["elapsed_s"] - first["elapsed_s"]), defaults["batch"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=40.0, help="time per training measurement")
    ap.add_argument("--workdir", default=str(ROOT / ".bench" / "gan_quality"))
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile, for the report")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from napari_gandl.gan.checkpoint import load_model
    from napari_gandl.embedding.methods.gandl import site_features
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.gan.config import make_config
    from napari_gandl.plate import open_plate
    from napari_gandl.synthetic import write_sample_plate

    work = Path(args.workdir)
    plate_root = work / "demo_plate"
    if not (plate_root / "metadata.csv").exists():
        write_sample_plate(plate_root, preset="demo", seed=0)
    plate = open_plate(plate_root)

    # 128x128 training needs tiles of at least 128 px: use a 256 px 'demo' variant
    big_root = work / "demo_plate_256"
    if not (big_root / "metadata.csv").exists():
        write_sample_plate(big_root, preset="test", seed=0, tile_size=256)
    big = open_plate(big_root)

    train_res = {}
    for res, p in ((64, plate), (128, big)):
        ips = train_throughput(p, res, 16, args.threads, args.seconds)
        train_res[res] = ips
        print(f"train {res}x{res}: {ips:.1f} img/s", flush=True)

    # embedding: GAN-DL D (quick preset, 64 px tiles over the 128 px site) vs DenseNet-121
    tmp = Path(tempfile.mkdtemp(prefix="gandl-bench-"))
    try:
        tr = Trainer(plate, tmp / "run", make_config("quick", kimg=1.0, device="cpu",
                                                     threads=args.threads))
        tr.save(samples=False)
        model = load_model(tmp / "run")
    finally:
        pass
    batch = 32
    sites = [plate.read_site(i) for i in range(batch)]
    h, w = plate.tile_shape
    t_gan = _timeit(lambda: site_features(model, sites))
    dn = rxrx19a_densenet(plate.n_channels)
    x = torch.from_numpy(np.stack([model.normalizer(s) for s in sites]))

    def run_dn():
        with torch.no_grad():
            dn(x)

    t_dn = _timeit(run_dn)
    gan_sps, dn_sps = batch / t_gan, batch / t_dn
    print(f"embed GAN-DL {gan_sps:.1f} sites/s, DenseNet-121 {dn_sps:.1f} sites/s, "
          f"ratio {gan_sps / dn_sps:.1f}x", flush=True)

    from napari_gandl.embedding.methods._tiles import load_tile_run

    tile_rows = []
    for label, (name, network) in TILE_METHODS.items():
        run = tmp / label.replace(" ", "-").replace(",", "")
        ips, tile_batch = tile_throughput(name, network, plate, args.seconds, run)
        module = importlib.import_module(f"napari_gandl.comparators.{name}")
        embedder = load_tile_run(name, module.build, run, "cpu")
        sps = batch / _timeit(lambda: embedder.embed_sites(np.stack(sites)))
        tile_rows.append(f"| {label} | {tile_batch} | {ips:.1f} img/s | {sps:.1f} sites/s |")
        print(f"{label}: train {ips:.1f} img/s, embed {sps:.1f} sites/s", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)

    body = f"""
CPU, {args.threads} torch thread(s) (a shared 2-core machine: one thread is faster than two
while other jobs run;{" " + args.note + ";" if args.note else ""} 1-minute load average at the end of this run: {os.getloadavg()[0]:.1f}).
`quick` preset networks (G widths base 512 / max 256, D widths base 1024 / max 128 with
pool-then-conv downsampling; 3-layer mapping, 512-d z/w; batch 16; logistic loss with lazy R1
every 16 steps; augmentation on).  The embedding uses the default `stats` features.

| measurement | CPU |  GPU |
|---|---|---|
| training, 64x64 crops | {train_res[64]:.1f} img/s | not measured: no GPU lent |
| training, 128x128 crops | {train_res[128]:.1f} img/s | not measured: no GPU lent |
| training, 256x256 (`paper` preset) | not measured (GPU preset) | not measured: no GPU lent |
| embedding, GAN-DL D (128 px site as 4 tiles of 64 px, averaged) | {gan_sps:.1f} sites/s | not measured: no GPU lent |
| embedding, DenseNet-121 (random init, 128 px site, 5 stains, 1024-d) | {dn_sps:.1f} sites/s | not measured: no GPU lent |
| **GAN-DL / DenseNet-121** | **{gan_sps / dn_sps:.1f}x** (goal >= 3x) | |

Embedding speed is measured on {batch} decoded sites held in memory (image decoding excluded for
both), batch {batch}, float32, in inference mode.

**The other trainable methods, beside GAN-DL** (the same plate, machine and thread count; 64x64
tiles, each method's own defaults and batch; GAN-DL's 64x64 figure above is for batch 16; embedding:
the same {batch} sites of 128 px, each cut into four 64 px tiles whose features are averaged):

| method | batch | training, 64x64 | embedding |
|---|---:|---:|---:|
| GAN-DL (`quick`) | 16 | {train_res[64]:.1f} img/s | {gan_sps:.1f} sites/s |
{chr(10).join(tile_rows)}

A GAN-DL training image costs a D step on a real and a generated image plus a G step; a DINO image
two global and four local crops through the student (forward and backward) and two through the
teacher; an MAE image a quarter of its tokens through the encoder and all of them through the small
decoder; a SimCLR image two views.
"""
    publish("gan_throughput", "GAN-DL throughput (training and embedding)", body, write=not args.no_report)


if __name__ == "__main__":
    main()
