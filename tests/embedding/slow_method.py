"""A deliberately slow test method (per-stain means, 0.1 s per batch), so a run can be killed mid-way."""

import time

import numpy as np

from napari_gandl.embedding import METHODS, Embedder, MethodSpec, register


class SlowMean(Embedder):
    name = "test-slow-mean"
    calls = 0  # batches embedded in this process

    def __init__(self, stains):
        self.stains, self.dim = list(stains), len(stains)

    def embed_sites(self, images):
        type(self).calls += 1
        time.sleep(0.1)
        return images.astype(np.float32).mean(axis=(2, 3))


if SlowMean.name not in METHODS:
    register(MethodSpec(SlowMean.name, load=lambda source, plate, device: SlowMean(plate.channel_names)))
