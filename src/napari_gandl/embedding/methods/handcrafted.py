"""Handcrafted, CellProfiler-style intensity and texture features (``--method handcrafted``).

The comparison embedding: no training, no weights.  The features are those of
:func:`napari_gandl.analysis.features.site_features` (15 per stain), in the
order of :func:`~napari_gandl.analysis.features.feature_names`.
"""

from __future__ import annotations

import numpy as np

from napari_gandl.analysis.features import FEATURES, feature_names, site_features

from ..base import Embedder
from ..registry import MethodSpec, register


class HandcraftedEmbedder(Embedder):
    name = "handcrafted"

    def __init__(self, stains):
        self.stains = list(stains)
        self.dim = len(FEATURES) * len(self.stains)
        self.feature_names = feature_names(self.stains)  # what each f column measures

    def embed_sites(self, images: np.ndarray) -> np.ndarray:
        return site_features(images).reshape(len(images), -1)


def load(source=None, plate=None, device: str = "auto") -> HandcraftedEmbedder:
    if source is not None:
        raise ValueError("handcrafted features need no run folder or weights file (drop --checkpoint)")
    if plate is None:
        raise ValueError("handcrafted features are defined per plate: give the plate")
    return HandcraftedEmbedder(plate.channel_names)


register(MethodSpec("handcrafted", load=load,
                    help="handcrafted CellProfiler-style intensity/texture features (15 per stain)"))
