"""The interface every embedding method implements.

An :class:`Embedder` is one ready-to-use model: it turns raw multichannel
site images into one feature vector per site.  The pipeline
(:mod:`napari_gandl.embedding.pipeline`) does everything around it: reading
sites in batches, mapping the plate's stains onto the ones the model expects,
streaming rows to parquet, resuming, dask.distributed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["Embedder", "FEATURE_PREFIX", "check_stains", "feature_columns"]

FEATURE_PREFIX = "f"


def feature_columns(dim: int = 512) -> list[str]:
    """Names of the feature columns of a ``dim``-dimensional embedding: ``f000``, ``f001``, ..."""
    return [f"{FEATURE_PREFIX}{i:03d}" for i in range(dim)]


class Embedder:
    """One ready-to-use model that embeds sites.

    Attributes
    ----------
    name : registry key of the method, e.g. ``"gandl"`` or ``"handcrafted"``.
    dim : feature dimension of one site.
    stains : stain names the model expects, in order (the pipeline maps the
        plate's stains onto these by name, see :mod:`.stains`).
    source : run folder or weights file it was loaded from (None when none);
        the pipeline uses it to recognise a resumable partial output.
    normalizer : the trained model's per-stain normalisation (None when the
        method has none, or fits it on the plate it embeds); the pipeline
        refuses a plate whose bit depth differs from the one it recorded.
    options : the settings that change its rows (GAN-DL's layer, sampling and
        orientations), JSON values; with ``source``, what a resumable partial
        output must match.
    """

    name: str = ""
    dim: int = 0
    stains: list[str] = []
    source: Path | None = None
    normalizer = None
    options: dict = {}

    @property
    def parts(self) -> list["Embedder"]:
        """The embedders whose features make its rows, side by side: itself, or the runs read
        together (:class:`~napari_gandl.embedding.joined.JoinedEmbedder`)."""
        return [self]

    def embed_sites(self, images: np.ndarray) -> np.ndarray:
        """``(n, len(stains), H, W)`` raw site images (any dtype, the plate's own
        range) -> ``(n, dim)`` float32.

        Must be deterministic and independent of the batch mates: a site's row
        is the same whether it is embedded alone or among others.  Tiling,
        crops and normalisation happen inside.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.dim} features from {len(self.stains)} stains>"


def check_stains(embedder: Embedder, images) -> np.ndarray:
    """``images`` as an array ``(n, len(embedder.stains), H, W)``, or a clear error."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != len(embedder.stains):
        raise ValueError(
            f"{embedder.name} expects site images of shape (n, {len(embedder.stains)}, H, W) with "
            f"the stains {', '.join(embedder.stains)}; got shape {images.shape} "
            f"(map another stain set onto the model's with --stain-map)")
    return images
