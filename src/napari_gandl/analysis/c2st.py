"""Classifier two-sample test (C2ST) for real vs generated images or features.

Following Lopez-Paz & Oquab (2017) as used to evaluate biological GANs: pool
equally many real and generated samples, train a fixed classifier on one part
and measure its accuracy on the held-out part, over several random splits.
Held-out accuracy near 0.5 means the classifier cannot tell the two sets
apart (the generator matches the real distribution as far as that classifier
can see); 1.0 means they are trivially separable.  A one-sided binomial
p-value against chance is computed on the first split's held-out set (the
splits overlap, so pooling them would overstate the evidence).

Image tiles ``(n, C, H, W)`` are turned into features by block-average
pooling to at most ``pool`` x ``pool`` pixels per channel plus per-channel
intensity statistics; pass 2-D arrays to use your own features (e.g. GAN-DL
embeddings of the tiles).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler


@dataclass
class C2STResult:
    accuracy_mean: float
    accuracy_sd: float
    accuracies: list[float]
    p_value: float
    n_per_class: int
    n_splits: int
    classifier: str

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (f"C2ST ({self.classifier}): held-out accuracy {self.accuracy_mean:.3f} ± "
                f"{self.accuracy_sd:.3f} over {self.n_splits} splits, {self.n_per_class} per class "
                f"(0.5 = indistinguishable; p = {self.p_value:.2g})")


def tile_features(tiles: np.ndarray, pool: int = 16) -> np.ndarray:
    """Features of image tiles (n, C, H, W) or (n, H, W): block-averaged pixels
    (at most pool x pool per channel), per-channel mean/sd/5-50-95th
    percentiles and vertical/horizontal gradient energy."""
    t = np.asarray(tiles, dtype=np.float32)
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4:
        raise ValueError(f"tiles must be (n, C, H, W) or (n, H, W), got shape {t.shape}")
    n, C, H, W = t.shape
    fy, fx = max(1, H // pool), max(1, W // pool)
    hh, ww = (H // fy) * fy, (W // fx) * fx
    pooled = t[:, :, :hh, :ww].reshape(n, C, hh // fy, fy, ww // fx, fx).mean(axis=(3, 5))
    flat = t.reshape(n, C, -1)
    q = np.percentile(flat, [5, 50, 95], axis=2).transpose(1, 2, 0)   # (n, C, 3)
    # high-frequency energy (mean squared finite differences): GAN artefacts
    # and blur show up here before they show in pooled intensities
    gy = (np.diff(t, axis=2) ** 2).mean(axis=(2, 3))
    gx = (np.diff(t, axis=3) ** 2).mean(axis=(2, 3))
    stats_ = np.concatenate([flat.mean(2)[..., None], flat.std(2)[..., None], q,
                             gy[..., None], gx[..., None]], axis=2)
    return np.concatenate([pooled.reshape(n, -1), stats_.reshape(n, -1)], axis=1)


def _as_features(a: np.ndarray, pool: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        return a.astype(np.float64)
    return tile_features(a, pool).astype(np.float64)


def c2st(real: np.ndarray, generated: np.ndarray, n_splits: int = 10, test_size: float = 0.5,
         classifier: str | Callable = "linear", pool: int = 16, seed: int = 0,
         progress: Callable[[int, int], None] | None = None) -> C2STResult:
    """Held-out accuracy of a classifier telling ``real`` from ``generated``.

    ``classifier``: 'linear' (L2 logistic regression), 'knn' (1-nearest
    neighbour, as in the original C2ST) or a factory returning an sklearn
    estimator.  The larger set is subsampled to the size of the smaller.
    """
    A = _as_features(real, pool)
    B = _as_features(generated, pool)
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"real and generated have different feature sizes ({A.shape[1]} vs {B.shape[1]})")
    for name, M in (("real", A), ("generated", B)):
        bad = ~np.isfinite(M).all(axis=1)
        if bad.any():
            raise ValueError(f"C2ST: {name} samples {np.flatnonzero(bad)[:8].tolist()} contain NaN/inf")
    n = min(len(A), len(B))
    if n < 4:
        raise ValueError(f"C2ST needs at least 4 samples of each kind, got {len(A)} real and {len(B)} generated")
    rng = np.random.default_rng(seed)
    accs, correct, total = [], 0, 0
    name = classifier if isinstance(classifier, str) else getattr(classifier, "__name__", "custom")
    for k in range(n_splits):
        ia = rng.choice(len(A), n, replace=False)
        ib = rng.choice(len(B), n, replace=False)
        Xk = np.concatenate([A[ia], B[ib]])
        yk = np.r_[np.ones(n, int), np.zeros(n, int)]
        perm = rng.permutation(2 * n)
        # stratified split: same number of real and generated in the test half
        n_test = max(1, int(round(test_size * n)))
        te = np.r_[perm[yk[perm] == 1][:n_test], perm[yk[perm] == 0][:n_test]]
        tr = np.setdiff1d(np.arange(2 * n), te)
        sc = StandardScaler().fit(Xk[tr])
        if classifier == "linear":
            clf = LogisticRegression(C=1.0, max_iter=2000)
        elif classifier == "knn":
            clf = KNeighborsClassifier(n_neighbors=1)
        elif callable(classifier):
            clf = classifier()
        else:
            raise ValueError(f"unknown classifier {classifier!r}")
        clf.fit(sc.transform(Xk[tr]), yk[tr])
        pred = clf.predict(sc.transform(Xk[te]))
        hit = pred == yk[te]
        accs.append(float(hit.mean()))
        if k == 0:  # the first split's test set gives an exact binomial test
            correct, total = int(hit.sum()), len(te)
        if progress:
            progress(k + 1, n_splits)
    p = float(stats.binomtest(correct, total, 0.5, alternative="greater").pvalue)
    return C2STResult(float(np.mean(accs)), float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                      accs, p, n, n_splits, name)
