"""GAN-DL and handcrafted features side by side (``--method gandl+handcrafted``).

What profiling pipelines do with CellProfiler plus deep features: both blocks for every site, each
block given the same weight. A block's weight in the analysis is its number of features (plate
normalisation scales every feature to unit spread on the controls), so each block is reduced to the
same number of principal components, fitted once, when the embedder is loaded, on a spread-out
sample of the plate's sites (scikit-learn's PCA): a site's row never depends on its batch mates.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from napari_gandl.embedding.base import Embedder
from napari_gandl.embedding.methods.handcrafted import HandcraftedEmbedder
from napari_gandl.embedding.registry import MethodSpec, load_embedder, register
from napari_gandl.preprocessing.normaliser import spread_sites

NAME = "gandl+handcrafted"
COMPONENTS = 48     # per block
FIT_SITES = 128     # sites the blocks' components are fitted on


def plate_in_model_order(plate, stains):
    """``plate`` read with its stains in the model's order ``stains`` (mapped by name)."""
    from napari_gandl.embedding.stains import map_stains

    order = map_stains(plate.channel_names, stains)
    return plate if list(order) == list(range(plate.n_channels)) else _StainView(plate, order)


class _StainView:
    """A plate read with its stains reordered to a model's."""

    def __init__(self, plate, order):
        self.plate, self.order = plate, list(order)

    def read_site(self, i):
        return self.plate.read_site(i)[self.order]


class CombinedEmbedder(Embedder):
    """The GAN-DL block (one run, or several read together) and the handcrafted block, each reduced to
    the same number of principal components."""

    name = NAME

    def __init__(self, gandl: Embedder, plate, components: int = COMPONENTS, fit_sites: int = FIT_SITES):
        self.blocks = [gandl, HandcraftedEmbedder(gandl.stains)]
        self.stains, self.source = list(gandl.stains), gandl.source
        view = plate_in_model_order(plate, self.stains)
        sample = np.stack([view.read_site(int(s)) for s in spread_sites(plate, fit_sites)])
        self.pcas = []
        for block in self.blocks:
            feats = block.embed_sites(sample).astype(np.float64)
            k = min(components, feats.shape[1], len(sample) - 1)
            self.pcas.append(PCA(n_components=k, svd_solver="full").fit(feats))
        self.dim = sum(p.n_components_ for p in self.pcas)

    @property
    def parts(self) -> list[Embedder]:
        return self.blocks[0].parts  # the runs its rows come from

    def embed_sites(self, images: np.ndarray) -> np.ndarray:
        parts = [pca.transform(block.embed_sites(images).astype(np.float64))
                 for block, pca in zip(self.blocks, self.pcas)]
        return np.concatenate(parts, axis=1).astype(np.float32)


def load(source, plate=None, device: str = "auto") -> CombinedEmbedder:
    """``source``: a GAN-DL run, or a list of several read together in one block (the handcrafted
    features are read once)."""
    if plate is None:
        raise ValueError(f"{NAME} fits its blocks on the plate it embeds: give the plate")
    return CombinedEmbedder(load_embedder("gandl", source, plate, device), plate)


register(MethodSpec(NAME, load=load, needs_weights=True, reads_several=True,
                    help=f"GAN-DL and handcrafted features side by side, {COMPONENTS} principal components "
                         f"of each (run folder from gandl train)"))
