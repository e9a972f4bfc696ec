"""Perturbation spaces (E2 / C2) from a linear SVM, as in the GAN-DL paper.

A linear SVM is trained on two control populations (E2: C+ vs C-; C2: HRCE
vs VERO untreated sites).  In the standardised feature space:

* **on-perturbation** = projection on the SVM normal, scaled and shifted so
  the positive class centre sits at +1 and the negative class centre at -1;
* **off-perturbation** = projection on the leading principal component of
  the control sites after removing the on-axis direction (so it is
  orthogonal to the normal), zero-centred on the controls.

:meth:`PerturbationSpace.transform` is a single (n x d) @ (d x 2) product,
so projecting 300,000 sites takes a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from napari_gandl.analysis.classify import LinearModel, TaskError
from napari_gandl.palettes import OTHER, TREATED, category_colors
from napari_gandl.tables import EmbeddingTable, as_str, control_labels, is_untreated, require_columns


@dataclass
class PerturbationSpace:
    name: str
    positive: str
    negative: str
    matrix: np.ndarray      # (d, 2): raw features -> (on, off) before offset
    offset: np.ndarray      # (2,)
    normal: np.ndarray      # unit SVM normal in standardised space
    off_direction: np.ndarray
    n_fit: dict = field(default_factory=dict)

    def transform(self, X: np.ndarray, chunk: int = 262_144) -> np.ndarray:
        """(n, 2) coordinates: column 0 on-perturbation, column 1 off-perturbation."""
        X = np.asarray(X)
        out = np.empty((len(X), 2), dtype=np.float64)
        M = self.matrix.astype(np.float32 if X.dtype == np.float32 else np.float64)
        for s in range(0, len(X), chunk):
            out[s:s + chunk] = X[s:s + chunk] @ M
        out += self.offset
        return out

    def on_axis(self, X: np.ndarray) -> np.ndarray:
        return self.transform(X)[:, 0]

    def as_dict(self) -> dict:
        return {"name": self.name, "positive": self.positive, "negative": self.negative,
                "n_fit": self.n_fit}


def fit_space(X: np.ndarray, labels: np.ndarray, positive: str, negative: str,
              name: str = "space", C: float = 1.0, solver: str = "auto", seed: int = 0,
              ) -> PerturbationSpace:
    """Fit an on/off-perturbation space from sites labelled ``positive``/``negative``
    (other labels, e.g. None, are ignored)."""
    labels = np.asarray(labels, dtype=object)
    pos = labels == positive
    neg = labels == negative
    if not pos.any() or not neg.any():
        missing = positive if not pos.any() else negative
        raise TaskError(f"{name}: no site of class {missing!r}; cannot fit the space")
    sel = pos | neg
    Xs = np.asarray(np.asarray(X)[sel], np.float64)  # the sites fitted only, not a float64 copy of all
    y = np.where(pos[sel], 1, 0)
    model = LinearModel(C=C, solver=solver, seed=seed).fit(Xs, y)
    mean = model.mean_.astype(np.float64)
    scale = model.scale_.astype(np.float64)
    wvec = model.normal_                       # unit, standardised space, points to class 1
    Z = (Xs - mean) / scale
    proj = Z @ wvec
    cp, cn = proj[y == 1].mean(), proj[y == 0].mean()
    if not np.isfinite(cp - cn) or abs(cp - cn) < 1e-12:
        raise TaskError(f"{name}: the two classes have the same centre on the SVM normal")
    a = 2.0 / (cp - cn)
    c = 1.0 - a * cp
    # off-axis: leading PC of the controls with the normal projected out
    Zc = Z - Z.mean(axis=0)
    R = Zc - np.outer(Zc @ wvec, wvec)
    cov = R.T @ R
    evals, evecs = np.linalg.eigh(cov)
    v = evecs[:, -1]
    v = v - (v @ wvec) * wvec
    v /= max(np.linalg.norm(v), 1e-300)
    if v[np.argmax(np.abs(v))] < 0:          # deterministic sign
        v = -v
    off0 = float((Z @ v).mean())
    D = np.stack([a * wvec, v], axis=1) / scale[:, None]        # (d, 2)
    offset = np.array([c - a * (mean / scale) @ wvec, -(mean / scale) @ v - off0])
    return PerturbationSpace(name, positive, negative, D, offset, wvec, v,
                             {positive: int(pos.sum()), negative: int(neg.sum())})


def fit_e2(table: EmbeddingTable, **kw) -> PerturbationSpace:
    """E2 (effectiveness) space: C+ (Mock/UV, untreated) -> +1, C- (active virus) -> -1."""
    lab = control_labels(table.meta)
    return fit_space(table.X, np.where(lab == "", None, lab), "C+", "C-", name="E2", **kw)


def fit_c2(table: EmbeddingTable, positive: str | None = None, negative: str | None = None,
           column: str = "cell_type", **kw) -> PerturbationSpace:
    """C2 (cell model) space on untreated sites: ``positive`` cell type -> +1.

    Defaults: HRCE -> +1, VERO -> -1 when present, else the two cell types
    in sorted order."""
    require_columns(table.meta, [column], "the C2 (cell model) space")
    ct = as_str(table.meta, column)
    kinds = sorted(set(ct) - {""})
    if len(kinds) < 2:
        raise TaskError(f"C2: needs two cell types in column {column!r}, found {kinds}")
    if positive is None or negative is None:
        if "HRCE" in kinds and "VERO" in kinds:
            positive, negative = "HRCE", "VERO"
        else:
            positive, negative = kinds[0], kinds[1]
    lab = np.where(is_untreated(table.meta) & np.isin(ct, [positive, negative]), ct, None)
    return fit_space(table.X, lab, positive, negative, name="C2", **kw)


# --------------------------------------------------------------------- plots

COLOR_PRESETS = ("condition", "cell type", "compound", "dose")
#: marker shapes of the categories of ``plot_space(..., marker_by=...)`` (cell types), in order
MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")



def color_values(table: pd.DataFrame, rows: np.ndarray, color_by: str) -> tuple[np.ndarray, str]:
    """Values to colour the points by, and their kind ('category', 'dose' or 'number')."""
    # only the columns needed (the table may carry a 300,000 x 512 embedding)
    needed = [c for c in dict.fromkeys(["disease_condition", "treatment", "cell_type", "treatment_conc",
                                        color_by]) if c in table.columns]
    sub = table[needed].iloc[rows]
    untreated = is_untreated(sub)
    if color_by == "condition":
        cond = as_str(sub, "disease_condition") if "disease_condition" in sub else np.full(len(sub), "")
        return np.where(untreated, cond, TREATED).astype(object), "category"
    if color_by == "cell type":
        return as_str(sub, "cell_type").astype(object), "category"
    if color_by == "compound":
        return np.where(untreated, "", as_str(sub, "treatment")).astype(object), "category"
    if color_by == "dose":
        dose = pd.to_numeric(sub["treatment_conc"], errors="coerce").to_numpy(np.float64)
        return np.where(untreated, np.nan, dose), "dose"
    col = sub[color_by]
    if pd.api.types.is_bool_dtype(col):
        return np.where(col.to_numpy(), "yes", "no").astype(object), "category"
    if pd.api.types.is_numeric_dtype(col) and col.nunique() > 12:
        return col.to_numpy(np.float64), "number"
    return as_str(sub, color_by).astype(object), "category"


def color_groups(values: np.ndarray, kind: str, other_label: str = "other") -> list[tuple[str, tuple, np.ndarray]]:
    """``[(label, rgba, point indices)]``: categories (biggest first, empty = grey
    'other'), doses (log-spaced colours), or numbers (9 quantile bins)."""
    from matplotlib import colormaps

    groups = []
    if kind == "category":
        codes, uniques = pd.factorize(pd.Series(values, dtype=object).fillna(""), sort=True)
        counts = np.bincount(codes, minlength=len(uniques))
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        named = [k for k in np.argsort(-counts, kind="stable") if uniques[k] != ""]
        colors = category_colors([uniques[k] for k in named])
        for color, k in zip(colors, named):
            groups.append((str(uniques[k]), color, order[bounds[k]:bounds[k + 1]]))
        for k in range(len(uniques)):
            if uniques[k] == "":
                groups.insert(0, (other_label, OTHER, order[bounds[k]:bounds[k + 1]]))
        return groups
    values = np.asarray(values, np.float64)
    ok = np.isfinite(values)
    if (~ok).any():
        groups.append(("untreated" if kind == "dose" else "no value", OTHER, np.flatnonzero(~ok)))
    if not ok.any():
        return groups
    if kind == "dose":
        levels = np.unique(values[ok])
        cmap = colormaps["viridis"]
        for i, level in enumerate(levels):
            frac = i / max(len(levels) - 1, 1)
            groups.append((f"{level:g} µM", cmap(0.1 + 0.85 * frac), np.flatnonzero(values == level)))
        return groups
    edges = np.unique(np.quantile(values[ok], np.linspace(0, 1, 10)))
    cmap = colormaps["coolwarm"]
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    for b in range(len(edges) - 1):
        idx = np.flatnonzero(ok & (which == b))
        if len(idx):
            groups.append((f"{edges[b]:.3g} – {edges[b + 1]:.3g}", cmap(b / max(len(edges) - 2, 1)), idx))
    return groups


def plot_space(coords: np.ndarray, color_by: Sequence | np.ndarray, path=None, title: str = "",
               kind: str = "auto", xlabel: str = "on-perturbation", ylabel: str = "off-perturbation",
               max_points: int = 200_000, seed: int = 0, log_color: bool = True,
               other_label: str = "other", marker_by: Sequence | np.ndarray | None = None):
    """Scatter of (on, off) coordinates coloured by a category (condition,
    cell type) or a number (dose, log scale); with ``marker_by`` (categories:
    cell types) each of its categories gets its own marker shape.  Saved as PNG
    or SVG by the suffix of ``path``; markers are rasterised so SVGs of 300k
    points stay small.  Above ``max_points`` a random subsample is drawn.
    Returns the Figure."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    coords = np.asarray(coords)
    values = np.asarray(color_by, dtype=object)
    n = len(coords)
    idx = np.arange(n)
    if n > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    c, v = coords[idx], values[idx]
    shapes = np.full(len(idx), "", dtype=object) if marker_by is None else \
        pd.Series(np.asarray(marker_by, dtype=object)[idx]).fillna("").astype(str).to_numpy(object)
    marker_of = {k: MARKERS[i % len(MARKERS)] for i, k in enumerate(sorted(set(shapes) - {""}))}
    if kind == "auto":
        try:
            num = pd.to_numeric(pd.Series(v), errors="raise").to_numpy(np.float64)
            kind = "numeric" if len(np.unique(num[np.isfinite(num)])) > 12 or log_color else "categorical"
        except (ValueError, TypeError):
            kind = "categorical"
    # categories: wider, for the legend beside the plot
    fig = Figure(figsize=(6 if kind == "numeric" else 8.4, 4.8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    size = float(np.clip(3e4 / max(len(c), 1), 0.5, 12))
    if kind == "numeric":
        num = pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(np.float64)
        ok = np.isfinite(num)
        if log_color and (num[ok] > 0).all():
            num = np.log10(num)
            label = "log10 value"
        else:
            label = "value"
        ax.scatter(c[~ok, 0], c[~ok, 1], s=size, c="lightgrey", rasterized=True, linewidths=0,
                   label=other_label)
        sc = ax.scatter(c[ok, 0], c[ok, 1], s=size, c=num[ok], cmap="Reds", rasterized=True,
                        linewidths=0)
        fig.colorbar(sc, ax=ax, label=label)
    else:
        labels = np.array(["" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)
                           for x in v], dtype=object)
        handles = []
        for label, col, m in color_groups(labels, "category", other_label):
            for shape in np.unique(shapes[m]):
                at = m[shapes[m] == shape]
                ax.scatter(c[at, 0], c[at, 1], s=size, color=col, marker=marker_of.get(shape, "o"),
                           rasterized=True, linewidths=0)
            handles.append(Line2D([], [], ls="none", marker="o", ms=5, color=col, label=f"{label} ({len(m)})"))
        # the shapes as outlines, so that none reads as a colour (grey is compound-treated)
        handles += [Line2D([], [], ls="none", marker=marker, ms=5, mfc="none", mec="black", label=shape)
                    for shape, marker in marker_of.items()]
        # beside the plot, never over its points
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                  frameon=False)
    ax.axvline(1, ls="--", lw=0.6, color="grey")
    ax.axvline(-1, ls="--", lw=0.6, color="grey")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    if path is not None:
        fig.savefig(path)
    return fig
