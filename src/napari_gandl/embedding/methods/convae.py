"""The ``convae`` method: :mod:`napari_gandl.comparators.convae` trained on the plate, its tile features averaged per site."""

from __future__ import annotations

from functools import partial

from napari_gandl.comparators.tiles import iterate_tile_training
from napari_gandl.comparators.convae import DEFAULTS, build
from napari_gandl.embedding.methods._tiles import load_tile_run
from napari_gandl.embedding.registry import MethodSpec, register

NAME = "convae"

register(MethodSpec(
    NAME, load=lambda source, plate, device="auto": load_tile_run(NAME, build, source, device),
    train=partial(iterate_tile_training, NAME, build, DEFAULTS), needs_weights=True,
    help="convolutional autoencoder trained on the plate (256-d bottleneck)"))
