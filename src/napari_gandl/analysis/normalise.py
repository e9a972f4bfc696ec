"""Plate (batch) effect correction against control wells.

Three methods, all fitted on the *control* sites of each batch only so that
compound effects are not normalised away:

``centerscale``
    Per batch, subtract the control mean and divide by the control standard
    deviation of each feature.
``tvn``
    Typical variation normalisation: centre every batch on its controls, fit
    a PCA whitening on the pooled controls, then align each batch's control
    covariance to the pooled (identity) covariance, CORAL-style
    (``x -> C_b^{-1/2} x`` with a shrunk per-batch covariance ``C_b``).
``none``
    Return the features unchanged.

The calling shape mirrors EFAAR / pycytominer: ``embeddings, metadata,
pert_col, control_key, batch_col``.  With RxRx19a metadata the default
controls are the untreated sites (empty ``treatment``: Mock, UV-inactivated
and active-virus wells), present on every plate.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from napari_gandl.tables import EmbeddingTable, TableError, as_str, batch_labels, is_untreated

METHODS = ("centerscale", "tvn", "none")


def control_mask(meta: pd.DataFrame, pert_col: str = "treatment",
                 control_key=None) -> np.ndarray:
    """Boolean mask of control sites.

    ``control_key`` may be: ``None`` (empty/NaN ``pert_col`` = untreated),
    a value or list of values of ``pert_col``, a boolean array, or a callable
    ``meta -> bool array``.
    """
    if callable(control_key):
        return np.asarray(control_key(meta), dtype=bool)
    if isinstance(control_key, (np.ndarray, pd.Series)) and np.asarray(control_key).dtype == bool:
        mask = np.asarray(control_key, dtype=bool)
        if mask.shape != (len(meta),):
            raise ValueError(f"control mask has shape {mask.shape}, expected ({len(meta)},)")
        return mask
    if pert_col not in meta.columns:
        raise TableError(f"metadata: normalisation needs the perturbation column "
                         f"{pert_col!r}, which is missing")
    if control_key is None:
        return is_untreated(meta, pert_col)
    keys = [control_key] if isinstance(control_key, (str, int, float)) else list(control_key)
    return np.isin(as_str(meta, pert_col), [str(k) for k in keys])


def _batch_controls(batches: np.ndarray, controls: np.ndarray, min_controls: int):
    codes, uniq = pd.factorize(batches)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    for k, b in enumerate(uniq):
        rows = order[bounds[k]:bounds[k + 1]]          # row indices of batch b
        ctrl = rows[controls[rows]]
        if len(ctrl) < min_controls:
            warnings.warn(f"batch {b!r}: only {len(ctrl)} control site(s); "
                          f"using all {len(rows)} sites of the batch as reference",
                          stacklevel=3)
            ctrl = rows
        yield b, rows, ctrl


def centerscale_on_controls(X: np.ndarray, meta: pd.DataFrame, pert_col: str = "treatment",
                            control_key=None, batch_col: str | Sequence[str] | None = None,
                            eps: float = 1e-6, min_controls: int = 2) -> np.ndarray:
    """Per batch: (x - mean_controls) / std_controls, feature-wise."""
    X = np.asarray(X)
    batches = batch_labels(meta, batch_col)
    controls = control_mask(meta, pert_col, control_key)
    out = np.empty(X.shape, dtype=np.float32)
    # floor each batch's sd at 1 % of the feature's sd over all controls, so a
    # feature that happens to be (near) constant on one plate's controls does
    # not blow up that plate
    floor = (np.maximum(0.01 * X[controls].std(axis=0, dtype=np.float64), eps)
             if controls.sum() > 1 else eps)
    for _, rows, ctrl in _batch_controls(batches, controls, min_controls):
        ref = X[ctrl].astype(np.float64)
        mu = ref.mean(axis=0)
        sd = ref.std(axis=0, ddof=1) if len(ref) > 1 else np.ones(X.shape[1])
        out[rows] = (X[rows] - mu) / np.maximum(sd, floor)
    return out


def tvn_on_controls(X: np.ndarray, meta: pd.DataFrame, pert_col: str = "treatment",
                    control_key=None, batch_col: str | Sequence[str] | None = None,
                    var_floor: float = 1e-6, min_controls: int = 2,
                    align: bool = True) -> np.ndarray:
    """Typical variation normalisation with per-batch CORAL alignment.

    1. centre each batch on its control mean;
    2. PCA-whiten with the pooled controls (components whose variance is below
       ``var_floor`` x the largest are dropped, so the output may have fewer
       columns than the input);
    3. (``align``) per batch, multiply by the inverse square root of the
       batch's control covariance in the whitened space, shrunk towards the
       identity by ``d / (n_b + d)`` so small batches are not over-fitted.
    """
    X = np.asarray(X, dtype=np.float64)
    batches = batch_labels(meta, batch_col)
    controls = control_mask(meta, pert_col, control_key)
    Xc = np.empty_like(X)
    ref = np.zeros(len(X), dtype=bool)
    groups = list(_batch_controls(batches, controls, min_controls))
    for _, rows, ctrl in groups:
        Xc[rows] = X[rows] - X[ctrl].mean(axis=0)
        ref[ctrl] = True
    C = np.cov(Xc[ref], rowvar=False)
    w, V = np.linalg.eigh(np.atleast_2d(C))
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    keep = w > var_floor * max(w[0], 1e-300)
    W = V[:, keep] / np.sqrt(w[keep])
    Z = Xc @ W
    d = Z.shape[1]
    if align:
        for _, rows, ctrl in groups:
            n = len(ctrl)
            if n < 2:
                continue
            alpha = d / (n + d)
            Z[rows] = _shrunk_whiten(Z[rows], Z[ctrl], alpha, var_floor)
    return Z.astype(np.float32)


def _shrunk_whiten(Zrows: np.ndarray, Zctrl: np.ndarray, alpha: float, floor: float) -> np.ndarray:
    """``Zrows @ C^{-1/2}`` with ``C = (1 - alpha) cov(Zctrl) + alpha I``.

    Uses the thin SVD of the centred controls, so a plate with n controls
    costs O(n d min(n, d)) instead of a d x d eigen-decomposition: with
    ``Y = U S V^T``, ``C = V diag(l) V^T + alpha (I - V V^T)``, so
    ``C^{-1/2} = alpha^{-1/2} I + V (diag(l^{-1/2}) - alpha^{-1/2}) V^T``."""
    Y = Zctrl - Zctrl.mean(axis=0)
    n, d = Y.shape
    if n < d:   # eigen-decompose the small n x n Gram matrix instead of an SVD
        w, U = np.linalg.eigh(Y @ Y.T)
        keep = w > 1e-12 * max(w.max(), 1e-300)
        sv2 = w[keep]
        Vt = (U[:, keep].T @ Y) / np.sqrt(sv2)[:, None]
    else:
        sv2, V = np.linalg.eigh(Y.T @ Y)
        sv2 = np.maximum(sv2, 0.0)
        Vt = V.T
    lam = (1 - alpha) * sv2 / (n - 1) + alpha
    lam = np.maximum(lam, floor)
    a = 1.0 / np.sqrt(alpha)
    return a * Zrows + ((Zrows @ Vt.T) * (1.0 / np.sqrt(lam) - a)) @ Vt


def normalise(table: EmbeddingTable, method: str = "centerscale", pert_col: str = "treatment",
              control_key=None, batch_col: str | Sequence[str] | None = None,
              ) -> EmbeddingTable:
    """Apply a normalisation method to an :class:`EmbeddingTable`."""
    method = (method or "none").lower().replace("-", "").replace("_", "")
    if method in ("none", "raw"):
        return table
    if method in ("centerscale", "centrescale", "zscore"):
        return table.with_features(centerscale_on_controls(
            table.X, table.meta, pert_col, control_key, batch_col))
    if method == "tvn":
        Z = tvn_on_controls(table.X, table.meta, pert_col, control_key, batch_col)
        return table.with_features(Z, [f"tvn{i:03d}" for i in range(Z.shape[1])])
    raise ValueError(f"unknown normalisation {method!r}; choose from {', '.join(METHODS)}")

