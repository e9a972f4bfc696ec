"""Handcrafted, CellProfiler-style intensity and texture features (``--method handcrafted``).

The comparison embedding: no training, no weights.  The features are those of
:func:`napari_gandl.features.handcrafted.site_features` (15 per stain), in the
order of :func:`~napari_gandl.features.handcrafted.feature_names`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from napari_gandl.embedding.base import Embedder, feature_columns
from napari_gandl.embedding.pipeline import embed_plate
from napari_gandl.embedding.registry import MethodSpec, register
from napari_gandl.features.handcrafted import FEATURES, feature_names, site_features


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


def handcrafted_features(plate, batch_size: int = 32, sites: Sequence[int] | None = None,
                         progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Per-site handcrafted features of a plate (a ``Plate`` or a folder path).

    The ``handcrafted`` method of the embedding pipeline, with the feature
    columns named after what they measure.

    Parameters
    ----------
    plate : napari_gandl.plate.Plate or path accepted by ``open_plate``
    batch_size : sites read and processed together (bounds memory)
    sites : site indices to process (default: the plate's usable sites)
    progress : optional ``callback(done, total)``

    Returns a DataFrame: ``site_id``, metadata columns, then float32
    ``{stain}_{feature}`` columns (see :data:`FEATURES`).
    """
    if not hasattr(plate, "read_site"):
        from napari_gandl.plate import open_plate
        plate = open_plate(plate)
    idx = np.asarray(plate.usable_sites if sites is None else sites, dtype=np.int64)
    if idx.size == 0:
        raise ValueError(f"{getattr(plate, 'root', 'plate')}: no usable sites to featurise")
    embedder = HandcraftedEmbedder(plate.channel_names)
    frame = embed_plate(plate, embedder, batch_size=batch_size, sites=idx, progress=progress)
    return frame.rename(columns=dict(zip(feature_columns(embedder.dim), embedder.feature_names)))
