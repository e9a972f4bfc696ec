"""The ``gandl`` command: ``gandl demo``, and the subcommands of the backends."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import __version__

# Modules that add subcommands through ``register(subparsers)``.
SUBCOMMANDS: tuple[str, ...] = ("napari_gandl.gan.cli", "napari_gandl.analysis.cli")


def demo(args: argparse.Namespace) -> int:
    from .plate import open_plate
    from .synthetic import write_sample_plate

    out = Path(args.out)
    if args.plate is None:
        plate_root = out / "plate"
        if not (plate_root / "metadata.csv").is_file():
            print(f"Writing the synthetic sample screen ({args.preset} preset) to {plate_root} ...")
            write_sample_plate(plate_root, preset=args.preset, seed=args.seed)
    else:
        plate_root = Path(args.plate)
    plate = open_plate(plate_root)
    sites = plate.sites
    print(f"Plate: {plate.root}")
    print(f"  {plate.n_sites} sites, {plate.n_channels} stains ({', '.join(plate.channel_names)}), "
          f"tiles {plate.tile_shape[0]}x{plate.tile_shape[1]} {plate.dtype}")
    if "disease_condition" in sites:
        print("  " + ", ".join(f"{k}: {v}" for k, v in sites["disease_condition"].value_counts().items()))
    print(f"Open it in napari:  napari {plate.root}  (or drag the folder onto the window)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gandl", description="GAN-DL: annotation-free embeddings of fluorescence microscopy screens"
    )
    parser.add_argument("--version", action="version", version=f"napari-gandl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the pipeline on the bundled synthetic screen (or on PLATE)")
    p.add_argument("plate", nargs="?", help="plate folder to use instead of the synthetic screen")
    p.add_argument("--out", default="gandl-demo", help="folder for everything the demo writes")
    p.add_argument("--preset", default="demo", choices=["test", "demo", "large"],
                   help="size of the synthetic screen")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=demo)
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError) as exc:  # bad input: a clear message, no traceback
        print(f"gandl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
