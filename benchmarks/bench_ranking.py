"""Two choices of ``gandl analyse``'s compound ranking, measured: the direction of the E2 axis, and
whether hits flagged off-manifold (possible toxicity) should rank after the others.

``gandl analyse`` scores every site on the E2 axis: the normal of a linear SVM (C = 1) fitted on the
C+ and C- control sites in standardised feature space, scaled so that the C+ centre sits at +1 and the
C- centre at -1. The dose ranking, the 4PL fits, the F-tests and the hits all read that score. The
controls are few (64 + 64 sites on most suite screens) against 512 GAN-DL features, so the SVM is close
to a hard-margin fit. Two directions that do not follow a few support vectors are compared with it:

* **centroid**: the difference of the two class means in the same standardised space (the limit of the
  class-balanced SVM as C goes to 0);
* **lda**: scikit-learn's ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")`` (a
  Ledoit-Wolf shrunk covariance) in the same space.

A third variant keeps the SVM's axis and changes only the order: **svm, flagged last** ranks the hits
that ``gandl analyse`` flags ``off-manifold (possible toxicity)`` after the other hits (then the other
rescuing curves, then the worsening ones, each by q-value then efficacy). Every false hit of the suite's
default GAN-DL runs is such a cytotoxic compound, which is what suggested it. Since 2026-12-07 it is
``gandl analyse``'s ranking (``analysis.dose.ranked``), adopted on the decoy screens (bench_decoys.py);
the **svm** rows here are the ranking before it, by q-value alone.

Everything else is the suite's scoring (``bench_suite.score``): plate centre-scaling on controls, well
means of the on-axis score against the true rescue (Spearman), ``gandl analyse``'s dose-response rank
(compound-ranking AP) and hits. The embeddings are bench_suite's cached 16-kimg runs at seeds 0 and 1,
the same networks untrained, and the handcrafted features; nothing is trained or embedded. C+/C-
accuracy is its own SVM and does not depend on the axis.

    python benchmarks/bench_ranking.py [--screens texture,large-rare] [--no-report]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import log, paired_se, ranking_scores, suite_parser  # noqa: E402

AXES = ("svm", "centroid", "lda")
VARIANTS = (*AXES, "svm, flagged last")
EMBEDDINGS = {  # (features, seed) -> bench_suite's cached embedding
    ("GAN-DL", 0): "emb-gandl-16kimg.parquet", ("GAN-DL", 1): "emb-gandl-16kimg-seed1.parquet",
    ("untrained", 0): "emb-gandl-16kimg-untrained.parquet",
    ("untrained", 1): "emb-gandl-16kimg-seed1-untrained.parquet",
    ("handcrafted", None): "emb-handcrafted.parquet",
}
SEEDS = (0, 1)


def on_axis(X: np.ndarray, labels: np.ndarray, axis: str) -> np.ndarray:
    """Every row's on-axis score, the C+ centre at +1 and the C- centre at -1: ``gandl analyse``'s own
    E2 space (``fit_space``) for ``svm``, the same scaling along the other directions."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from napari_gandl.analysis.axes import fit_space

    if axis == "svm":
        return fit_space(X, labels, "C+", "C-").on_axis(X)
    fitted = np.isin(labels, ["C+", "C-"])
    Xs = X[fitted]
    y = (labels[fitted] == "C+").astype(int)
    mean, sd = Xs.mean(axis=0), Xs.std(axis=0)
    scale = np.where(sd > 1e-12, sd, 1.0)
    Z = (Xs - mean) / scale
    if axis == "centroid":
        w = Z[y == 1].mean(axis=0) - Z[y == 0].mean(axis=0)
    else:
        w = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(Z, y).coef_[0]
    w = w / np.linalg.norm(w)
    centre_pos, centre_neg = (Z[y == 1] @ w).mean(), (Z[y == 0] @ w).mean()
    a = 2.0 / (centre_pos - centre_neg)
    return a * (((X - mean) / scale) @ w - centre_pos) + 1.0


def centre_scaled(embeddings: Path) -> tuple:
    """An embedding's metadata and its features as ``gandl analyse`` reads them: centre-scaled per plate on
    the controls (float64)."""
    from napari_gandl.analysis.report import normalise_for_tasks
    from napari_gandl.tables import load_embeddings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loader's notes are the benchmark's input, not its result
        table, _ = normalise_for_tasks(load_embeddings(embeddings), "centerscale",
                                       {"normalise": "centerscale", "notes": [], "skipped": {}})
    return table.meta, np.asarray(table.X, np.float64)


def scores(plate_root: Path, embeddings: Path) -> dict:
    """variant -> bench_suite's ranking scores (Spearman, compound-ranking AP, true and false hits) of
    one embedding."""
    from napari_gandl.analysis.dose import dose_response, off_manifold
    from napari_gandl.tables import control_labels

    truth = plate_root / "ground_truth"
    meta, X = centre_scaled(embeddings)
    out = {}
    for axis in AXES:
        score = on_axis(X, control_labels(meta), axis)
        sites = meta[["well_id", "treatment"]].assign(e2_on=score)
        curves = dose_response(score, meta)[0]  # ranked by q-value alone, as before gandl analyse read the flag
        out[axis] = ranking_scores(sites, curves, truth)
        if axis == "svm":  # off_manifold flags the curves and ranks the flagged hits after the others
            out["svm, flagged last"] = ranking_scores(sites, off_manifold(X, meta, curves), truth)
    return out


def main(argv=None) -> int:
    ap = suite_parser(__doc__)
    args = ap.parse_args(argv)
    screens = args.screens.split(",")
    got = {}  # (screen, features, seed) -> axis -> scores
    for screen in screens:
        for (features, seed), name in EMBEDDINGS.items():
            got[screen, features, seed] = scores(args.cache / screen / "plate", args.cache / screen / name)
        log(f"{screen}: " + "; ".join(f"{axis} Spearman {got[screen, 'GAN-DL', 0][axis]['spearman']:.3f}"
                                      for axis in AXES))

    def runs(features):  # every run of a feature set: one per screen and seed, handcrafted's one per screen
        return [got[s, features, seed] for s in screens for seed in ((None,) if features == "handcrafted" else SEEDS)]

    def trailing(axis):
        return sum(any(got[s, "GAN-DL", seed][axis][k] < max(got[s, "untrained", seed][axis][k],
                                                              got[s, "handcrafted", None][axis][k])
                       for k in ("spearman", "rank_ap"))
                   for s in screens for seed in SEEDS)

    n = len(screens) * len(SEEDS)
    lines = [
        f"Suite means over {len(screens)} screens x seeds {' and '.join(map(str, SEEDS))} ({n} runs; "
        f"handcrafted features do not depend on the seed: {len(screens)} runs); hits summed over the runs. \"Trailing\": runs where "
        "GAN-DL's Spearman or compound-ranking AP is below the untrained network's or handcrafted's, all read "
        "with the same variant. Against **svm** (what `gandl analyse` did before it read the flag; it now ranks "
        "as **svm, flagged last**): the mean difference of GAN-DL's "
        f"{n} runs and twice its standard error (sd of the per-run differences / sqrt({n})).", "",
        "| variant | features | Spearman | ranking AP | true / false hits | GAN-DL trailing | GAN-DL against svm: "
        "Spearman, ranking AP (2 SE) |", "|---|---|---|---|---|---|---|"]
    for axis in VARIANTS:
        for features in ("GAN-DL", "untrained", "handcrafted"):
            rs = [r[axis] for r in runs(features)]
            cells = [f"{np.mean([r[k] for r in rs]):.3f}" for k in ("spearman", "rank_ap")]
            cells.append(f"{sum(r['true_hits'] for r in rs)} / {sum(r['false_hits'] for r in rs)}")
            against = ""
            if features == "GAN-DL":
                cells.append(str(trailing(axis)))
                if axis != "svm":
                    diffs = {k: np.array([r[axis][k] - r["svm"][k] for r in runs("GAN-DL")])
                             for k in ("spearman", "rank_ap")}
                    against = ", ".join(f"{d.mean():+.3f} ({2 * paired_se(d):.3f})"
                                        for d in diffs.values())
            else:
                cells.append("")
            lines.append(f"| {axis} | {features} | " + " | ".join(cells) + f" | {against} |")
    lines += ["", "Per screen, GAN-DL's Spearman / compound-ranking AP with each axis, seed 0 · seed 1:", "",
              "| screen | " + " | ".join(VARIANTS) + " |", "|---|" + "---|" * len(VARIANTS)]
    for screen in screens:
        lines.append(f"| {screen} | " + " | ".join(
            " · ".join(f"{got[screen, 'GAN-DL', seed][axis]['spearman']:.3f} / "
                       f"{got[screen, 'GAN-DL', seed][axis]['rank_ap']:.3f}" for seed in SEEDS)
            for axis in VARIANTS) + " |")
    body = "\n".join(lines)
    publish("ranking", "What gandl analyse's ranking reads: the E2 axis and the toxicity flag "
            "(bench_ranking.py)", body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
