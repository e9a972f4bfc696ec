import numpy as np
import pytest

from napari_gandl.analysis.c2st import c2st, tile_features


def test_same_distribution_is_near_chance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 10))
    b = rng.normal(size=(200, 10))
    res = c2st(a, b, n_splits=5)
    assert abs(res.accuracy_mean - 0.5) < 0.08 and res.p_value > 0.01
    assert len(res.accuracies) == 5 and res.accuracy_sd > 0


def test_shifted_distribution_is_detected():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 10))
    b = rng.normal(size=(200, 10)) + np.r_[1.0, np.zeros(9)]
    res = c2st(a, b, n_splits=5)
    assert res.accuracy_mean > 0.65 and res.p_value < 1e-3
    knn = c2st(a, b + 3, n_splits=3, classifier="knn")
    assert knn.accuracy_mean > 0.9


def test_tiles_real_vs_blurred():
    rng = np.random.default_rng(2)
    real = rng.poisson(20, size=(60, 2, 32, 32)).astype(np.float32)
    fake = np.repeat(np.repeat(real[:, :, ::2, ::2], 2, axis=2), 2, axis=3)   # blocky "generator"
    fake = fake * 0.7 + 6     # wrong intensity statistics
    res = c2st(real, fake, n_splits=4)
    assert res.accuracy_mean > 0.9
    assert tile_features(real).shape == (60, 2 * 16 * 16 + 2 * 7)


def test_bad_input():
    with pytest.raises(ValueError, match="different feature sizes"):
        c2st(np.zeros((10, 3)), np.zeros((10, 4)))
    a = np.ones((10, 3)); a[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"real samples \[2\]"):
        c2st(a, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="at least 4"):
        c2st(np.zeros((3, 3)), np.zeros((10, 3)))
