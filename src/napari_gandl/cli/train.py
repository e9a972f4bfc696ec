"""``gandl train``: train GAN-DL, or any trainable method of the embedding registry, on a plate.

Also run on its own by ``torchrun`` for multi-process training:
``torchrun --nproc_per_node 2 -m napari_gandl.cli train PLATE --out RUN_DIR``.
"""

from __future__ import annotations

import os
import sys

from napari_gandl.cli.common import ReportedProgress, governed_threads, set_threads, thread_governor
from napari_gandl.cli.gan_options import GAN_OPTIONS, add_gan_options, gan_options
from napari_gandl.embedding.registry import get_method, trainable_method_names
from napari_gandl.torch_utils.device import DEVICES
from napari_gandl.torch_utils.runs import TrainingDiverged


def cmd_train(args) -> int:
    options = gan_options(args)
    if options and not get_method(args.method).gan_options:
        dest = next(d for d in GAN_OPTIONS if getattr(args, d) is not None)
        raise ValueError(f"--{dest.replace('_', '-')} is an option of GAN-DL's networks (--method gandl or "
                         f"gandl-untrained), not of {args.method}")
    set_threads(args.threads)
    governor = thread_governor(args.threads, args.device)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    progress = get_method(args.method).train(args.plate, args.out, minutes=args.minutes, kimg=args.kimg,
                                             device=args.device, resume=args.resume, seed=args.seed,
                                             **options)
    try:
        with ReportedProgress(f"train {args.method}", "%", quiet=not rank0) as report:
            for info in progress:
                if info.get("cell_scale") and rank0:
                    print(f"cell scale: {info['cell_scale']}", file=sys.stderr)
                losses = (f"D {info['loss_D']:.3f} G {info['loss_G']:.3f}" if "loss_D" in info
                          else f"loss {info['loss']:.4f}" if "loss" in info else "")
                rate = f" {info['img_per_s']:.1f} img/s" if "img_per_s" in info else ""
                if governor is not None:
                    rate += f", {governed_threads(governor)}"
                report(round(100 * info["fraction"], 1), 100, f"{info['kimg']:.2f} kimg {losses}{rate}")
                if info.get("done"):
                    report(100, 100, f"done: {info['kimg']:.2f} kimg, checkpoint {info['checkpoint']}")
                if info.get("quality_note"):
                    print(f"gandl train: warning: {info['quality_note']}", file=sys.stderr)
    except TrainingDiverged as exc:
        print(f"gandl train: error: {exc}", file=sys.stderr)
        return 3
    if rank0:
        print(args.out)
    return 0


def register(subparsers) -> None:
    """Add ``train`` to the ``gandl`` argparse subparsers."""
    p = subparsers.add_parser(
        "train", help="train a GAN-DL model (StyleGAN2), or another trainable embedding method, on a plate",
        description="Train a StyleGAN2 on the raw N-stain tiles of PLATE (no labels). "
                    "Writes checkpoint.pt, config.json, losses.csv, metrics.csv and samples/ to RUN_DIR. "
                    "With --method M trains that method instead (checkpoint.pt, config.json, losses.csv, and "
                    "samples/ for a method with a preview such as mae's reconstructions; "
                    "only --minutes/--kimg, --device, --resume, --seed and --threads apply to it; with "
                    "--method gandl-untrained the GAN's options set the networks that are saved untrained). "
                    "For several processes/GPUs launch with torchrun: "
                    "torchrun --nproc_per_node 2 -m napari_gandl.cli train PLATE --out RUN_DIR",
    )
    p.add_argument("plate", metavar="PLATE", help="plate folder (RxRx dataset/experiment/plate, or TIFFs)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="output run directory")
    p.add_argument("--method", default="gandl", choices=trainable_method_names(),
                   help="what to train (default gandl); embed the run with gandl embed --method M --checkpoint RUN_DIR")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="training time budget in minutes")
    length.add_argument("--kimg", type=float, help="train on this many thousand images")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: the cores other processes leave free, "
                        "measured every 10 s)")
    add_gan_options(p)
    p.set_defaults(func=cmd_train)
