
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

from napari_gandl.analysis.dose import (
    dose_response, fit_dose_response, fit_logistic4_batch, logistic4,
)
from napari_gandl.analysis.dose_plots import plot_curves
from napari_gandl.tables import TableError

from analysis_synth import DOSES, noisy_curves


def _points(X, Y, names=None):
    """dose_points-shaped frame from (n, k) log-doses and (n, k, reps) well values."""
    rows = []
    n, k, reps = Y.shape
    for i in range(n):
        for j in range(k):
            v = Y[i, j]
            rows.append({"compound": names[i] if names else f"c{i:04d}", "cell_type": "HRCE",
                         "dose": 10 ** X[i, j], "mean": v.mean(),
                         "sd": v.std(ddof=1) if reps > 1 else np.nan, "n_wells": reps})
    p = pd.DataFrame(rows)
    p["sem"] = p["sd"] / np.sqrt(p["n_wells"])
    p["ss_within"] = p["sd"].fillna(0) ** 2 * (p["n_wells"] - 1)
    return p


def test_recovers_known_ec50_and_hill():
    X, Y, true = noisy_curves(200, seed=1, noise=0.04, reps=3)
    res = fit_logistic4_batch(X, Y.mean(2), np.full(X.shape, 3.0))
    ratio = 10 ** np.abs(res.params[:, 2] - true["log10_ec50"])
    assert np.mean(ratio < 1.5) > 0.95, np.mean(ratio < 1.5)
    assert np.median(np.abs(res.params[:, 3] - true["hill"]) / true["hill"]) < 0.25
    np.testing.assert_allclose(np.median(res.params[:, 1] - true["top"]), 0, atol=0.05)
    assert res.converged.mean() > 0.95


def test_agrees_with_scipy_curve_fit():
    X, Y, _ = noisy_curves(40, seed=2, noise=0.08)
    y = Y[:, :, 0]
    res = fit_logistic4_batch(X, y)
    for i in range(len(X)):
        x = X[i]
        span = np.ptp(y[i])
        lo = [y[i].min() - span] * 2 + [x.min() - 1, 0.1]
        hi = [y[i].max() + span] * 2 + [x.max() + 1, 10]
        best = None
        for m0 in (0.2, 0.5, 0.8):
            for h0 in (1.0, 3.0):
                p0 = np.clip([y[i, 0], y[i, -1], x.min() + m0 * np.ptp(x), h0], lo, hi)
                try:
                    p, _ = curve_fit(logistic4, x, y[i], p0=p0, bounds=(lo, hi), maxfev=4000)
                except RuntimeError:
                    continue
                sse = np.sum((logistic4(x, *p) - y[i]) ** 2)
                if best is None or sse < best[0]:
                    best = (sse, p)
        # never worse than scipy's best local optimum, and the same EC50 when
        # scipy's optimum is as good
        assert res.sse[i] <= best[0] * (1 + 1e-4) + 1e-10
        if abs(res.sse[i] - best[0]) < 1e-6 * max(best[0], 1e-9):
            assert abs(res.params[i, 2] - best[1][2]) < 0.05


def test_f_test_flags_flat_curves_and_bh():
    rng = np.random.default_rng(3)
    X, Y, _ = noisy_curves(30, seed=3, noise=0.1, reps=3)
    flat = -1 + rng.normal(0, 0.1, (30, 6, 3))
    pts = _points(np.vstack([X, X]), np.concatenate([Y, flat]),
                  [f"active{i}" for i in range(30)] + [f"flat{i}" for i in range(30)])
    out = fit_dose_response(pts)
    act = out["compound"].str.startswith("active")
    assert (out.loc[act, "q_value"] < 0.05).mean() > 0.9
    # flat curves: p roughly uniform, almost never significant after BH
    assert (out.loc[~act, "q_value"] < 0.05).mean() <= 0.1
    assert out.loc[~act, "p_value"].median() > 0.2
    assert out.loc[act, "hit"].mean() > 0.9 and not out.loc[~act, "hit"].any()
    assert out["rank"].tolist() == list(range(1, len(out) + 1))
    assert out.loc[out["rank"] <= 20, "compound"].str.startswith("active").all()


def test_f_statistic_reference_value():
    # one curve with 2 wells per dose: compare with the textbook nested-model F
    X, Y, _ = noisy_curves(1, seed=4, noise=0.15, reps=2)
    out = fit_dose_response(_points(X, Y))
    wells_x = np.repeat(X[0], 2)
    wells_y = Y[0].ravel()
    p, _ = curve_fit(logistic4, wells_x, wells_y, p0=[out.bottom[0], out.top[0], out.log10_ec50[0], out.hill[0]],
                     bounds=([-5, -5, X.min() - 1, 0.1], [5, 5, X.max() + 1, 10]))
    sse1 = np.sum((logistic4(wells_x, *p) - wells_y) ** 2)
    sse0 = np.sum((wells_y - wells_y.mean()) ** 2)
    F = ((sse0 - sse1) / 3) / (sse1 / (12 - 4))
    np.testing.assert_allclose(out["f_stat"][0], F, rtol=1e-3)


def test_q_values_are_benjamini_hochberg_over_tested_curves():
    """q = min over p_j >= p_i of p_j * m / rank_j, with m counting only curves that have a p-value:
    a curve with too few doses, or with as many wells as parameters, is not a test."""
    rng = np.random.default_rng(8)
    X, Y, _ = noisy_curves(6, seed=8, noise=0.3, reps=2)
    flat = -1 + rng.normal(0, 0.1, (4, 6, 2))
    pts = _points(np.vstack([X, X[:4]]), np.concatenate([Y, flat]), [f"c{i}" for i in range(10)])
    short = _points(X[:1, :3], Y[:1, :3], ["short"])                       # 3 doses: not fitted
    no_df = _points(X[:1, :4], Y[:1, :4, :1], ["no_df"])                   # 4 wells, 4 parameters
    out = fit_dose_response(pd.concat([pts, short, no_df])).set_index("compound")
    assert out.loc["short", "status"] != "fitted" and np.isnan(out.loc["short", "q_value"])
    assert out.loc["no_df", "status"] == "fitted" and np.isnan(out.loc["no_df", "p_value"])
    assert np.isnan(out.loc["no_df", "q_value"])
    tested = out.drop(index=["short", "no_df"])
    p = tested["p_value"].to_numpy()
    m = len(p)
    rank = p.argsort().argsort() + 1
    reference = [min(1.0, min(p[j] * m / rank[j] for j in range(m) if p[j] >= p[i])) for i in range(m)]
    np.testing.assert_allclose(tested["q_value"].to_numpy(), reference, rtol=1e-12)
    assert len(set(np.round(p, 12))) == m and (tested["q_value"] > tested["p_value"]).any()


def test_dose_points_from_sites_and_few_doses(tmp_path):
    rows = []
    rng = np.random.default_rng(0)
    for comp, doses in (("full", DOSES), ("short", DOSES[:3])):
        for d in doses:
            for w in range(3):
                for s in range(2):
                    rows.append({"treatment": comp, "treatment_conc": d, "cell_type": "VERO",
                                 "well_id": f"{comp}_{d}_{w}", "score": rng.normal(np.log10(d), 0.1)})
    rows.append({"treatment": None, "treatment_conc": np.nan, "cell_type": "VERO", "well_id": "ctrl", "score": 0})
    meta = pd.DataFrame(rows)
    curves, pts = dose_response(meta["score"].to_numpy(), meta)
    assert set(pts["compound"]) == {"full", "short"}
    full = pts[pts.compound == "full"]
    assert (full["n_wells"] == 3).all() and full["sem"].notna().all()
    short = curves.set_index("compound").loc["short"]
    assert short["status"].startswith("too few doses") and np.isnan(short["ec50_uM"])
    assert curves.set_index("compound").loc["full", "status"] == "fitted"
    plot_curves(curves, pts, [("full", "VERO"), ("short", "VERO")], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 3000
    with pytest.raises(TableError, match="treatment_conc"):
        dose_response(meta["score"].to_numpy(), meta.drop(columns=["treatment_conc"]))


def test_library_scale_fit_recovers_ec50s():
    # 1,672 compounds x 2 cell types x 6 doses (its speed: benchmarks/bench_analysis.py)
    X, Y, true = noisy_curves(3344, seed=5, noise=0.05)
    res = fit_logistic4_batch(X, Y[:, :, 0])
    assert np.mean(10 ** np.abs(res.params[:, 2] - true["log10_ec50"]) < 1.5) > 0.85


def test_off_manifold_flags_a_toxic_compound():
    from napari_gandl.analysis import fit_e2
    from napari_gandl.tables import load_embeddings
    from napari_gandl.analysis.dose import off_manifold

    from analysis_synth import rxrx_like

    df = rxrx_like(n_feat=8, plates=2, wells=4, plate_shift=0.0,
                   compounds=(("good", 0.1, 1.5, 1.0), ("toxic", 0.1, 1.5, 0.6)))
    hi = (df["treatment"] == "toxic") & (df["treatment_conc"] >= 1.0)
    df.loc[hi, "f005"] += 12.0          # a strong phenotype off the infection axis
    table = load_embeddings(df)
    curves, _ = dose_response(fit_e2(table).on_axis(table.X), table.meta)
    flagged = off_manifold(table.X, table.meta, curves).set_index(["compound", "cell_type"])
    assert (flagged.loc["toxic", "flag"] != "").all()
    assert not flagged.loc["good", "flag"].str.contains("off-manifold").any()
    assert (flagged.loc["good", "off_manifold"] < 2).all()


def test_a_hit_flagged_off_manifold_ranks_after_the_clean_hits():
    """A decoy that moves along the infection axis as strongly as a rescuer, but also far off it, is a hit
    with a smaller q-value than a weaker clean rescuer; once flagged it ranks after that rescuer, and still
    before every curve that is no hit."""
    from napari_gandl.analysis import fit_e2, off_manifold
    from napari_gandl.tables import load_embeddings

    from analysis_synth import rxrx_like

    df = rxrx_like(n_feat=8, plates=2, wells=4, plate_shift=0.0,
                   compounds=(("clean", 0.1, 1.5, 0.6), ("decoy", 0.1, 1.5, 1.0), ("inert", 0.1, 1.5, 0.0)))
    df.loc[(df["treatment"] == "decoy") & (df["treatment_conc"] >= 1.0), "f005"] += 12.0
    table = load_embeddings(df)
    curves, _ = dose_response(fit_e2(table).on_axis(table.X), table.meta)
    before = curves.groupby("compound")["rank"].min()
    assert before["decoy"] < before["clean"]                     # by q-value alone the decoy leads
    after = off_manifold(table.X, table.meta, curves)
    assert after["rank"].tolist() == list(range(1, len(after) + 1))
    by = after.groupby("compound")
    assert by["hit"].all()[["clean", "decoy"]].all() and not by["hit"].any()["inert"]
    assert after.loc[after["compound"] == "decoy", "flag"].str.contains("off-manifold").all()
    assert by["rank"].max()["clean"] < by["rank"].min()["decoy"] < by["rank"].min()["inert"]


def test_the_report_counts_the_hits_flagged_off_manifold(tmp_path, capsys):
    """A rescuing compound with a strong phenotype off the infection axis is a hit the report counts
    as possibly toxic, beside the hits count, in report.json, the HTML page and gandl analyse's summary."""
    from napari_gandl.analysis import analyse
    from napari_gandl.cli import main

    from analysis_synth import rxrx_like

    df = rxrx_like(n_feat=8, plates=2, wells=4, plate_shift=0.0,
                   compounds=(("good", 0.1, 1.5, 1.0), ("toxic", 0.1, 1.5, 1.0)))
    df.loc[(df["treatment"] == "toxic") & (df["treatment_conc"] >= 1.0), "f005"] += 12.0
    report = analyse(df, out_dir=tmp_path / "r", ground_truth=False, n_splits=2)
    curves = pd.read_csv(tmp_path / "r" / "dose_response.csv")
    flagged = curves["hit"] & curves["flag"].fillna("").str.contains("off-manifold")
    assert set(curves.loc[flagged, "compound"]) == {"toxic"} and curves.loc[curves["compound"] == "good", "hit"].all()
    dr = report["dose_response"]
    assert dr["n_hits_off_manifold"] == flagged.sum() > 0 and dr["n_hits"] == curves["hit"].sum()
    assert f"of which\n{flagged.sum()} off-manifold" in (tmp_path / "r" / "report.html").read_text()
    df.to_parquet(tmp_path / "emb.parquet")
    assert main(["analyse", str(tmp_path / "emb.parquet"), "--out", str(tmp_path / "cli"), "--splits", "2",
                 "--quiet", "--no-ground-truth"]) == 0
    assert f"{dr['n_hits']} hits ({flagged.sum()} off-manifold: possible toxicity" in capsys.readouterr().out


def test_flags_and_worsening_compounds_rank_after_rescues():
    """A step between two doses (Hill at its bound), an EC50 below the lowest dose and a strong
    worsening are flagged; the worsening ranks after every rescue, however small its q-value."""
    rng = np.random.default_rng(7)
    x = np.log10(np.array([0.01, 0.03, 0.1, 0.3, 1.0, 3.0]))
    shapes = {
        "steep": logistic4(x, -1, 1, -1.25, 60.0),       # a step between 0.03 and 0.1 µM
        "below": logistic4(x, -1, 0.6, -2.6, 1.0),       # EC50 0.0025 µM < 0.01
        "mild": logistic4(x, -1, -0.3, -1.0, 1.5),       # a modest rescue
        "worse": logistic4(x, -1, -2.6, -1.0, 1.5),      # efficacy about -1.5
        "flat": np.full(6, -1.0),
    }
    names = list(shapes)
    Y = np.stack([np.repeat(shapes[n][:, None], 4, axis=1) + rng.normal(0, 0.05, (6, 4)) for n in names])
    out = fit_dose_response(_points(np.tile(x, (len(names), 1)), Y, names)).set_index("compound")
    assert "Hill at the fit bound (10)" in out.loc["steep", "flag"]
    assert "EC50 below the lowest dose" in out.loc["below", "flag"]
    assert out.loc["worse", "direction"] == "worsens" and "worsens" in out.loc["worse", "flag"]
    assert out.loc["mild", "direction"] == "rescues" and out.loc["mild", "flag"] == ""
    assert out.loc["worse", "q_value"] < out.loc["mild", "q_value"] * 10   # as significant ...
    rescues = out.loc[out["direction"] == "rescues", "rank"]
    assert out.loc["worse", "rank"] > rescues.max()                        # ... yet ranked after rescues
