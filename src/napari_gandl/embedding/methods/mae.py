"""The ``mae`` method: the channel-agnostic masked autoencoder of :mod:`napari_gandl.comparators.mae`
trained on the plate; its encoder's tile features averaged per site.

The model tokenises every stain on its own, so it embeds a plate with another stain set by stain
name: each plate stain it was trained on (matched as ``--stain-map auto`` matches them, in any order)
goes in with its own stain embedding and normalisation; stains it never saw are left out, and a
stain the plate lacks is simply absent.  A plate with a stain the model does not know needs
``--stain-map auto`` (as for every method), which leaves that stain out.
"""

from __future__ import annotations

from functools import partial

from napari_gandl.comparators.mae import DEFAULTS, build
from napari_gandl.comparators.tiles import iterate_tile_training
from napari_gandl.embedding.methods._tiles import TileEmbedder, load_tile_run
from napari_gandl.embedding.registry import MethodSpec, register
from napari_gandl.embedding.stains import StainMapError, map_stains
from napari_gandl.preprocessing.normaliser import Normalizer

NAME = "mae"


class MAEEmbedder(TileEmbedder):
    """The encoder of an MAE run, fed the stains of a plate that it was trained on."""

    def __init__(self, name, net, cfg, device, tile_batch: int = 64):
        super().__init__(name, net, cfg, device, tile_batch)
        self.model_stains = list(self.stains)
        self.stain_ids = list(range(len(self.stains)))

    def use_stains(self, plate_stains) -> MAEEmbedder:
        """Embed ``plate_stains`` (names, in the plate's order): those the model knows, each with its
        own stain embedding and the normalisation fitted on it; a one-line error when none is known
        or two plate stains are the same model stain."""
        names, ids = [], []
        for name in plate_stains:
            try:
                (i,) = map_stains(self.model_stains, [name])
            except StainMapError:
                continue  # a stain the model never saw
            if i in ids:
                raise StainMapError(f"the plate's stains {names[ids.index(i)]!r} and {name!r} are both the "
                                    f"model's {self.model_stains[i]!r}; map them with a stain-map file")
            names.append(name)
            ids.append(i)
        if not ids:
            raise StainMapError(f"none of the plate's stains {list(plate_stains)} is one {self.source or NAME} "
                                f"was trained on ({', '.join(self.model_stains)})")
        trained = Normalizer.from_dict(self.cfg.normalizer)
        self.normalizer = Normalizer([trained.low[i] for i in ids], [trained.high[i] for i in ids], trained.dtype)
        self.stains, self.stain_ids = names, ids
        return self

    def features(self, tiles):
        return self.net.embed(tiles, self.stain_ids)


def load(source, plate=None, device="auto") -> MAEEmbedder:
    embedder = load_tile_run(NAME, build, source, device, embedder=MAEEmbedder)
    embedder.source = source
    return embedder if plate is None else embedder.use_stains(plate.channel_names)


register(MethodSpec(
    NAME, load=load, train=partial(iterate_tile_training, NAME, build, DEFAULTS), needs_weights=True,
    preview="reconstructions",
    help="channel-agnostic masked autoencoder (each stain tokenised on its own, 75 % masked) trained on the "
         "plate; embeds other stain sets by stain name (192-d)"))
