"""Batch (plate) diagnostics: how much of an embedding is plate rather than biology.

* **plate predictability** -- balanced accuracy of a linear SVM predicting the
  plate from the features on held-out wells (well-grouped splits); lower is
  better, chance is one over the number of plates.  Plates are compared with
  the other plates of their own experiment, because experiments may differ in
  biology (in RxRx19a each experiment is one cell type) and that difference is
  not a plate effect.  A large experiment is estimated on a sample: at most
  :data:`MAX_PLATES_COMPARED` plates evenly spread over it and whole wells up to
  :data:`MAX_SITES_COMPARED` sites.
* **silhouettes** -- scikit-learn's silhouette of the C+/C- control sites
  labelled by plate and labelled by condition (C+ or C-), on standardised
  features, within each experiment, averaged over experiments.  A plate
  silhouette near or below zero and a condition silhouette above it is what a
  plate-invariant embedding looks like.
* **PCA scatter** -- the first two principal components coloured by plate
  beside the same points coloured by condition, one row per stage
  (raw, after normalisation or alignment).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from napari_gandl.analysis.classify import LinearModel, TaskError, grouped_splits
from napari_gandl.tables import TableError, as_str, batch_labels, control_labels, well_groups

MAX_SILHOUETTE_SITES = 2000   # silhouettes are O(n^2): subsample above this
#: plate predictability of an experiment is estimated on at most this many of its plates and sites:
#: told apart among RxRx19a's 50 plates per experiment from all 76,000 sites, a fit took hours
#: (a 50-class SVM is 50 binary fits), while the estimate needs only enough wells per plate
MAX_PLATES_COMPARED = 10
MAX_SITES_COMPARED = 2000
#: the PCA scatter lists at most this many plates (or conditions) in its legend
MAX_LEGEND_ENTRIES = 24


def _experiments(meta: pd.DataFrame) -> np.ndarray:
    if "experiment" in meta.columns:
        return as_str(meta, "experiment")
    return np.full(len(meta), "", dtype=object)


def _standardise(X: np.ndarray, moments: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``X`` centred and scaled by its own columns' moments, or by ``moments`` (of a larger table)."""
    X = np.asarray(X, np.float64)
    mean, sd = column_moments(X) if moments is None else moments
    return (X - mean) / np.where(sd > 1e-12, sd, 1.0)


def column_moments(X: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column in float64, a block of rows at a time: a float64
    copy of RxRx19a's 305,520 x 1,024 table would be 2.5 GB (and its deviations as much again)."""
    X = np.asarray(X)
    mean = np.zeros(X.shape[1])
    for s in range(0, len(X), chunk):
        mean += X[s:s + chunk].sum(axis=0, dtype=np.float64)
    mean /= max(len(X), 1)
    ss = np.zeros(X.shape[1])
    for s in range(0, len(X), chunk):
        ss += np.square(X[s:s + chunk] - mean).sum(axis=0)
    return mean, np.sqrt(ss / max(len(X), 1))


def compared_sites(rows: np.ndarray, plates: np.ndarray, wells: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """The sites of ``rows`` (one experiment) that plate predictability compares: those of at most
    :data:`MAX_PLATES_COMPARED` plates, evenly spread in plate order, and above
    :data:`MAX_SITES_COMPARED` sites whole wells drawn at random, as many sites from each plate."""
    names = np.unique(plates[rows])
    if len(names) > MAX_PLATES_COMPARED:
        names = names[np.linspace(0, len(names) - 1, MAX_PLATES_COMPARED).round().astype(int)]
        rows = rows[np.isin(plates[rows], names)]
    if len(rows) <= MAX_SITES_COMPARED:
        return rows
    per_plate = MAX_SITES_COMPARED // len(names)
    kept = []
    for name in names:
        own = rows[plates[rows] == name]
        well_names, sizes = np.unique(wells[own], return_counts=True)
        order = rng.permutation(len(well_names))
        take = order[np.cumsum(sizes[order]) <= max(per_plate, sizes[order[0]])]
        kept.append(own[np.isin(wells[own], well_names[take])])
    return np.sort(np.concatenate(kept))


def plate_predictability(X: np.ndarray, meta: pd.DataFrame, n_splits: int = 5,
                         seed: int = 0) -> dict:
    """Held-out balanced accuracy of predicting the plate, within each experiment.

    Returns ``{"accuracy", "accuracy_sd", "chance", "n_plates", "n_sites", "n_splits"}``
    (site-weighted over experiments with at least two plates; ``n_plates`` and ``n_sites`` count
    those compared, :func:`compared_sites`).
    """
    plates = batch_labels(meta)
    wells = well_groups(meta)
    exps = _experiments(meta)
    rng = np.random.default_rng(seed)
    accs, chances, weights, sds, n_plates = [], [], [], [], 0
    for e in pd.unique(exps):
        rows = compared_sites(np.flatnonzero(exps == e), plates, wells, rng)
        y = plates[rows].astype(str)
        k = len(np.unique(y))
        if k < 2:
            continue
        per_split = []
        Xe = np.asarray(X)[rows]
        for tr, te in grouped_splits(y, wells[rows], n_splits=n_splits, seed=seed):
            model = LinearModel(seed=seed).fit(Xe[tr], y[tr])
            pred = model.predict(Xe[te])
            per_split.append(np.mean([np.mean(pred[y[te] == c] == c) for c in np.unique(y[te])]))
        accs.append(np.mean(per_split))
        sds.append(np.std(per_split, ddof=1) if len(per_split) > 1 else 0.0)
        chances.append(1.0 / k)
        weights.append(len(rows))
        n_plates += k
    if not accs:
        raise TableError("plate predictability needs an experiment with at least two plates")
    w = np.asarray(weights, float) / sum(weights)
    return {"accuracy": float(np.dot(w, accs)), "accuracy_sd": float(np.dot(w, sds)),
            "chance": float(np.dot(w, chances)), "n_plates": n_plates, "n_sites": int(sum(weights)),
            "n_splits": n_splits}


def silhouettes(X: np.ndarray, meta: pd.DataFrame, seed: int = 0) -> dict:
    """Silhouette of the C+/C- control sites by plate and by condition, within experiments."""
    plates = batch_labels(meta)
    cond = control_labels(meta)
    exps = _experiments(meta)
    moments = column_moments(X)
    rng = np.random.default_rng(seed)
    by_plate, by_cond, weights = [], [], []
    for e in pd.unique(exps):
        rows = np.flatnonzero((exps == e) & (cond != ""))
        if len(np.unique(plates[rows])) < 2 or len(np.unique(cond[rows])) < 2:
            continue
        if len(rows) > MAX_SILHOUETTE_SITES:
            rows = np.sort(rng.choice(rows, MAX_SILHOUETTE_SITES, replace=False))
        Z = _standardise(np.asarray(X)[rows], moments)
        by_plate.append(silhouette_score(Z, plates[rows].astype(str)))
        by_cond.append(silhouette_score(Z, cond[rows].astype(str)))
        weights.append(len(rows))
    if not weights:
        raise TableError("silhouettes need C+ and C- control sites on at least two plates "
                         "of one experiment")
    w = np.asarray(weights, float) / sum(weights)
    return {"plate": float(np.dot(w, by_plate)), "condition": float(np.dot(w, by_cond))}


def batch_diagnostics(X: np.ndarray, meta: pd.DataFrame, n_splits: int = 5, seed: int = 0,
                      ) -> dict:
    """Plate predictability and silhouettes; a part the metadata cannot support is
    replaced by ``{"skipped": reason}``."""
    out: dict = {}
    for key, fn in (("plate_predictability", plate_predictability), ("silhouette", silhouettes)):
        try:
            out[key] = fn(X, meta, **({"n_splits": n_splits} if key == "plate_predictability" else {}),
                          seed=seed)
        except (TableError, TaskError) as exc:
            out[key] = {"skipped": str(exc)}
    return out


def plot_batch_pca(stages: dict[str, np.ndarray], meta: pd.DataFrame, path, seed: int = 0,
                   max_points: int = 20_000):
    """PCA of each stage's features: coloured by plate (left) and condition (right)."""
    from matplotlib.figure import Figure

    from napari_gandl.palettes import category_colors

    plates = batch_labels(meta).astype(str)
    cond = (control_labels(meta) if "disease_condition" in meta.columns
            else np.full(len(meta), "", dtype=object))
    cond = np.where(cond == "", "treated / other", cond).astype(str)
    idx = np.arange(len(meta))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    fig = Figure(figsize=(10, 4.2 * len(stages)), dpi=100, layout="constrained")
    axes = fig.subplots(len(stages), 2, squeeze=False)
    size = float(np.clip(2e4 / len(idx), 1, 14))
    for row, (stage, X) in zip(axes, stages.items()):
        xy = PCA(n_components=2, random_state=seed).fit_transform(_standardise(np.asarray(X)[idx]))
        for ax, labels, what in ((row[0], plates[idx], "plate"), (row[1], cond[idx], "condition")):
            cats = sorted(pd.unique(labels))
            for cat, col in zip(cats, category_colors(cats)):
                m = labels == cat
                ax.scatter(xy[m, 0], xy[m, 1], s=size, color="lightgrey" if cat == "treated / other" else col,
                           linewidths=0, rasterized=True, label=f"{cat} ({int(m.sum())})")
            if len(cats) <= MAX_LEGEND_ENTRIES:
                ax.legend(fontsize=7, loc="best", framealpha=0.8)
                ax.set_title(f"{stage}: coloured by {what}", fontsize=10)
            else:  # RxRx19a's 200 plates: a legend would take the whole figure
                ax.set_title(f"{stage}: coloured by {what} ({len(cats)}, too many to list)", fontsize=10)
            ax.set_xlabel("PC 1")
            ax.set_ylabel("PC 2")
    fig.savefig(path)
    return fig
