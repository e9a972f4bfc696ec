"""The ``dino`` method: :mod:`napari_gandl.comparators.dino` trained on the plate, its teacher's tile
features averaged per site."""

from __future__ import annotations

from functools import partial

from napari_gandl.comparators.dino import DEFAULTS, build
from napari_gandl.comparators.tiles import iterate_tile_training
from napari_gandl.embedding.methods._tiles import load_tile_run
from napari_gandl.embedding.registry import MethodSpec, register

NAME = "dino"

register(MethodSpec(
    NAME, load=lambda source, plate, device="auto": load_tile_run(NAME, build, source, device),
    train=partial(iterate_tile_training, NAME, build, DEFAULTS), needs_weights=True,
    help="DINO (self-distillation, multi-crop; flips, rotations, per-stain gain and offset, blur) trained on "
         "the plate; the teacher's CLS token (192-d)"))
