"""``gandl view DIR``: a demo folder (or a plate) in napari, its embedding and docks attached."""

from __future__ import annotations

import argparse

from napari_gandl.cli.common import COMMANDS


def view(args: argparse.Namespace) -> int:
    from napari_gandl._view import run_view  # imports napari and Qt: only for this command

    return run_view(args)


def register(sub) -> None:
    v = sub.add_parser("view", help=COMMANDS["view"][1],
                       description="Open DIR in napari: a gandl demo output folder (plate/, embeddings.parquet) "
                                   "or a plate folder. The embedding is attached to the plate's site table and "
                                   "the plate map, similar-sites, perturbation-plot and dose-response docks open "
                                   "and run on it.")
    v.add_argument("folder", metavar="DIR", help="gandl demo output folder, or a plate folder")
    v.add_argument("--embeddings", help="embedding table (.parquet/.csv) to attach (default: DIR/embeddings.parquet)")
    v.set_defaults(func=view)
