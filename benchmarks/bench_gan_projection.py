"""How well the generator reaches real sites: projection error of real crops vs of its own samples.

``gan.latent.project`` looks for the w and noise maps whose image
reconstructs a target.  For an image the generator drew itself from a random
seed, a w and noise that reproduce it exactly exist, so its reconstruction
error is the floor the optimiser reaches; a real crop reconstructed much worse than that lies off the
generator's manifold (the interpolation between two projected sites then
shows the generator's cells, not the sites').  Reports the pixel MSE in the
normalised units (about -1..1) of ``--n`` real crops from held-out sites and
of ``--n`` random-seed samples, each after ``--steps`` projection steps.

    python benchmarks/bench_gan_projection.py --run RUN_DIR [--n 6] [--steps 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402


def reconstruction_mse(model, target: np.ndarray, steps: int) -> float:
    """Pixel MSE between a normalised ``(C, R, R)`` target and the image of its projection (w and noise)."""
    from napari_gandl.gan.latent import project

    return float(np.mean((project(model, target, steps=steps, normalized=True).image(model) - target) ** 2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a gandl train run folder")
    ap.add_argument("--n", type=int, default=6, help="real crops and random samples each")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from napari_gandl.preprocessing.sampling import DataConfig, TileSampler
    from napari_gandl.gan import load_model
    from napari_gandl.gan.latent import generate
    from napari_gandl.gan.trainer import held_out_sites
    from napari_gandl.plate import open_plate

    model = load_model(args.run)
    plate = open_plate(model.config["plate"])
    _, held = held_out_sites(plate)
    sampler = TileSampler(plate, model.resolution, DataConfig.from_dict(model.config["data"]),
                          model.normalizer, sites=held)
    reals = sampler.sample(args.n, np.random.default_rng(7)).numpy()
    fakes = generate(model, seeds=range(1000, 1000 + args.n))
    t = time.time()
    real_mse = [reconstruction_mse(model, x, args.steps) for x in reals]
    fake_mse = [reconstruction_mse(model, x, args.steps) for x in fakes]
    seconds = (time.time() - t) / (2 * args.n)
    ratio = np.mean(real_mse) / max(np.mean(fake_mse), 1e-12)
    sampling = model.config["data"].get("sampling", "tiles")
    body = f"""
Run `{Path(args.run).parent.name}/{Path(args.run).name}` ({model.cur_nimg / 1000:.1f} kimg, {model.resolution}x{model.resolution}
{sampling}, plate `{Path(plate.root).parent.name}/{Path(plate.root).name}`): `gan.latent.project` (w and noise maps), {args.steps} steps
from the average w, pixel MSE in normalised units (about -1..1) after projection, {args.n} targets each,
{seconds:.1f} s per projection on one CPU thread.

| target | reconstruction MSE (mean ± sd) |
|---|---|
| real crops of held-out sites | {np.mean(real_mse):.4f} ± {np.std(real_mse):.4f} |
| the generator's own samples (random seeds) | {np.mean(fake_mse):.4f} ± {np.std(fake_mse):.4f} |

Ratio of the real crops' error to the samples' error: {ratio:.2f} (1: real sites are as reachable
as the generator's own images).
"""
    publish("gan_projection", "GAN-DL latent projection: real sites vs random-seed samples",
            body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
