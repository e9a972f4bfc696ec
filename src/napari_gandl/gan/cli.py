"""The ``gandl train`` subcommand (added with ``register``).

Can also be run on its own: ``python -m napari_gandl.gan.cli train ...`` (this
is what ``torchrun`` launches for multi-process training).
"""

from __future__ import annotations

import argparse
import sys
import time


def _progress_bar(total_frac: float, text: str, width: int = 30) -> str:
    n = int(round(total_frac * width))
    return f"[{'#' * n}{'.' * (width - n)}] {total_frac * 100:5.1f}% {text}"


#: ``gandl train`` options that only GAN-DL has (argparse dest -> option)
GAN_ONLY_OPTIONS = {dest: "--" + dest.replace("_", "-") for dest in (
    "preset", "resolution", "batch", "loss", "scale", "sampling", "augment_p", "ada", "ada_target",
    "snapshot_kimg", "align", "align_weight", "channel_base", "channel_max", "d_channel_base",
    "d_channel_max")}


def gan_progress(args):
    """GAN-DL's training generator for the options in ``args``."""
    from .training import iterate_training, make_config

    overrides = {}
    if args.loss:
        overrides["loss"] = args.loss
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.snapshot_kimg is not None:
        overrides["snapshot_kimg"] = args.snapshot_kimg
    data = {k: getattr(args, k) for k in ("scale", "sampling") if getattr(args, k) is not None}
    if data:
        overrides["data"] = data
    if args.augment_p is not None:
        overrides["augment"] = {"p": args.augment_p}
    for name in ("ada", "ada_target"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    net = {}
    if args.channel_base is not None:
        net["channel_base"] = args.channel_base
    if args.channel_max is not None:
        net["channel_max"] = args.channel_max
    if args.d_channel_base is not None:
        net["d_channel_base"] = args.d_channel_base
    if args.d_channel_max is not None:
        net["d_channel_max"] = args.d_channel_max
    if net:
        overrides["network"] = net
    if args.threads:
        overrides["threads"] = args.threads
    if args.align is not None:
        overrides["align"] = args.align
    if args.align_weight is not None:
        overrides["align_weight"] = args.align_weight
    cfg = make_config(args.preset or "quick", resolution=args.resolution, minutes=args.minutes,
                      kimg=args.kimg, batch=args.batch, device=args.device, **overrides)
    return iterate_training(args.plate, args.out, cfg, resume=args.resume)


def method_progress(args):
    """The training generator of registered method ``args.method`` (not GAN-DL); ValueError
    naming a GAN-DL-only option given with it."""
    import torch

    from napari_gandl.embedding.registry import get_method

    given = [opt for dest, opt in GAN_ONLY_OPTIONS.items() if getattr(args, dest) is not None]
    if given:
        raise ValueError(f"{given[0]} is an option of --method gandl, not of {args.method}")
    if args.threads:
        torch.set_num_threads(args.threads)
    return get_method(args.method).train(args.plate, args.out, minutes=args.minutes, kimg=args.kimg,
                                         device=args.device, resume=args.resume, seed=args.seed or 0)


def cmd_train(args) -> int:
    from .training import TrainingDiverged

    try:
        progress = gan_progress(args) if args.method == "gandl" else method_progress(args)
    except ValueError as exc:
        print(f"gandl train: error: {exc}", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty()
    last = 0.0
    rank0 = True
    try:
        import os

        rank0 = int(os.environ.get("RANK", "0")) == 0
        for info in progress:
            now = time.time()
            if not rank0:
                continue
            if info.get("done"):
                msg = f"done: {info['kimg']:.2f} kimg, checkpoint {info['checkpoint']}"
                print(("\r" if tty else "") + _progress_bar(1.0, msg), file=sys.stderr)
            elif now - last >= (0.5 if tty else 10.0):
                last = now
                losses = (f"D {info['loss_D']:.3f}  G {info['loss_G']:.3f}" if "loss_D" in info
                          else f"loss {info['loss']:.4f}")
                msg = f"{info['kimg']:.2f} kimg  {losses}  {info['img_per_s']:.1f} img/s"
                print(("\r" if tty else "") + _progress_bar(info["fraction"], msg),
                      end="" if tty else "\n", file=sys.stderr, flush=True)
    except TrainingDiverged as exc:
        print(f"\ngandl train: error: {exc}", file=sys.stderr)
        return 3
    except FileExistsError as exc:
        print(f"gandl train: error: {exc}", file=sys.stderr)
        return 2
    if rank0:
        print(args.out)
    return 0


def register(subparsers) -> None:
    """Add ``train`` to the ``gandl`` argparse subparsers."""
    from napari_gandl.embedding.registry import trainable_method_names

    p = subparsers.add_parser(
        "train", help="train a GAN-DL model (StyleGAN2), or another trainable embedding method, on a plate",
        description="Train a StyleGAN2 on the raw N-stain tiles of PLATE (no labels). "
                    "Writes checkpoint.pt, config.json, losses.csv, metrics.csv and samples/ to RUN_DIR. "
                    "With --method convae|simclr trains that comparator instead (checkpoint.pt, config.json; "
                    "only --minutes/--kimg, --device, --resume, --seed and --threads apply to it). "
                    "For several processes/GPUs launch with torchrun: "
                    "torchrun --nproc_per_node 2 -m napari_gandl.gan.cli train PLATE --out RUN_DIR",
    )
    p.add_argument("plate", metavar="PLATE", help="plate folder (RxRx dataset/experiment/plate, or TIFFs)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="output run directory")
    p.add_argument("--method", default="gandl", choices=trainable_method_names(),
                   help="what to train (default gandl); embed the run with gandl embed --method M --checkpoint RUN_DIR")
    p.add_argument("--preset", choices=["quick", "paper"],
                   help="quick: CPU, 64px, minutes; paper: GPU, 256px, 512 widths (default quick)")
    p.add_argument("--resolution", type=int, help="training resolution, power of two 32..1024")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="training time budget in minutes")
    length.add_argument("--kimg", type=float, help="train on this many thousand images")
    p.add_argument("--batch", type=int, help="total batch size (multiple of 4 per process)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument("--loss", choices=["logistic", "wgan-gp"],
                   help="logistic + lazy R1 (StyleGAN2 default) or Wasserstein-GP")
    p.add_argument("--scale", type=int, help="downsample tiles by this integer factor first")
    p.add_argument("--sampling", choices=["tiles", "crops"],
                   help="training images: random tiles (default) or crops centred on cells, whose "
                        "nuclei are found in the Hoechst/DNA stain")
    p.add_argument("--augment-p", type=float, metavar="P",
                   help="probability of each augmentation (with ADA: its starting value; quick preset 0, "
                        "paper 0.3)")
    p.add_argument("--ada", action=argparse.BooleanOptionalAction, default=None,
                   help="adaptive augmentation: steer P by D's overfitting on the reals (ADA; on by default "
                        "in the quick preset, --no-ada keeps P fixed)")
    p.add_argument("--ada-target", type=float, metavar="T",
                   help="ADA's target for the mean sign of D on the reals (default 0.6)")
    p.add_argument("--seed", type=int)
    p.add_argument("--snapshot-kimg", type=float, help="checkpoint interval in kimg")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--align", choices=["none", "plate", "experiment"],
                   help="make D's embedding blind to the plate or experiment (domain-adversarial head "
                        "with gradient reversal; batch labels from the site table; default none)")
    p.add_argument("--align-weight", type=float, help="final gradient-reversal weight (default 1)")
    p.add_argument("--channel-base", type=int, help=argparse.SUPPRESS)
    p.add_argument("--channel-max", type=int, help=argparse.SUPPRESS)
    p.add_argument("--d-channel-base", type=int, help=argparse.SUPPRESS)
    p.add_argument("--d-channel-max", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_train)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gandl")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"gandl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
