"""The registry and the Embedder interface: methods by name, a new method = one registration."""

import re

import numpy as np
import pandas as pd
import pytest

from napari_gandl.embedding import (
    METHODS, Embedder, MethodSpec, embed_plate, feature_columns, load_embedder, method_names, register,
)
from napari_gandl.plate import open_plate


def test_builtin_methods_are_registered():
    names = method_names()
    assert {"gandl", "handcrafted"} <= set(names)
    assert METHODS["gandl"].needs_weights and METHODS["gandl"].train is not None
    assert not METHODS["handcrafted"].needs_weights and METHODS["handcrafted"].train is None
    with pytest.raises(ValueError, match="unknown embedding method 'nope'; choose one of .*handcrafted"):
        load_embedder("nope")
    with pytest.raises(ValueError, match="'gandl' needs a run folder or weights file"):
        load_embedder("gandl", None)


class MeanEmbedder(Embedder):
    """Per-stain means: the smallest possible method."""

    name = "test-mean"

    def __init__(self, stains):
        self.stains, self.dim = list(stains), len(stains)

    def embed_sites(self, images):
        return images.astype(np.float32).mean(axis=(2, 3))


def test_a_registered_method_runs_through_the_pipeline(sample_plate):
    register(MethodSpec("test-mean", load=lambda source, plate, device: MeanEmbedder(plate.channel_names)))
    try:
        plate = open_plate(sample_plate)
        df = embed_plate(plate, "test-mean", sites=[3, 0, 7], batch_size=2)
        assert list(df.columns[-5:]) == feature_columns(5) and len(df) == 3
        expected = np.stack([plate.read_site(s).mean(axis=(1, 2)) for s in (3, 0, 7)])
        np.testing.assert_allclose(df[feature_columns(5)].to_numpy(), expected, rtol=1e-6)
        assert list(df["site_id"]) == plate.sites["site_id"].iloc[[3, 0, 7]].tolist()
        with pytest.raises(ValueError, match="registered twice"):
            register(MethodSpec("test-mean", load=lambda *a: None))
    finally:
        METHODS.pop("test-mean")


def test_runs_read_together_must_read_the_same_stains(tmp_path):
    from napari_gandl.embedding.joined import JoinedEmbedder

    a, b = MeanEmbedder(["DNA", "RNA"]), MeanEmbedder(["DNA", "Actin"])
    a.source, b.source = tmp_path / "a", tmp_path / "b"
    with pytest.raises(ValueError, match=re.escape(f"{b.source} reads the stains DNA, Actin but {a.source} "
                                                   f"reads DNA, RNA; runs read together must read the same stains")):
        JoinedEmbedder([a, b])
    b.stains = ["DNA", "RNA"]
    joined = JoinedEmbedder([a, b])
    images = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    assert joined.dim == 4 and joined.parts == [a, b]
    np.testing.assert_array_equal(joined.embed_sites(images), np.tile(a.embed_sites(images), 2))


def test_handcrafted_embedder_shape_determinism_and_batch_independence(sample_plate):
    plate = open_plate(sample_plate)
    emb = load_embedder("handcrafted", None, plate)
    assert emb.dim == 75 and emb.stains == plate.channel_names and len(emb.feature_names) == 75
    a = embed_plate(plate, emb, batch_size=7, sites=range(20))
    b = embed_plate(plate, emb, batch_size=20, sites=range(20))
    one = embed_plate(plate, emb, sites=[13])
    cols = feature_columns(75)
    assert a[cols].dtypes.eq(np.float32).all() and np.isfinite(a[cols].to_numpy()).all()
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(one[cols].to_numpy()[0], a[cols].to_numpy()[13])
    with pytest.raises(ValueError, match="need no run folder"):
        load_embedder("handcrafted", sample_plate, plate)


def test_gandl_weights_that_are_missing_or_corrupt_are_named(sample_plate, tmp_path):
    from napari_gandl.torch_utils.checkpoint import CheckpointError

    plate = open_plate(sample_plate)
    with pytest.raises(CheckpointError, match=re.escape(f"no GAN checkpoint at {tmp_path / 'run'}")):
        load_embedder("gandl", tmp_path / "run", plate, "cpu")
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(CheckpointError, match=re.escape(f"cannot read GAN checkpoint {bad}: the file is truncated or corrupt")):
        load_embedder("gandl", bad, plate, "cpu")
