"""Benchmark the analysis backend; writes the ``analysis`` section of docs/benchmarks.md.

1. Dose-response: 1,672 compounds x 6 doses x 2 cell types (RxRx19a scale),
   six wells per dose, four sites per well: aggregation + batched 4PL fits,
   EC50 recovery against the simulated truth.
2. Linear SVM on 305,520 x 512 random-but-structured data (low-rank
   correlated features, well effects, a class signal along one direction),
   one well-grouped 75/25 split, with the solvers ``gandl analyse`` uses.
3. Ground truth on the synthetic sample screen ("demo" preset): AUC of the
   hit score for compounds with a real rescue vs those without, using the
   handcrafted per-stain intensity/texture features (and a GAN-DL embedding
   when ``--gan-run RUN_DIR`` points to a trained run, or trained here for
   ``--gan-minutes M`` on the quick preset).
4. ``analyse`` end to end on a 304,768 x 512 RxRx19a-shaped table.

Usage: python benchmarks/bench_analysis.py [--quick] [--gan-run RUN_DIR | --gan-minutes M] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from napari_gandl.analysis import analyse
from napari_gandl.embedding.methods.handcrafted import handcrafted_features  # noqa: E402
from napari_gandl.analysis.classify import LinearModel, grouped_splits  # noqa: E402
from napari_gandl.analysis.dose import dose_points, fit_dose_response, logistic4  # noqa: E402

DOSES = np.array([0.01, 0.03, 0.1, 0.3, 1.0, 3.0]) * 3.0   # six half-log doses (µM)


def bench_dose(n_compounds=1672, wells_per_dose=6, sites=4, seed=0, repeats=3):
    rng = np.random.default_rng(seed)
    cells = ["HRCE", "VERO"]
    n_curves = n_compounds * len(cells)
    active = rng.random(n_curves) < 0.1
    log_ec50 = rng.uniform(np.log10(DOSES[0]), np.log10(DOSES[-1]), n_curves)
    hill = rng.uniform(0.7, 3.0, n_curves)
    top = np.where(active, rng.uniform(-0.2, 1.0, n_curves), -1.0)
    comp = np.repeat(np.arange(n_compounds), len(cells))
    cell = np.tile(np.arange(len(cells)), n_compounds)
    # site-level table: curve x dose x well x site
    c_idx = np.repeat(np.arange(n_curves), len(DOSES) * wells_per_dose * sites)
    d_idx = np.tile(np.repeat(np.arange(len(DOSES)), wells_per_dose * sites), n_curves)
    w_idx = np.tile(np.repeat(np.arange(wells_per_dose), sites), n_curves * len(DOSES))
    mean = logistic4(np.log10(DOSES[d_idx]), -1.0, top[c_idx], log_ec50[c_idx], hill[c_idx])
    well_noise = rng.normal(0, 0.15, (n_curves, len(DOSES), wells_per_dose))[c_idx, d_idx, w_idx]
    score = mean + well_noise + rng.normal(0, 0.3, len(c_idx))
    names = np.array([f"cpd{i:04d}" for i in range(n_compounds)])
    meta = pd.DataFrame({
        "treatment": names[comp[c_idx]], "cell_type": np.array(cells)[cell[c_idx]],
        "treatment_conc": DOSES[d_idx],
        "well_id": pd.Series(c_idx).astype(str) + "_" + pd.Series(d_idx).astype(str) + "_" + pd.Series(w_idx).astype(str),
    })
    t_agg, t_fit, t_all, c_fit, c_all = [], [], [], [], []
    for _ in range(repeats):
        t0, p0 = time.perf_counter(), time.process_time()
        pts = dose_points(score, meta)
        t1, p1 = time.perf_counter(), time.process_time()
        curves = fit_dose_response(pts)
        t2, p2 = time.perf_counter(), time.process_time()
        t_agg.append(t1 - t0)
        t_fit.append(t2 - t1)
        t_all.append(t2 - t0)
        c_fit.append(p2 - p1)
        c_all.append(p2 - p0)
    key = pd.Series(names[comp]) + "|" + pd.Series(np.array(cells)[cell])
    truth = pd.DataFrame({"key": key, "active": active, "log_ec50": log_ec50})
    c = curves.assign(key=curves["compound"] + "|" + curves["cell_type"]).merge(truth, on="key")
    act = c[c["active"]]
    big = act[(act["top"] - act["bottom"]) > 1.0]
    from sklearn.metrics import roc_auc_score
    return {
        "n_sites": len(meta), "n_curves": n_curves,
        "aggregate_s": float(np.median(t_agg)), "fit_s": float(np.median(t_fit)),
        "total_s": float(np.median(t_all)), "fit_cpu_s": float(np.median(c_fit)),
        "total_cpu_s": float(np.median(c_all)),
        "ec50_within_1.5x": float((10 ** np.abs(big["log10_ec50"] - big["log_ec50"]) < 1.5).mean()),
        "n_big": int(len(big)),
        "auc": float(roc_auc_score(c["active"], c["hit_score"].fillna(-1e9))),
        "hits": int(c["hit"].sum()), "true_hits": int((c["hit"] & c["active"]).sum()),
        "n_active": int(c["active"].sum()),
    }


def structured_data(n=305_520, d=512, k=24, sites_per_well=4, seed=0, chunk=50_000):
    """Low-rank correlated features + well offsets + a class signal (30 % positives)."""
    rng = np.random.default_rng(seed)
    L = (rng.normal(size=(k, d)) / np.sqrt(k)).astype(np.float32)
    w = rng.normal(size=d).astype(np.float32)
    w /= np.linalg.norm(w)
    n_wells = n // sites_per_well
    well_y = rng.random(n_wells) < 0.3
    well_off = rng.normal(0, 0.5, (n_wells, d)).astype(np.float32)
    groups = np.repeat(np.arange(n_wells), sites_per_well)[:n]
    y = well_y[groups].astype(int)
    X = np.empty((n, d), np.float32)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        g = groups[s:e]
        X[s:e] = (rng.normal(size=(e - s, k)).astype(np.float32) * 3) @ L
        X[s:e] += rng.normal(size=(e - s, d)).astype(np.float32)
        X[s:e] += well_off[g]
        X[s:e] += (np.where(y[s:e] == 1, 1.0, -1.0)[:, None] * w).astype(np.float32)
    return X, y, groups


def bench_svm(n=305_520, solvers=("sgd", "liblinear")):
    X, y, groups = structured_data(n)
    tr, te = next(grouped_splits(y, groups, n_splits=1, test_size=0.25, seed=0))
    out = {"n": n, "d": X.shape[1], "n_train": len(tr), "n_test": len(te)}
    for solver in solvers:
        t0, p0 = time.perf_counter(), time.process_time()
        model = LinearModel(solver=solver).fit(X[tr], y[tr])
        dt, cpu = time.perf_counter() - t0, time.process_time() - p0
        pred = model.predict(X[te])
        acc = float((pred == y[te]).mean())
        bacc = float(np.mean([(pred[y[te] == c] == c).mean() for c in (0, 1)]))
        out[solver] = {"fit_s": dt, "cpu_s": cpu, "accuracy": acc, "balanced_accuracy": bacc}
    return out


def bench_c2st(plate_root: Path, gan_run: Path, n: int = 200, seed: int = 0):
    """C2ST of generated vs real crops (and real vs real as the chance reference),
    in the GAN's normalised intensity space, at its training resolution."""
    from napari_gandl.analysis import c2st
    from napari_gandl.gan import generate, load_model
    from napari_gandl.preprocessing.sampling import downsample
    from napari_gandl.plate import open_plate

    model = load_model(gan_run, "cpu")
    plate = open_plate(plate_root)
    res = model.resolution
    rng = np.random.default_rng(seed)
    sites = rng.choice(plate.usable_sites, size=2 * n, replace=len(plate.usable_sites) < 2 * n)
    real = []
    for s in sites:
        img = model.normalizer(downsample(plate.read_site(int(s)), model.scale))
        y = rng.integers(0, img.shape[1] - res + 1)
        x = rng.integers(0, img.shape[2] - res + 1)
        real.append(img[:, y:y + res, x:x + res])
    real = np.stack(real).astype(np.float32)
    fake = generate(model, seeds=range(n)).astype(np.float32)
    out = {"resolution": res, "n": n}
    for name, a, b in (("generated vs real", fake, real[:n]), ("real vs real", real[:n], real[n:])):
        for clf in ("linear", "knn"):
            r = c2st(a, b, n_splits=10, classifier=clf, seed=seed)
            out[(name, clf)] = (r.accuracy_mean, r.accuracy_sd, r.p_value)
    return out


def bench_ground_truth(plate_root: Path, gan_run: Path | None, work: Path, gan_minutes: float = 0.0,
                       gan_keep: Path | None = None):
    rows = []
    t0 = time.perf_counter()
    feats = handcrafted_features(plate_root)
    t_feat = time.perf_counter() - t0
    tables = {"handcrafted": feats}
    if gan_run is not None or gan_minutes > 0:
        try:
            from napari_gandl.embedding import embed_plate
            from napari_gandl.gan import train
            if gan_run is None:
                t0 = time.perf_counter()
                gan_run = train(plate_root, gan_keep or (work / "gan-run"), preset="quick",
                                minutes=gan_minutes, device="cpu", seed=0)
                rows.append(("GAN-DL training (quick preset, CPU)",
                             f"{time.perf_counter() - t0:.0f} s"))
            t0 = time.perf_counter()
            tables["GAN-DL"] = embed_plate(plate_root, "gandl", source=gan_run, device="cpu")
            rows.append(("GAN-DL embedding time", f"{time.perf_counter() - t0:.1f} s"))
            c = bench_c2st(plate_root, gan_run)
            lines = [f"C2ST (classifier two-sample test, `napari_gandl.analysis.c2st`) on {c['n']} + {c['n']} "
                     f"{c['resolution']}x{c['resolution']} crops in the GAN's normalised intensity space, "
                     "tile features = 16x16 block means + per-stain statistics + gradient energy, "
                     "half held out, 10 splits (0.5 = indistinguishable):\n",
                     "| pair | linear (logistic) | 1-NN |", "|---|---|---|"]
            for pair in ("generated vs real", "real vs real"):
                lin, knn = c[(pair, "linear")], c[(pair, "knn")]
                lines.append(f"| {pair} | {lin[0]:.3f} ± {lin[1]:.3f} | {knn[0]:.3f} ± {knn[1]:.3f} |")
            rows.append(("C2ST", "\n" + "\n".join(lines)))
        except Exception as exc:  # the GAN backend is optional here: report, do not fail
            rows.append(("GAN-DL embedding not available", f"{type(exc).__name__}: {str(exc)[:300]}"))
    results = []
    for name, df in tables.items():
        for method in ("centerscale", "tvn", "none"):
            rep = analyse(df, out_dir=work / f"{name}-{method}", normalise=method, n_splits=10,
                          ground_truth=plate_root / "ground_truth" / "compounds.csv")
            gt = rep.get("ground_truth", {})
            t = rep["tasks"]
            results.append({
                "embedding": name, "normalise": method,
                "auc": gt.get("auc"), "auc_per_compound": gt.get("auc_per_compound"),
                "n_active": gt.get("n_active_curves"), "n_inactive": gt.get("n_inactive_curves"),
                "cpm": t.get("C+ vs C- (merged)", {}).get("accuracy_mean"),
                "cpm_sd": t.get("C+ vs C- (merged)", {}).get("accuracy_sd"),
                "cell": t.get("HRCE vs VERO", {}).get("accuracy_mean"),
                "hits": rep.get("dose_response", {}).get("n_hits"),
                "seconds": rep["seconds"],
            })
    return results, t_feat, len(feats), rows


def rxrx19a_shaped(seed=0, n_compounds=1672, d=512):
    """A 304,768-site table shaped like RxRx19a: 2 cell types, ~100 plates of 380
    wells each, 4 sites per well, Mock/UV/active controls and 1,672 compounds x 6
    doses x 3 wells; 10 % of compounds rescue along one feature direction."""
    rng = np.random.default_rng(seed)
    doses = [0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
    wells = []
    truth = {}
    for ct in ("HRCE", "VERO"):
        conds = ([("Mock", None, np.nan, 1.0)] * 1500 + [("UV Inactivated SARS-CoV-2", None, np.nan, 1.0)] * 1500
                 + [("Active SARS-CoV-2", None, np.nan, 0.0)] * 5000)
        active = rng.random(n_compounds) < 0.1
        ec50 = 10 ** rng.uniform(-1.5, 1, n_compounds)
        for c in range(n_compounds):
            truth[f"cpd{c:04d}"] = truth.get(f"cpd{c:04d}", False) or bool(active[c])
            for dose in doses:
                r = 0.9 / (1 + (ec50[c] / dose) ** 1.5) if active[c] else 0.0
                conds += [("Active SARS-CoV-2", f"cpd{c:04d}", dose, r)] * 3
        for k, i in enumerate(rng.permutation(len(conds))):
            cond, comp, dose, r = conds[i]
            wells.append((ct, f"{ct}-1", k // 380 + 1, f"W{k % 380:03d}", cond, comp, dose, r))
    W = pd.DataFrame(wells, columns=["cell_type", "experiment", "plate", "well", "disease_condition",
                                     "treatment", "treatment_conc", "rescue"])
    W["well_id"] = W["experiment"] + "_" + W["plate"].astype(str) + "_" + W["well"]
    S = W.loc[W.index.repeat(4)].reset_index(drop=True)
    S["site"] = np.tile(np.arange(1, 5), len(W))
    S["site_id"] = S["well_id"] + "_" + S["site"].astype(str)
    n = len(S)
    L = (rng.normal(size=(16, d)) / 4).astype(np.float32)
    X = (rng.normal(size=(n, 16)).astype(np.float32) * 2) @ L + rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=d).astype(np.float32)
    w /= np.linalg.norm(w)
    X += (2 * S["rescue"].to_numpy(np.float32) - 1)[:, None] * w
    X[:, 1] += np.where(S["cell_type"] == "HRCE", 2.0, -2.0).astype(np.float32)
    X += rng.normal(0, 0.5, (S["plate"].max() * 2 + 2, d)).astype(np.float32)[
        S["plate"].to_numpy() * 2 + (S["cell_type"] == "VERO").to_numpy()]       # plate effects
    frame = pd.concat([S.drop(columns=["rescue"]),
                       pd.DataFrame(X, columns=[f"f{i:03d}" for i in range(d)])], axis=1)
    gt = pd.DataFrame({"compound": list(truth), "active": list(truth.values())})
    return frame, gt


def bench_analyse_scale(work: Path, n_splits: int = 3, n_compounds: int = 1672):
    frame, gt = rxrx19a_shaped(n_compounds=n_compounds)
    steps = {}
    t0 = time.perf_counter()
    last = [t0, ""]

    def prog(i, n, msg):
        now = time.perf_counter()
        if last[1]:
            steps[last[1]] = now - last[0]
        last[:] = [now, msg]

    rep = analyse(frame, out_dir=work / "scale", n_splits=n_splits, ground_truth=gt, progress=prog)
    return {"n": len(frame), "d": 512, "total_s": time.perf_counter() - t0, "steps": steps,
            "auc": rep["ground_truth"]["auc"], "auc_c": rep["ground_truth"].get("auc_per_compound"),
            "tasks": {k: (v["accuracy_mean"], v["solver"]) for k, v in rep["tasks"].items()}}


def previous_part(heading: str) -> str | None:
    """The ``### heading`` block of this benchmark's current section in
    docs/benchmarks.md (so a run that skips a part keeps its earlier result)."""
    import re

    from _report import REPORT
    if not REPORT.exists():
        return None
    m = re.search(r"<!-- bench:analysis -->(.*?)<!-- /bench:analysis -->", REPORT.read_text(), re.S)
    if not m:
        return None
    for block in re.split(r"\n(?=### )", m.group(1)):
        if block.startswith("### " + heading):
            block = re.split(r"\nLoad average", block)[0].rstrip()
            if "(earlier run)" not in block.splitlines()[0]:
                block = block.replace("\n", " (earlier run)\n", 1)
            return block + "\n"
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller SVM problem (for a smoke run)")
    ap.add_argument("--gan-run", type=Path, help="trained GAN-DL run directory to embed the sample screen")
    ap.add_argument("--gan-minutes", type=float, default=0.0,
                    help="train the quick preset for this many minutes on the screen, then embed it")
    ap.add_argument("--plate", type=Path, help="existing synthetic screen (default: write the demo preset)")
    ap.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    ap.add_argument("--skip-svm", action="store_true")
    ap.add_argument("--skip-scale", action="store_true", help="skip the 300k-site end-to-end run")
    ap.add_argument("--skip-dose", action="store_true")
    ap.add_argument("--gan-keep", type=Path, help="train the GAN into this folder (kept) instead of a temp dir")
    args = ap.parse_args(argv)

    md = []
    load0 = os.getloadavg()[0]
    if args.skip_dose:
        md.append(previous_part("Dose-response") or "")
    else:
        print("dose-response ...", flush=True)
        d = bench_dose()
        md.append(
            "### Dose-response fits (RxRx19a scale)\n\n"
            f"{d['n_curves']:,} curves (1,672 compounds x 2 cell types x 6 doses; 6 wells per dose, "
            f"4 sites per well = {d['n_sites']:,} site scores). Median of 3 runs:\n\n"
            "| step | wall time | CPU time of this process |\n|---|---|---|\n"
            f"| aggregate sites -> wells -> dose means ± s.e.m. | {d['aggregate_s']:.2f} s | "
            f"{d['total_cpu_s'] - d['fit_cpu_s']:.2f} s |\n"
            f"| batched bounded 4PL fits + F-tests + BH q-values | **{d['fit_s']:.2f} s** | {d['fit_cpu_s']:.2f} s |\n"
            f"| total | **{d['total_s']:.2f} s** | {d['total_cpu_s']:.2f} s |\n\n"
            f"Simulated truth: 10 % active curves with random EC50/Hill/top; EC50 within a factor 1.5 for "
            f"{100 * d['ec50_within_1.5x']:.0f} % of the {d['n_big']} active curves with an effect > 1 on-axis unit; "
            f"{d['true_hits']} of {d['hits']} hits (q < 0.05) are truly active ({d['n_active']} active curves); "
            f"AUC of the hit score {d['auc']:.3f}.\n")
        print(md[-1])

    if not args.skip_svm:
        n = 60_000 if args.quick else 305_520
        print(f"SVM on {n} x 512 ...", flush=True)
        s = bench_svm(n)
        lines = [f"### Linear SVM on {s['n']:,} x {s['d']} structured data\n",
                 "Low-rank (24 factors) correlated features, well offsets (4 sites per well), a class signal "
                 "along one random direction, 30 % positives; one well-grouped 75/25 split "
                 f"({s['n_train']:,} train / {s['n_test']:,} test sites), standardisation included, "
                 "class weights balanced.\n",
                 "| solver | fit wall time | CPU time | held-out accuracy | balanced accuracy |",
                 "|---|---|---|---|---|"]
        labels = {"sgd": "hinge-loss SGD (averaged, 20 epochs) — `solver='auto'` above 100k sites",
                  "liblinear": "LinearSVC, primal (`dual=False`) — `solver='auto'` up to 100k sites"}
        for k in ("sgd", "liblinear"):
            if k in s:
                lines.append(f"| {labels[k]} | **{s[k]['fit_s']:.1f} s** | {s[k]['cpu_s']:.1f} s | "
                             f"{100 * s[k]['accuracy']:.1f} % "
                             f"| {100 * s[k]['balanced_accuracy']:.1f} % |")
        md.append("\n".join(lines) + "\n")
        print(md[-1])
    else:
        md.append(previous_part("Linear SVM") or "")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.plate is None:
            from napari_gandl.synthetic import write_sample_plate
            print("writing the demo synthetic screen ...", flush=True)
            plate = write_sample_plate(tmp / "plate", preset="demo", seed=0)
        else:
            plate = args.plate
        print("ground truth ...", flush=True)
        res, t_feat, n_sites, extra = bench_ground_truth(plate, args.gan_run, tmp / "reports",
                                                            args.gan_minutes, args.gan_keep)
    lines = ["### Ground truth on the synthetic screen (demo preset)\n",
             f"{n_sites} sites, 8 compounds (4 rescuing with known EC50, 3 inert, 1 cytotoxic) x 2 cell types. "
             f"Handcrafted features: {t_feat:.1f} s for the plate. AUC: hit score (signed -log10 p of the "
             "F-test) of truly rescuing vs non-rescuing compound x cell-type curves; control accuracies: "
             "linear SVM, 10 well-grouped splits.\n",
             "| embedding | normalisation | AUC (curves) | AUC (compounds) | C+ vs C- merged | HRCE vs VERO | hits | time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res:
        f = lambda v, p=3: "" if v is None else f"{v:.{p}f}"  # noqa: E731
        lines.append(f"| {r['embedding']} | {r['normalise']} | **{f(r['auc'])}** | {f(r['auc_per_compound'])} | "
                     f"{100 * r['cpm']:.1f} ± {100 * r['cpm_sd']:.1f} % | {100 * r['cell']:.1f} % | {r['hits']} | "
                     f"{r['seconds']:.1f} s |")
    for k, v in extra:
        lines.append(f"\n{k}: {v}")
    if args.gan_run is None and args.gan_minutes <= 0:
        lines.append("\nThe GAN-DL embedding is not included in this run (pass `--gan-run RUN_DIR` with a "
                     "trained run to add it).")
    md.append("\n".join(lines) + "\n")
    print(md[-1])
    if not args.skip_scale:
        print("analyse at RxRx19a scale ...", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            a = bench_analyse_scale(Path(tmp))
        lines = ["### `analyse` end to end at RxRx19a scale\n",
                 f"An RxRx19a-shaped table of {a['n']:,} sites x {a['d']} features (2 cell types, 200 plates, "
                 "1,672 compounds x 6 doses x 3 wells, 10 % rescuing, plate effects), centre-scale "
                 f"normalisation, 3 splits per task: **{a['total_s']:.0f} s** in all.\n",
                 "| step | time |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} s |" for k, v in a["steps"].items()]
        lines.append("\nTasks: " + "; ".join(f"{k} {100 * v[0]:.1f} % ({v[1]})" for k, v in a["tasks"].items())
                     + f". Ground-truth AUC {a['auc']:.3f} over curves, {a['auc_c']:.3f} per compound.\n")
        md.append("\n".join(lines))
        print(md[-1])
    else:
        md.append(previous_part("`analyse` end to end") or "")
    load1 = os.getloadavg()[0]
    md.append(f"Load average (1 min) at start / end: {load0:.1f} / {load1:.1f} on {os.cpu_count()} cores "
              "(the machine is shared; timings are inflated when the load exceeds the core count).\n")
    if not args.no_write:
        from _report import write_section
        path = write_section("analysis", "Analysis backend (dose-response, SVM, ground truth)",
                             "\n".join(p for p in md if p))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
