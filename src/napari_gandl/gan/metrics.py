"""Sample quality of a generator, measured without its discriminator.

Three numbers compare ``n`` generator samples with ``n`` real crops held out
from training, both described by the handcrafted per-stain features of
:mod:`napari_gandl.analysis.features` (intensity, texture, spots; computed in
the plate's raw intensity units and standardised on the reals):

* ``nn1_accuracy`` -- the leave-one-out 1-nearest-neighbour two-sample test
  (Lopez-Paz & Oquab 2017; the BioGANs evaluation): pool reals and samples,
  classify every point by its nearest other point.  0.5 means the samples are
  indistinguishable from the reals, 1.0 that every sample is nearer to
  samples and every real nearer to reals (e.g. mode collapse or artefacts).
* ``kid`` -- kernel inception distance (Binkowski et al. 2018) on those
  features instead of Inception activations: the unbiased squared MMD with
  the cubic polynomial kernel ``(x.y / d + 1)^3``.  0 for equal
  distributions; it also sees a shift of the mean.
* ``diversity`` -- mean pairwise distance between samples divided by the
  mean pairwise distance between reals.  About 1 when the generator is as
  varied as the data; well below 1 under mode collapse.

The features are fitted once on the reals (:class:`SampleQuality`), so a
snapshot costs one generator pass and the features of ``n`` samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.metrics.pairwise import pairwise_distances, polynomial_kernel
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from napari_gandl.features.handcrafted import site_features

__all__ = ["METRIC_NAMES", "SampleQuality", "image_features", "nn1_accuracy", "kid", "diversity",
           "kid_ratio", "divergence_note", "run_divergence_note", "generator_note"]

METRIC_NAMES = ("nn1_accuracy", "kid", "diversity")

#: A run whose last KID is more than this many times its lowest has probably diverged. Of the
#: benchmark suite's 32 16-kimg runs, the highest ratio of a run whose generator kept working was 74;
#: the three whose generators blew up in their last snapshots ended at 1,032 to 266,791 (docs/gan.md).
DIVERGED_KID_RATIO = 300.0


def image_features(images: np.ndarray) -> np.ndarray:
    """Handcrafted per-stain features of raw ``(n, C, H, W)`` images -> ``(n, 15 * C)``."""
    f = site_features(np.asarray(images, np.float32))
    return np.nan_to_num(f.reshape(len(f), -1).astype(np.float64))


def nn1_accuracy(real: np.ndarray, fake: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy of telling ``real`` rows from ``fake`` rows."""
    X = np.concatenate([real, fake])
    y = np.r_[np.zeros(len(real), bool), np.ones(len(fake), bool)]
    _, idx = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)
    # the nearest point is the point itself (or an exact duplicate, which is just as near)
    nearest = np.where(idx[:, 0] == np.arange(len(X)), idx[:, 1], idx[:, 0])
    return float((y[nearest] == y).mean())


def kid(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased squared MMD with the kernel ``(x.y / d + 1)^3``."""
    d = real.shape[1]
    kxx = polynomial_kernel(real, degree=3, gamma=1.0 / d, coef0=1)
    kyy = polynomial_kernel(fake, degree=3, gamma=1.0 / d, coef0=1)
    kxy = polynomial_kernel(real, fake, degree=3, gamma=1.0 / d, coef0=1)
    m, n = len(real), len(fake)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def _measured_kids(kimg, kids) -> tuple[np.ndarray, np.ndarray]:
    """A run's (kimg, KID) history without the measurement at 0 kimg (the untrained generator) and
    the failed ones (NaN)."""
    kimg, kids = np.asarray(kimg, float), np.asarray(kids, float)
    kept = (kimg > 0) & np.isfinite(kids)
    return kimg[kept], kids[kept]


def kid_ratio(kimg, kids) -> float:
    """A run's last KID (in the order measured) over its lowest, or over 1 if that is lower (the
    unbiased KID of a good generator can be 0 or below); NaN with fewer than two measurements.
    The 0-kimg and failed measurements are left out."""
    kids = _measured_kids(kimg, kids)[1]
    return float(kids[-1] / max(kids.min(), 1.0)) if len(kids) >= 2 else float("nan")


def divergence_note(kimg, kids, info: float = 0.0) -> str | None:
    """A one-line warning when a run's :func:`kid_ratio` is over :data:`DIVERGED_KID_RATIO`;
    ``None`` otherwise. ``info``: the run's code-recovery weight, whose advice differs: with code recovery
    a late blow-up did not mark runs that embed worse (docs/benchmarks.md, bench_divergence.py
    --code-recovery), so such a run is not sent back to training."""
    if not kid_ratio(kimg, kids) > DIVERGED_KID_RATIO:
        return None
    kimg, kids = _measured_kids(kimg, kids)
    best = int(np.argmin(kids))
    what = (f"the generator got much worse at the end: KID {kids[-1]:.3g} at {kimg[-1]:g} kimg against "
            f"{kids[best]:.3g} at {kimg[best]:g} kimg (metrics.csv)")
    if info > 0:
        return (f"{what}; with code recovery (--info {info:g}) that did not make runs embed worse on the benchmark "
                f"suite, so to check this one compare it with the same networks untrained on your controls "
                f"(gandl compare PLATE --out DIR --methods gandl,gandl-untrained --info {info:g})")
    return (f"{what}, so training may have diverged; look at the samples, and before embedding with this run go "
            f"on for a few kimg (--resume with a larger --kimg or --minutes) or train again with another --seed")


def run_divergence_note(run_dir) -> str | None:
    """:func:`divergence_note` of the ``metrics.csv`` in the run folder ``run_dir`` (with the code-recovery
    weight of its ``config.json``); None without a readable log (the check is advice: a damaged log must not
    stop training or embedding)."""
    import pandas as pd

    try:
        history = pd.read_csv(Path(run_dir) / "metrics.csv")
        return divergence_note(history["kimg"], history["kid"], _run_info(run_dir))
    except (OSError, KeyError, ValueError, pd.errors.ParserError):  # EmptyDataError is a ValueError
        return None


def _run_info(run_dir) -> float:
    """The code-recovery weight in the run's ``config.json`` (0 when it has none or cannot be read)."""
    try:
        return float(json.loads((Path(run_dir) / "config.json").read_text()).get("info", 0.0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0


def generator_note(model) -> str | None:
    """A one-line warning for whoever looks at a loaded run's generator (latent paths, sample grids):
    its :func:`run_divergence_note`, and whether it was trained with code recovery, whose samples are
    less realistic; ``None`` when there is nothing to say. ``model`` is a
    :class:`~napari_gandl.gan.checkpoint.GANModel`."""
    notes = [run_divergence_note(Path(model.path).parent)]
    info = float(model.config.get("info", 0.0))
    if info > 0:
        notes.append(f"this run was trained with --info {info:g} (code recovery), which makes the generator's "
                     f"samples less realistic (on the benchmark suite, a KID up to 70,000 times that of a "
                     f"run without it); to see what the cells look like, train one with --info 0 --runs 1")
    return "; ".join(filter(None, notes)) or None


def _mean_pairwise(X: np.ndarray) -> float:
    D = pairwise_distances(X)
    return float(D.sum() / (len(X) * (len(X) - 1)))


def diversity(real: np.ndarray, fake: np.ndarray) -> float:
    """Mean pairwise distance of ``fake`` rows relative to that of ``real`` rows."""
    return _mean_pairwise(fake) / max(_mean_pairwise(real), 1e-12)


class SampleQuality:
    """The three metrics of generated images against a fixed set of real images.

    ``reals``: raw ``(n, C, H, W)`` images (at least 4).  Calling the object
    with generated images of the same shape returns ``{name: value}``.
    """

    def __init__(self, reals: np.ndarray):
        if len(reals) < 4:
            raise ValueError(f"sample quality needs at least 4 real images, got {len(reals)}")
        raw = image_features(reals)
        self.scaler = StandardScaler().fit(raw)
        self.real = self.scaler.transform(raw)

    def __call__(self, fakes: np.ndarray) -> dict:
        fake = np.clip(self.scaler.transform(image_features(fakes)), -1e3, 1e3)
        return {"nn1_accuracy": nn1_accuracy(self.real, fake), "kid": kid(self.real, fake),
                "diversity": diversity(self.real, fake)}
