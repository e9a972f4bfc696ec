"""Dose-response curves on the on-perturbation (E2) score.

For every compound x cell type: the per-site on-axis score is averaged per
well, then per dose (mean ± s.e.m. over wells).  A four-parameter logistic

    f(x) = bottom + (top - bottom) / (1 + 10 ** (hill * (log10_ec50 - x))),
    x = log10(dose), hill > 0

is fitted to the dose means weighted by the number of wells (which gives the
same least-squares solution as fitting every well).  A decreasing response
has ``top < bottom``.  All curves are fitted together with a batched,
bounded Levenberg-Marquardt in numpy from several starting points per curve
(the best is kept), which fits the whole RxRx19a library (1,672 compounds x
6 doses x 2 cell types) in well under a second.

Significance: an F-test of the 4PL against a flat (constant) model at the
well level (``df = 3, n_wells - 4``), Benjamini-Hochberg q-values over all
fitted curves.  Curves with fewer than ``min_doses`` (default 4) distinct
doses are reported with status ``too few doses`` and not fitted.

Scores are in on-axis units: C- (infected) centre -1, C+ (uninfected) +1, so
``rescue_fraction = (max fitted response + 1) / 2`` is the fraction of the
C- -> C+ distance a compound recovers, and ``efficacy`` the fitted change
from the lowest to the highest tested dose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from napari_gandl.tables import TableError, as_str, is_untreated, require_columns, well_groups

LN10 = np.log(10.0)
HILL_BOUNDS = (0.1, 10.0)  # the Hill slopes a fit may take; a fit at a bound is flagged
OFF_MANIFOLD_FLAG = "off-manifold (possible toxicity)"


def logistic4(x, bottom, top, log10_ec50, hill):
    """The 4PL on log10 dose (broadcasts)."""
    return bottom + (top - bottom) / (1.0 + np.exp(LN10 * hill * (log10_ec50 - x)))


# --------------------------------------------------------------------- batched LM

@dataclass
class FitResult:
    params: np.ndarray     # (N, 4) bottom, top, log10_ec50, hill
    sse: np.ndarray        # (N,) weighted SSE at the optimum
    converged: np.ndarray  # (N,) bool
    iterations: int


def _model_and_jac(theta: np.ndarray, x: np.ndarray):
    b, t, m, h = (theta[:, i:i + 1] for i in range(4))
    z = np.clip(LN10 * h * (x - m), -60.0, 60.0)
    s = 1.0 / (1.0 + np.exp(-z))
    f = b + (t - b) * s
    ds = (t - b) * s * (1.0 - s) * LN10
    J = np.stack([1.0 - s, s, -h * ds, (x - m) * ds], axis=-1)
    return f, J


def _lm(theta, X, Y, W, LO, HI, lam, max_iter, tol):
    """Bounded Levenberg-Marquardt on a batch of 4PL problems (in place)."""
    sw = np.sqrt(W)
    f, J = _model_and_jac(theta, X)
    r = (Y - f) * sw
    sse = np.einsum("nk,nk->n", r, r)
    active = np.ones(len(theta), bool)
    eye = np.eye(4)
    it = 0
    for it in range(1, max_iter + 1):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        Ja = J[idx] * sw[idx, :, None]
        JT = Ja.transpose(0, 2, 1)
        A = JT @ Ja
        g = JT @ r[idx][:, :, None]
        g = g[:, :, 0]
        # projected step: parameters pinned at a bound by the gradient are frozen
        th = theta[idx]
        frozen = ((th <= LO[idx]) & (g < 0)) | ((th >= HI[idx]) & (g > 0))
        if frozen.any():
            free = ~frozen
            A = A * (free[:, :, None] & free[:, None, :]) + eye * frozen[:, :, None]
            g = g * free
        g = g[:, :, None]
        diag = np.einsum("nii->ni", A)
        damp = lam[idx, None] * np.maximum(diag, 1e-12) + 1e-12 * (diag.sum(1, keepdims=True) + 1e-12)
        step = np.linalg.solve(A + damp[:, :, None] * eye, g)[:, :, 0]
        cand = np.clip(theta[idx] + step, LO[idx], HI[idx])
        fc, Jc = _model_and_jac(cand, X[idx])
        rc = (Y[idx] - fc) * sw[idx]
        ssec = np.einsum("nk,nk->n", rc, rc)
        better = ssec < sse[idx]
        gain = np.where(better, sse[idx] - ssec, 0.0)
        sse_old = sse[idx]
        acc = idx[better]
        theta[acc] = cand[better]
        J[acc], r[acc] = Jc[better], rc[better]
        sse[acc] = ssec[better]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-9)
        rej = idx[~better]
        lam[rej] = lam[rej] * 4.0
        done = (better & (gain <= tol * (sse_old + 1e-12))) | (lam[idx] > 1e8)
        active[idx[done]] = False
    return theta, sse, active, it


def fit_logistic4_batch(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None,
                        bounds: tuple[np.ndarray, np.ndarray] | None = None,
                        starts: np.ndarray | None = None, max_iter: int = 150,
                        tol: float = 1e-6, explore_iter: int = 12) -> FitResult:
    """Fit N 4PL curves at once by bounded Levenberg-Marquardt.

    Every start runs ``explore_iter`` iterations; the best start of each curve
    then continues to convergence (``max_iter`` in all).

    Parameters
    ----------
    x, y : (N, K) log10 doses and responses (pad unused points with w = 0)
    w : (N, K) non-negative weights (default 1)
    bounds : (lo, hi), each (N, 4) or (4,); default: bottom/top within the
        response range widened by its span, log10 EC50 within one log unit of
        the tested doses, Hill slope within ``HILL_BOUNDS`` ([0.1, 10])
    starts : (N, S, 4) starting points; default: data-driven grid of 6
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    N, K = x.shape
    w = np.ones_like(x) if w is None else np.asarray(w, np.float64)
    if N == 0:
        return FitResult(np.zeros((0, 4)), np.zeros(0), np.zeros(0, bool), 0)
    xmin = np.where(w > 0, x, np.inf).min(axis=1)
    xmax = np.where(w > 0, x, -np.inf).max(axis=1)
    ymin = np.where(w > 0, y, np.inf).min(axis=1)
    ymax = np.where(w > 0, y, -np.inf).max(axis=1)
    if bounds is None:
        span = np.maximum(ymax - ymin, 1e-6)
        lo = np.stack([ymin - span, ymin - span, xmin - 1.0, np.full(N, HILL_BOUNDS[0])], axis=1)
        hi = np.stack([ymax + span, ymax + span, xmax + 1.0, np.full(N, HILL_BOUNDS[1])], axis=1)
    else:
        lo = np.broadcast_to(np.asarray(bounds[0], np.float64), (N, 4)).copy()
        hi = np.broadcast_to(np.asarray(bounds[1], np.float64), (N, 4)).copy()
    if starts is None:
        starts = default_starts(x, y, w)
    S = starts.shape[1]
    rep = lambda a: np.repeat(a, S, axis=0)  # noqa: E731
    theta = np.clip(starts.reshape(N * S, 4).astype(np.float64), rep(lo), rep(hi))
    lam = np.full(N * S, 1e-2)
    theta, sse, _, it1 = _lm(theta, rep(x), rep(y), rep(w), rep(lo), rep(hi), lam,
                             min(explore_iter, max_iter), tol)
    # continue the two best starts of each curve
    keep = min(2, S)
    best = np.argsort(sse.reshape(N, S), axis=1)[:, :keep]
    pick = (np.arange(N)[:, None] * S + best).ravel()
    rk = lambda a: np.repeat(a, keep, axis=0)  # noqa: E731
    theta, sse, active, it2 = _lm(theta[pick], rk(x), rk(y), rk(w), rk(lo), rk(hi), lam[pick],
                                  max(max_iter - it1, 1), tol)
    win = np.argmin(sse.reshape(N, keep), axis=1)
    sel = np.arange(N) * keep + win
    return FitResult(theta[sel], sse[sel], ~active[sel], it1 + it2)


def default_starts(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """6 starts per curve: bottom/top from the low/high-dose ends, log-EC50 at
    25/50/75 % of the tested range, Hill 1 and 3."""
    N, K = x.shape
    big = np.where(w > 0, x, np.inf)
    order = np.argsort(big, axis=1)
    ys = np.take_along_axis(y, order, axis=1)
    n_valid = (w > 0).sum(axis=1)
    first = ys[:, 0]
    last = ys[np.arange(N), np.maximum(n_valid - 1, 0)]
    # average two end points when available for robustness to noise
    second = np.where(n_valid > 2, ys[:, 1], first)
    penult = np.where(n_valid > 2, ys[np.arange(N), np.maximum(n_valid - 2, 0)], last)
    b0 = 0.5 * (first + second)
    t0 = 0.5 * (last + penult)
    xmin = np.where(w > 0, x, np.inf).min(axis=1)
    xmax = np.where(w > 0, x, -np.inf).max(axis=1)
    fr = np.array([0.25, 0.5, 0.75])
    hs = np.array([1.0, 3.0])
    m0 = xmin[:, None] + fr[None, :] * (xmax - xmin)[:, None]  # (N, 4)
    starts = np.empty((N, len(fr) * len(hs), 4))
    k = 0
    for i in range(len(fr)):
        for h in hs:
            starts[:, k] = np.stack([b0, t0, m0[:, i], np.full(N, h)], axis=1)
            k += 1
    return starts


# --------------------------------------------------------------------- curves table

def dose_points(scores: np.ndarray, meta: pd.DataFrame, compound_col: str = "treatment",
                dose_col: str = "treatment_conc", cell_col: str | None = "cell_type",
                ) -> pd.DataFrame:
    """Per compound x cell type x dose: mean ± s.e.m. over wells of the per-well
    mean score, plus the within-dose sum of squares needed for the F-test."""
    require_columns(meta, [compound_col, dose_col], "dose-response")
    treated = ~is_untreated(meta, compound_col)
    if not treated.any():
        raise TableError(f"metadata: no treated sites (column {compound_col!r} is empty everywhere)")
    dose = pd.to_numeric(meta[dose_col], errors="coerce").to_numpy(np.float64)
    bad = treated & ~(np.isfinite(dose) & (dose > 0))
    keep = treated & ~bad
    cell = as_str(meta, cell_col) if cell_col and cell_col in meta.columns else np.full(len(meta), "all")
    df = pd.DataFrame({
        "compound": as_str(meta, compound_col)[keep], "cell_type": cell[keep],
        "dose": dose[keep], "well": well_groups(meta)[keep],
        "score": np.asarray(scores, np.float64)[keep],
    })
    wells = df.groupby(["compound", "cell_type", "dose", "well"], sort=False, observed=True)["score"].mean()
    wells = wells.reset_index()
    g = wells.groupby(["compound", "cell_type", "dose"], sort=True, observed=True)["score"]
    pts = g.agg(["mean", "std", "count"]).reset_index()
    pts = pts.rename(columns={"mean": "mean", "std": "sd", "count": "n_wells"})
    pts["sem"] = pts["sd"] / np.sqrt(pts["n_wells"])
    pts["ss_within"] = (pts["sd"].fillna(0.0) ** 2) * (pts["n_wells"] - 1)
    pts.attrs["n_bad_dose"] = int(bad.sum())
    return pts


def fit_dose_response(points: pd.DataFrame, min_doses: int = 4, alpha: float = 0.05,
                      min_effect: float = 0.2) -> pd.DataFrame:
    """Fit every compound x cell type curve in ``points`` (from :func:`dose_points`).

    Returns one row per curve with: status, n_doses, n_wells, bottom, top,
    ec50_uM, log10_ec50, hill, r2 (on the weighted dose means), f_stat,
    p_value, q_value (BH), efficacy, rescue_fraction, direction ('rescues'
    when the response rises with dose towards C+, 'worsens' when it falls),
    hit, rank and flag.

    Ranking (:func:`ranked`): hits first, then the other rescuing curves, then
    the worsening ones, each by q-value then efficacy, so a significant
    worsening never ranks among rescues; :func:`off_manifold` then ranks the
    hits it flags after the other hits. ``flag`` names what to distrust in a fit: a Hill
    slope at its bound (steeper or shallower than the doses resolve), an
    EC50 outside the tested doses (extrapolated), a significant worsening.
    """
    pts = points.sort_values(["compound", "cell_type", "dose"]).reset_index(drop=True)
    key = pts["compound"].astype(str) + "\x00" + pts["cell_type"].astype(str)
    codes, uniq = pd.factorize(key, sort=False)
    n_curves = len(uniq)
    counts = np.bincount(codes, minlength=n_curves)
    K = int(counts.max()) if n_curves else 0
    pos = np.arange(len(pts)) - np.repeat(np.cumsum(counts) - counts, counts)
    x = np.zeros((n_curves, K))
    y = np.zeros((n_curves, K))
    w = np.zeros((n_curves, K))
    x[codes, pos] = np.log10(pts["dose"].to_numpy(np.float64))
    y[codes, pos] = pts["mean"].to_numpy(np.float64)
    w[codes, pos] = pts["n_wells"].to_numpy(np.float64)
    ssw = np.bincount(codes, weights=pts["ss_within"].to_numpy(np.float64), minlength=n_curves)
    n_wells = np.bincount(codes, weights=pts["n_wells"].to_numpy(np.float64), minlength=n_curves)
    first = np.cumsum(counts) - counts
    out = pd.DataFrame({
        "compound": pts["compound"].to_numpy()[first],
        "cell_type": pts["cell_type"].to_numpy()[first],
        "n_doses": counts, "n_wells": n_wells.astype(int),
        "min_dose_uM": 10 ** x[np.arange(n_curves), 0] if n_curves else [],
        "max_dose_uM": 10 ** x[np.arange(n_curves), np.maximum(counts - 1, 0)] if n_curves else [],
    })
    fit = counts >= min_doses
    for c in ("bottom", "top", "ec50_uM", "log10_ec50", "hill", "r2", "f_stat", "p_value",
              "efficacy", "rescue_fraction"):
        out[c] = np.nan
    out["status"] = np.where(fit, "fitted", f"too few doses (< {min_doses})")
    if fit.any():
        xf, yf, wf = x[fit], y[fit], w[fit]
        res = fit_logistic4_batch(xf, yf, wf)
        P = res.params
        ybar = (wf * yf).sum(1) / wf.sum(1)
        sst_means = (wf * (yf - ybar[:, None]) ** 2).sum(1)
        sse_means = res.sse
        sse1 = sse_means + ssw[fit]
        sse0 = sst_means + ssw[fit]
        nw = n_wells[fit]
        df2 = nw - 4
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(sst_means > 0, 1 - sse_means / sst_means, 0.0)
            F = ((sse0 - sse1) / 3.0) / (sse1 / df2)
            F = np.where(df2 > 0, np.maximum(F, 0.0), np.nan)
            F = np.where((df2 > 0) & (sse1 <= 1e-300) & (sse0 > sse1), np.inf, F)
            p = np.where(df2 > 0, stats.f.sf(F, 3, np.maximum(df2, 1)), np.nan)
        xlo = xf[:, 0]
        xhi = xf[np.arange(len(xf)), counts[fit] - 1]
        flo = logistic4(xlo, *P.T)
        fhi = logistic4(xhi, *P.T)
        grid = np.linspace(0, 1, 33)[None, :]
        fg = logistic4(xlo[:, None] + grid * (xhi - xlo)[:, None], *(P[:, i:i + 1] for i in range(4)))
        out.loc[fit, "bottom"] = P[:, 0]
        out.loc[fit, "top"] = P[:, 1]
        out.loc[fit, "log10_ec50"] = P[:, 2]
        out.loc[fit, "ec50_uM"] = 10 ** P[:, 2]
        out.loc[fit, "hill"] = P[:, 3]
        out.loc[fit, "r2"] = r2
        out.loc[fit, "f_stat"] = F
        out.loc[fit, "p_value"] = p
        out.loc[fit, "efficacy"] = fhi - flo
        out.loc[fit, "rescue_fraction"] = (fg.max(axis=1) + 1.0) / 2.0
    p_values = out["p_value"].to_numpy(np.float64)
    tested = np.isfinite(p_values)   # curves not fitted are not tests
    out["q_value"] = np.nan
    out.loc[tested, "q_value"] = stats.false_discovery_control(p_values[tested], method="bh")
    with np.errstate(divide="ignore"):
        logp = -np.log10(np.clip(out["p_value"].to_numpy(np.float64), 1e-300, 1))
    out["hit_score"] = np.where(out["status"] == "fitted", np.sign(out["efficacy"]) * logp, np.nan)
    out["hit"] = ((out["q_value"] < alpha) & (out["efficacy"] > min_effect)).fillna(False).astype(bool)
    fitted = (out["status"] == "fitted").to_numpy()
    efficacy = out["efficacy"].to_numpy(np.float64)
    out["direction"] = np.where(~fitted, "", np.where(efficacy > 0, "rescues", "worsens"))
    out["flag"] = _fit_flags(out, alpha, min_effect)
    return ranked(out)


def ranked(curves: pd.DataFrame) -> pd.DataFrame:
    """``curves`` with their ``rank``, sorted by it: the hits first, those flagged off-manifold (by
    :func:`off_manifold`) after the other hits, then the other rescuing curves, then the worsening ones,
    each by q-value then efficacy.

    A flagged hit moves along the C- -> C+ axis but lands far from both controls: a compound with a
    phenotype of its own (off-target, toxic) as often as a rescuer. Ranking those hits after the clean
    ones was measured on the synthetic suite (no run's compound-ranking AP lower) and on the decoy
    screens, whose libraries hold compounds with off-target phenotypes (docs/analysis.md)."""
    doubtful = curves["hit"] & flagged_off_manifold(curves) if "flag" in curves else pd.Series(False, curves.index)
    key = pd.DataFrame({"hit": curves["hit"], "clean": ~doubtful, "rescues": curves["direction"] == "rescues",
                        "q": curves["q_value"], "efficacy": curves["efficacy"]}, index=curves.index)
    order = key.sort_values(["hit", "clean", "rescues", "q", "efficacy"], ascending=[False, False, False, True, False],
                            na_position="last").index
    out = curves.copy()
    out["rank"] = 0
    out.loc[order, "rank"] = np.arange(1, len(out) + 1)
    return out.sort_values("rank").reset_index(drop=True)


def flagged_off_manifold(curves: pd.DataFrame) -> pd.Series:
    """Whether each curve of a table from :func:`off_manifold` carries its possible-toxicity flag."""
    return curves["flag"].fillna("").str.contains(OFF_MANIFOLD_FLAG, regex=False)


def _fit_flags(curves: pd.DataFrame, alpha: float, min_effect: float) -> np.ndarray:
    """'; '-joined warnings per fitted curve (empty when none)."""
    fitted = (curves["status"] == "fitted").to_numpy()
    hill = curves["hill"].to_numpy(np.float64)
    ec50 = curves["ec50_uM"].to_numpy(np.float64)
    checks = [
        (hill >= HILL_BOUNDS[1] * (1 - 1e-6), f"Hill at the fit bound ({HILL_BOUNDS[1]:g}): steeper than the doses resolve"),
        (hill <= HILL_BOUNDS[0] * (1 + 1e-6), f"Hill at the fit bound ({HILL_BOUNDS[0]:g})"),
        (ec50 < curves["min_dose_uM"].to_numpy(np.float64) * (1 - 1e-9), "EC50 below the lowest dose (extrapolated)"),
        (ec50 > curves["max_dose_uM"].to_numpy(np.float64) * (1 + 1e-9), "EC50 above the highest dose (extrapolated)"),
        ((curves["q_value"].to_numpy(np.float64) < alpha) & (curves["efficacy"].to_numpy(np.float64) < -min_effect),
         "worsens: moves away from C+ with dose"),
    ]
    flags = np.full(len(curves), "", dtype=object)
    for mask, text in checks:
        for i in np.flatnonzero(fitted & mask):
            flags[i] = f"{flags[i]}; {text}" if flags[i] else text
    return flags


def dose_response(scores: np.ndarray, meta: pd.DataFrame, compound_col: str = "treatment",
                  dose_col: str = "treatment_conc", cell_col: str | None = "cell_type",
                  min_doses: int = 4, alpha: float = 0.05, min_effect: float = 0.2,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Aggregate per-site scores and fit all curves: returns (curves, points)."""
    pts = dose_points(scores, meta, compound_col, dose_col, cell_col)
    curves = fit_dose_response(pts, min_doses=min_doses, alpha=alpha, min_effect=min_effect)
    curves.attrs["n_bad_dose"] = pts.attrs.get("n_bad_dose", 0)
    return curves, pts


def off_manifold(X: np.ndarray, meta: pd.DataFrame, curves: pd.DataFrame,
                 compound_col: str = "treatment", dose_col: str = "treatment_conc",
                 cell_col: str = "cell_type", flag_above: float = 3.0) -> pd.DataFrame:
    """Add ``off_manifold`` and ``flag`` columns to a curves table, and rank it again (:func:`ranked`).

    The on-axis score only measures movement along the C- -> C+ direction; a
    cytotoxic or off-target compound can move along it too while landing far
    from both control populations.  For each curve, the top-dose wells' mean
    features (standardised by the control sd) are compared with the C+ and C-
    well centres of the same cell type: ``off_manifold`` is the median
    distance to the nearer centre divided by the median distance of control
    wells to their own centre (about 1 for control-like wells).  Curves above
    ``flag_above`` get ``flag = 'off-manifold (possible toxicity)'``.
    """
    from napari_gandl.tables import control_labels

    out = curves.copy()
    out["off_manifold"] = np.nan
    if "flag" not in out.columns:
        out["flag"] = ""
    if cell_col not in meta.columns or "disease_condition" not in meta.columns:
        return out
    X = np.asarray(X)
    ctrl = control_labels(meta)
    ref = X[ctrl != ""] if (ctrl != "").any() else X
    sd = ref.std(axis=0, dtype=np.float64)
    Z = X / np.where(sd > 1e-12, sd, 1.0).astype(X.dtype if X.dtype == np.float32 else np.float64)
    wells = well_groups(meta)
    codes, uniq = pd.factorize(wells)
    counts = np.bincount(codes)
    from scipy import sparse
    S = sparse.csr_matrix(((1.0 / counts[codes]).astype(Z.dtype), (codes, np.arange(len(codes)))),
                          shape=(len(uniq), len(codes)))
    means = np.asarray(S @ Z)
    first = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
    wells_df = pd.DataFrame({
        "cell_type": as_str(meta, cell_col)[first], "ctrl": ctrl[first],
        "compound": as_str(meta, compound_col)[first],
        "dose": pd.to_numeric(meta[dose_col], errors="coerce").to_numpy()[first],
    })
    wells_df["dist"] = np.nan
    for cell, grp in wells_df.groupby("cell_type"):
        idx = grp.index.to_numpy()
        cen, radii = {}, []
        for c in ("C+", "C-"):
            sel = idx[grp["ctrl"].to_numpy() == c]
            if len(sel) < 2:
                break
            cen[c] = means[sel].mean(axis=0)
            radii.append(np.linalg.norm(means[sel] - cen[c], axis=1))
        if len(cen) < 2:
            continue
        r0 = float(np.median(np.concatenate(radii)))
        if r0 <= 0:
            continue
        M = means[idx]
        wells_df.loc[idx, "dist"] = np.minimum(np.linalg.norm(M - cen["C+"], axis=1),
                                               np.linalg.norm(M - cen["C-"], axis=1)) / r0
    treated = wells_df[(wells_df["compound"] != "") & wells_df["dist"].notna() & wells_df["dose"].notna()]
    if len(treated):
        top = treated.groupby(["compound", "cell_type"])["dose"].transform("max")
        at_top = treated[treated["dose"] == top]
        med = at_top.groupby(["compound", "cell_type"])["dist"].median()
        key = pd.MultiIndex.from_arrays([out["compound"].astype(str), out["cell_type"].astype(str)])
        out["off_manifold"] = med.reindex(key).to_numpy()
    off = (out["off_manifold"] > flag_above).to_numpy()
    out.loc[off, "flag"] = [f"{f}; {OFF_MANIFOLD_FLAG}" if f else OFF_MANIFOLD_FLAG
                            for f in out.loc[off, "flag"].fillna("")]
    return ranked(out)
