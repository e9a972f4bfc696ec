"""``gandl train``: train GAN-DL, or any trainable method of the embedding registry, on a plate.

Also run on its own by ``torchrun`` for multi-process training:
``torchrun --nproc_per_node 2 -m napari_gandl.cli train PLATE --out RUN_DIR``.
"""

from __future__ import annotations

import sys

from napari_gandl.cli.common import (COMMANDS, ReportedProgress, StopRequest, governed_threads, set_threads,
                                     thread_governor)
from napari_gandl.cli.gan_options import GAN_OPTIONS, add_gan_options, gan_options
from napari_gandl.embedding.registry import get_method, method_runs, trainable_method_names
from napari_gandl.files import first_process
from napari_gandl.gan.config import make_config
from napari_gandl.torch_utils.device import DEVICES
from napari_gandl.torch_utils.runs import TrainingDiverged, planned_runs, train_runs


def cmd_train(args) -> int:
    options = gan_options(args)
    if options and not get_method(args.method).gan_options:
        dest = next(d for d in GAN_OPTIONS if getattr(args, d) is not None)
        raise ValueError(f"--{dest.replace('_', '-')} is an option of GAN-DL's networks (--method gandl or "
                         f"gandl-untrained), not of {args.method}")
    spec = get_method(args.method)
    if args.runs is not None and not spec.gan_options:
        raise ValueError(f"--runs is an option of GAN-DL (--method gandl or gandl-untrained), not of {args.method}")
    runs, minutes, kimg = split_plan(args, spec, options)
    set_threads(args.threads)
    governor = thread_governor(args.threads, args.device)
    rank0 = first_process()

    with StopRequest("gandl train", "stopping after this step, with a checkpoint") as stop:
        def train_one(folder, minutes, kimg, seed, resume):
            return spec.train(args.plate, folder, minutes=minutes, kimg=kimg, device=args.device, resume=resume,
                              seed=seed, should_stop=stop, **options)

        progress = train_runs(train_one, args.out, runs, minutes, kimg, args.seed, args.resume, should_stop=stop)
        last: dict = {}
        try:
            with ReportedProgress(f"train {args.method}", "%", quiet=not rank0) as report:
                for info in progress:
                    last = info
                    if info.get("cell_scale") and rank0:
                        print(f"cell scale: {info['cell_scale']}", file=sys.stderr)
                    losses = (f"D {info['loss_D']:.3f} G {info['loss_G']:.3f}" if "loss_D" in info
                              else f"loss {info['loss']:.4f}" if "loss" in info else "")
                    rate = f" {info['img_per_s']:.1f} img/s" if "img_per_s" in info else ""
                    if governor is not None:
                        rate += f", {governed_threads(governor)}"
                    which = f"run {info['run']}/{info['runs']}, " if "runs" in info else ""
                    report(round(100 * info["fraction"], 1), 100,
                           f"{which}{info['kimg']:.2f} kimg{' ' + losses if losses else ''}{rate}")
                    if info.get("done") and info["fraction"] >= 1:
                        runs = f" in {info['runs']} runs read together" if "runs" in info else ""
                        report(100, 100, f"done: {info['kimg']:.2f} kimg{runs}, checkpoint {info['checkpoint']}")
                    if info.get("quality_note"):
                        print(f"gandl train: warning: {info['quality_note']}", file=sys.stderr)
        except TrainingDiverged as exc:
            print(f"gandl train: error: {exc}", file=sys.stderr)
            return 3
    if stop() and last.get("fraction", 0.0) < 1:
        if rank0:
            print(f"gandl train: stopped by {stop.name} at {last.get('kimg', 0.0):.2f} kimg, checkpoint written in "
                  f"{args.out}; add --resume to the same command to go on", file=sys.stderr)
        return 128 + stop.signum
    if rank0:
        print(args.out)
    return 0


def split_plan(args, spec, options: dict) -> tuple[int, float | None, float | None]:
    """How many runs ``gandl train`` trains into ``--out`` and the whole budget they share: ``--runs``, else
    the folder's own when resuming, else the method's default (:func:`method_runs`); the budget given, else
    (a new run) the preset's, so that it is split rather than given to each run."""
    no_budget = args.minutes is None and args.kimg is None
    started = planned_runs(args.out) if args.resume or no_budget else None  # what the folder holds, read once
    runs = args.runs if args.runs is not None else started if args.resume and started else method_runs(spec, options)
    if runs < 1:
        raise ValueError(f"--runs must be at least 1, got {runs}")
    minutes, kimg = args.minutes, args.kimg
    if runs > 1 and no_budget and started is None:
        preset_length = make_config(options.get("preset", "quick"))
        minutes, kimg = preset_length.minutes, preset_length.kimg
    return runs, minutes, kimg


def register(subparsers) -> None:
    """Add ``train`` to the ``gandl`` argparse subparsers."""
    p = subparsers.add_parser(
        "train", help=COMMANDS["train"][1],
        description="Train a StyleGAN2 on the raw N-stain tiles of PLATE (no labels). "
                    "Writes checkpoint.pt, config.json, losses.csv, metrics.csv and samples/ to RUN_DIR; with "
                    "the quick preset the budget is split into two runs (--runs), the second in RUN_DIR/run-2, "
                    "and gandl embed --checkpoint RUN_DIR reads both. "
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
    p.add_argument("--runs", type=int, metavar="N",
                   help="GAN-DL and gandl-untrained: split the budget into N runs at seeds --seed, --seed + 1..., "
                        "trained one after the other into RUN_DIR and RUN_DIR/run-2...; gandl embed --checkpoint "
                        "RUN_DIR reads them together (default: 2 with the quick preset, 1 with paper; a resumed folder keeps "
                        "its own)")
    p.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: the cores other processes leave free, "
                        "measured every 10 s)")
    add_gan_options(p)
    p.set_defaults(func=cmd_train)
