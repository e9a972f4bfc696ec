"""A test method (per-stain means) that, with ``GANDL_TEST_HANG_AFTER=N`` set, hangs in its
N+1st batch, so a run can be killed mid-way after exactly N batches, however loaded the machine."""

import os
import time

import numpy as np

from napari_gandl.embedding import METHODS, Embedder, MethodSpec, register


class HangingMean(Embedder):
    name = "test-hanging-mean"
    calls = 0  # batches embedded in this process

    def __init__(self, stains):
        self.stains, self.dim = list(stains), len(stains)

    def embed_sites(self, images):
        type(self).calls += 1
        if type(self).calls > int(os.environ.get("GANDL_TEST_HANG_AFTER", "1000000000")):
            time.sleep(3600)
        return images.astype(np.float32).mean(axis=(2, 3))


if HangingMean.name not in METHODS:
    register(MethodSpec(HangingMean.name, load=lambda source, plate, device: HangingMean(plate.channel_names)))
