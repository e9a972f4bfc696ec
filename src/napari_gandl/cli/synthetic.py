"""``gandl synthetic DEST [--preset NAME | --suite]``: write a synthetic screen."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_gandl.cli.common import COMMANDS
from napari_gandl.synthetic import PRESETS, SUITE, write_rxrx1_sample, write_sample_plate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", help="folder to write (with --suite: one subfolder per screen)")
    parser.add_argument("--preset", default="demo", choices=[*PRESETS, "rxrx1"],
                        help="which screen (default: demo; rxrx1: the RxRx1-like zero-shot sample)")
    parser.add_argument("--suite", action="store_true", help="write every benchmark screen: " + ", ".join(SUITE))
    parser.add_argument("--seed", type=int, default=0)


def write_screens(args: argparse.Namespace) -> int:
    for name in SUITE if args.suite else (args.preset,):
        dest = Path(args.dest) / name if args.suite else Path(args.dest)
        write = write_rxrx1_sample if name == "rxrx1" else lambda d, seed: write_sample_plate(d, name, seed)
        print(write(dest, seed=args.seed), flush=True)
    return 0


def register(sub) -> None:
    """``gandl synthetic DEST [--preset NAME | --suite]``."""
    p = sub.add_parser("synthetic", help=COMMANDS["synthetic"][1])
    add_arguments(p)
    p.set_defaults(func=write_screens)
