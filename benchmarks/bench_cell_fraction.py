"""Which compounds rescue, read as the fraction of a site's cells that look infected.

``gandl analyse`` scores a site by where its mean features fall on the C- -> C+ axis. A compound that changes
every cell (an off-target phenotype) moves that mean too, and part of the move can fall along the axis: on the
decoy screens such compounds rank among the rescuers. A rescuer changes *how many* cells are infected, not how
every cell looks. This benchmark asks whether a read-out of that kind ranks compounds better: the features of
each cell-centred crop (``gandl embed --sampling crops``'s cells, at most 64 per site), each plate's cells
centre-scaled on its C+ cells, and per site the fraction of cells counted, two ways:

* **novelty**: per cell type a whitened PCA (20 components) of the C+ cells of all plates; a cell counts when
  its squared distance in that space exceeds the 95th percentile of the C+ cells';
* **classifier** (``--classifier``): per cell type a logistic regression (C = 1) of the C- sites' cells against
  the C+ sites' cells; a cell counts when it gives P(C-) > 0.5.

The fraction is put in the on-axis units of ``gandl analyse`` (C- sites' mean -1, C+ sites' mean +1), then
fitted, flagged (``off_manifold`` on the sites' mean cell features, centre-scaled on the plate's controls) and
ranked exactly as ``gandl analyse`` fits, flags and ranks the E2 on-axis score. Sites without a cell are left
out. The cells are read by GAN-DL's default pair, by the same networks untrained, and by handcrafted features
(the suite's per-site statistics computed on each crop GAN-DL reads).

Compared on the decoy screens (bench_decoys' seed-0+1 runs) and the held-out screens (bench_heldout
``--rebuilt``'s runs), each against the tiles' read-out of the same features (E2 on-axis, from the cached
analyse reports), by the rules printed in the section:

    python benchmarks/bench_cell_fraction.py [--sets decoys,heldout] [--cells decoys-medium:GAN-DL,...] \\
        [--classifier] [--no-report]

The per-cell features are cached beside each screen (``cells-<read-out>.npz``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_decoys import DECOYS_CACHE, decoy_curves, decoys_in_top  # noqa: E402
from bench_heldout import HELDOUT_CACHE  # noqa: E402
from bench_heldout import embedding_path  # noqa: E402
from bench_suite import embedding_report, log, ranking_scores  # noqa: E402

COMPONENTS = 20     # whitened principal components of the C+ cells
QUANTILE = 0.95     # novelty: a cell beyond this quantile of the C+ cells' distances counts
BATCH = 16          # sites read at a time
#: read-out -> the run folders read together, relative to a screen's cache folder (handcrafted: per-crop
#: statistics of the crops GAN-DL's runs read, napari_gandl.features.handcrafted.site_features)
READ_OUTS = {"GAN-DL": ("gandl-default",), "untrained": ("untrained-1", "untrained-2"), "handcrafted": ()}


def read_out_models(folder: Path, read_out: str) -> list:
    from napari_gandl.embedding.registry import expand_runs
    from napari_gandl.gan.checkpoint import load_model

    return [load_model(run, "cpu") for run in expand_runs([folder / r for r in READ_OUTS[read_out]])]


def crop_statistics(model, images: list, nuclear: int) -> list[np.ndarray]:
    """Per site, the handcrafted features of the cell crops ``model`` reads (same cells, same geometry)."""
    from napari_gandl.embedding.methods.gandl import MAX_CELLS
    from napari_gandl.features.handcrafted import site_features
    from napari_gandl.preprocessing.crops import site_crops
    from napari_gandl.preprocessing.sampling import downsample

    out = []
    for img in images:
        crops = site_crops(model.normalizer(downsample(img, model.scale)), model.resolution, nuclear,
                           max_cells=MAX_CELLS)
        out.append(site_features(crops).reshape(len(crops), -1))
    return out


def cell_table(folder: Path, read_out: str) -> tuple[np.ndarray, np.ndarray]:
    """Every site's cells' features, the read-out's networks side by side (float32 ``(cells, F)``), and the
    site index of each row; computed once into ``cells-<read-out>.npz``."""
    import torch

    from napari_gandl.embedding.methods.gandl import cell_features, resolve_layer
    from napari_gandl.plate import open_plate
    from napari_gandl.preprocessing.crops import nuclear_channel

    cache = folder / f"cells-{read_out}.npz"
    if not cache.is_file():
        torch.set_num_threads(1)
        t0 = time.time()
        plate = open_plate(folder / "plate")
        models = read_out_models(folder, read_out if READ_OUTS[read_out] else "GAN-DL")
        nuclear = nuclear_channel(list(models[0].channel_names))
        feats, owners = [], []
        n = len(plate.sites)
        for start in range(0, n, BATCH):
            images = [plate.read_site(i) for i in range(start, min(n, start + BATCH))]
            per_model = ([cell_features(m, images, resolve_layer(m), nuclear) for m in models] if READ_OUTS[read_out]
                         else [crop_statistics(models[0], images, nuclear)])
            for k in range(len(images)):
                feats.append(np.hstack([cells[k] for cells in per_model]))
                owners.append(np.full(len(feats[-1]), start + k))
        np.savez(cache, features=np.concatenate(feats).astype(np.float16), site=np.concatenate(owners))
        log(f"  {folder.name} {read_out}: cells of {n} sites in {time.time() - t0:.0f} s")
    saved = np.load(cache)
    return saved["features"].astype(np.float32), saved["site"]


def site_scores(features: np.ndarray, owner: np.ndarray, meta: pd.DataFrame,
                counting: str = "novelty") -> tuple[np.ndarray, np.ndarray]:
    """Per site: the fraction of its cells counted (NaN without cells), in on-axis units, and the mean of its
    cells' features. ``novelty``: cells unlike the C+ cells; ``classifier``: cells a per-cell logistic
    regression of C- sites' cells against C+ sites' cells calls C- (P > 0.5)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    from napari_gandl.tables import as_str, control_labels

    ctrl = control_labels(meta)
    cell_ctrl = ctrl[owner]
    plates, cells = as_str(meta, "plate")[owner], as_str(meta, "cell_type")[owner]
    Z = np.empty_like(features)
    for key in set(zip(plates, cells)):
        rows = (plates == key[0]) & (cells == key[1])
        ref = features[rows & (cell_ctrl == "C+")]
        Z[rows] = (features[rows] - ref.mean(0)) / np.maximum(ref.std(0), 1e-6)
    counted = np.zeros(len(owner), bool)
    for cell in np.unique(cells):
        rows = cells == cell
        ref = rows & (cell_ctrl == "C+")
        if counting == "classifier":
            both = rows & (cell_ctrl != "")
            model = LogisticRegression(C=1.0, max_iter=1000).fit(Z[both], cell_ctrl[both] == "C-")
            counted[rows] = model.predict_proba(Z[rows])[:, 1] > 0.5
            continue
        pca = PCA(COMPONENTS, whiten=True, random_state=0).fit(Z[ref])
        d = np.square(pca.transform(Z[rows])).sum(1)
        counted[rows] = d > np.quantile(np.square(pca.transform(Z[ref])).sum(1), QUANTILE)
    n_sites = len(meta)
    counts = np.bincount(owner, minlength=n_sites)
    fraction = np.bincount(owner, weights=counted, minlength=n_sites) / np.where(counts, counts, np.nan)
    score = np.full(n_sites, np.nan)
    site_cells = as_str(meta, "cell_type")
    for cell in np.unique(site_cells):
        rows = site_cells == cell
        pos, neg = (np.nanmean(fraction[rows & (ctrl == c)]) for c in ("C+", "C-"))
        score[rows] = 1 - 2 * (fraction[rows] - pos) / (neg - pos)
    means = np.zeros((n_sites, features.shape[1]))
    np.add.at(means, owner, features)
    return score, means / np.maximum(counts, 1)[:, None]


def cell_fraction_scores(folder: Path, read_out: str, counting: str = "novelty") -> dict:
    """The suite's ranking numbers of the cell-fraction read-out on the screen cached in ``folder``, the cells
    counted the ``counting`` way (:func:`site_scores`)."""
    from napari_gandl.analysis.dose import dose_response, off_manifold
    from napari_gandl.analysis.normalise import centerscale_on_controls
    from napari_gandl.embedding.pipeline import site_metadata
    from napari_gandl.plate import open_plate

    meta = site_metadata(open_plate(folder / "plate"))
    score, means = site_scores(*cell_table(folder, read_out), meta, counting)
    keep = np.isfinite(score)
    meta, score, means = meta[keep].reset_index(drop=True), score[keep], means[keep]
    curves, _ = dose_response(score, meta)
    curves = off_manifold(centerscale_on_controls(means, meta, batch_col="plate"), meta, curves)
    sites = meta.assign(e2_on=score)
    return {**ranking_scores(sites, curves, folder / "plate" / "ground_truth"), "separation": separation(sites),
            "sites_without_cells": int((~keep).sum()), **decoy_count(curves, folder)}


def separation(sites: pd.DataFrame) -> float:
    """How far apart the C+ and C- sites' scores lie (``e2_on``), in their pooled within-group sd, averaged over
    the cell types: how sharply a site's score reads its infection."""
    from napari_gandl.tables import as_str, control_labels

    ctrl, cell, score = control_labels(sites), as_str(sites, "cell_type"), sites["e2_on"].to_numpy()
    out = []
    for c in np.unique(cell):
        pos, neg = (score[(cell == c) & (ctrl == k)] for k in ("C+", "C-"))
        out.append((pos.mean() - neg.mean()) / np.sqrt((pos.var(ddof=1) + neg.var(ddof=1)) / 2))
    return float(np.mean(out))


def decoy_count(curves: pd.DataFrame, folder: Path) -> dict:
    """On a screen with decoys, how many decoy curves rank among the first R curves (bench_decoys'
    count); nothing elsewhere."""
    truth = folder / "plate" / "ground_truth"
    if not pd.read_csv(truth / "compounds.csv").get("off_target", pd.Series(dtype=object)).notna().any():
        return {}
    return {"decoys_in_top": decoys_in_top(*decoy_curves(curves, truth))}


def default_scores(folder: Path, read_out: str) -> dict:
    """The same networks' default read-out (tiles, E2 on-axis), from its cached analyse report."""
    report = embedding_report(embedding_path(folder, read_out))
    scores = json.loads((report / "bench_scores.json").read_text())
    curves = pd.read_csv(report / "dose_response.csv")
    sites = pd.read_parquet(report / "scores.parquet")
    return {**scores, "separation": separation(sites), **decoy_count(curves, folder)}


SETS = {"decoys": (DECOYS_CACHE, ("decoys-medium", "decoys-small", "decoys-large")),
        "heldout": (HELDOUT_CACHE, ("heldout-judge", "heldout-library", "heldout-dim-large",
                                    "heldout-small-texture"))}

#: the reading, written before any cell-fraction score (decision-rule-cell-fraction.txt, 2026-12-07 19:11 UTC)
RULE = {"decoys": 0.02, "heldout": -0.01}  # least change of the mean ranking AP, cells minus tiles, per set
RULE_SPEARMAN = -0.02                        # least change of the mean Spearman on either set


def verdict(rows: dict, label: str, shown: str) -> tuple[str, list[str]]:
    """The rule's reading of the read-out ``label`` (``GAN-DL cells`` or ``GAN-DL cells, classifier``) in ``rows``
    (set -> screen -> label -> scores): "no better", "promising" or "not decided". Where it was measured on only
    some screens of a set, its AP is judged at its best case (AP 1 on every screen not measured); a set not
    measured at all leaves the rule undecided unless another set already fails it."""
    lines, met, decided = [], True, set(rows) == set(RULE)
    for name, screens in rows.items():
        tiles = {k: np.mean([r["GAN-DL tiles"][k] for r in screens.values()]) for k in ("rank_ap", "spearman")}
        ours = [r[label] for r in screens.values() if label in r]
        best = (sum(r["rank_ap"] for r in ours) + len(screens) - len(ours)) / len(screens)
        need = tiles["rank_ap"] + RULE[name]
        done = len(ours) == len(screens)
        lines.append(f"- {name}, {shown}: measured on {len(ours)} of {len(screens)} screens; the rule needs its mean "
                     f"ranking AP at least {need:.3f} (tiles' {tiles['rank_ap']:.3f} {RULE[name]:+.2f}) and its mean "
                     f"Spearman at least {tiles['spearman'] + RULE_SPEARMAN:.3f}; "
                     + (f"they are {best:.3f} and {np.mean([r['spearman'] for r in ours]):.3f}." if done else
                        f"its AP would be {best:.3f} at best (AP 1 on the screens not measured)."))
        met &= best >= need and (not done or np.mean([r["spearman"] for r in ours]) >= tiles["spearman"] + RULE_SPEARMAN)
        decided &= done
    return ("no better" if not met else "promising" if decided else "not decided"), lines


#: read-out label -> (its name in the section, when its rule was written)
RULES_WRITTEN = {"GAN-DL cells": ("GAN-DL's novelty count", "before any cell-fraction score"),
                 "GAN-DL cells, classifier": ("GAN-DL's classifier count",
                                              "before it was scored on any but decoys-medium (where a one-screen "
                                              "rule, also written first, called it a lead)")}


def report(rows: dict) -> str:
    """``rows``: set -> screen -> read-out label (``<features> tiles``, ``<features> cells``, ``<features> cells,
    classifier``) -> scores."""
    features = ("GAN-DL", "untrained", "handcrafted")
    columns = {"tiles": "tiles (E2, today's read-out)", "cells": "cells: novelty count",
               "cells, classifier": "cells: classifier count"}

    def cell(r: dict | None) -> str:
        if r is None:
            return "–"
        return (f"{r['spearman']:.3f} / {r['rank_ap']:.3f} / {r['true_hits']:g}·{r['false_hits']:g}"
                + (f" / {r['decoys_in_top']:g}" if "decoys_in_top" in r else "") + f" / {r['separation']:.1f}")

    lines = [
        "Each site scored by the fraction of its cells that look infected, from the features of each cell-centred "
        "crop (at most 64 per site; each plate's cells centre-scaled on its C+ cells), counted two ways: **novelty**, "
        f"a cell beyond the {QUANTILE:.0%} quantile of the C+ cells' distances in a {COMPONENTS}-component whitened "
        "PCA of the C+ cells; **classifier**, a cell a logistic regression of the C- sites' cells against the C+ "
        "sites' cells calls C- (P > 0.5). The fraction is fitted, flagged and ranked as `gandl analyse` does the "
        "E2 on-axis score. The cells are read by GAN-DL's default pair (two 8-kimg `--info 10` runs, seeds 0 and 1, "
        "read together), by the same networks untrained and by handcrafted features (the suite's per-site "
        "statistics computed on each crop). Computed beside two training lanes at the lowest priority and, for "
        "the last run, the unit tests.", "",
        "Each cell: Spearman / ranking AP / true·false hits / on decoy screens, decoy curves among the first R "
        "curves (R: the rescuing ones) / how far apart the C+ and C- sites' scores lie, in their within-group sd "
        "(in-sample for the classifier count, whose classifier was fitted on those sites' cells); – not computed. "
        "Means and sums over each set's screens:", "",
        "| set | features | " + " | ".join(columns.values()) + " |", "|---|---|" + "---|" * len(columns)]
    for name, screens in rows.items():
        for f in features:
            got = {c: [r[f"{f} {c}"] for r in screens.values() if f"{f} {c}" in r] for c in columns}
            mean = {c: ({k: (np.sum if k in ("true_hits", "false_hits", "decoys_in_top") else np.mean)(
                [r[k] for r in v]) for k in v[0] if k in ("spearman", "rank_ap", "true_hits", "false_hits",
                                                          "decoys_in_top", "separation")}
                        if len(v) == len(screens) else None) for c, v in got.items()}
            lines.append(f"| {name} | {f} | " + " | ".join(cell(mean[c]) for c in columns) + " |")
    lines += ["", "Per screen:", "", "| screen | features | " + " | ".join(columns.values()) + " |",
              "|---|---|" + "---|" * len(columns)]
    for screens in rows.values():
        for screen, row in screens.items():
            for f in features:
                lines.append(f"| {screen} | {f} | " + " | ".join(cell(row.get(f"{f} {c}")) for c in columns) + " |")
    lines.append("")
    for label, (shown, when) in RULES_WRITTEN.items():
        if any(label in r for screens in rows.values() for r in screens.values()):
            text, why = verdict(rows, label, shown)
            lines += why + ["", f"Rule for {shown}, written {when}: promising (to be measured on the suite; no "
                            f"default changes here) if GAN-DL's mean ranking AP rises by at least {RULE['decoys']} on "
                            f"the decoy screens and falls by at most {-RULE['heldout']} on the held-out ones, and its "
                            f"mean Spearman falls by at most {-RULE_SPEARMAN} on either: **{text}**.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--cells", default="all", help="screen:read-out pairs to compute the cells of (default all), "
                    "e.g. decoys-medium:GAN-DL; the others report their tiles only")
    ap.add_argument("--classifier", action="store_true",
                    help="also count the cells a per-cell classifier of C- against C+ cells calls C-")
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args(argv)
    wanted = None if args.cells == "all" else {tuple(x.split(":")) for x in args.cells.split(",")}
    rows = {}
    for name in args.sets.split(","):
        cache, screens = SETS[name]
        rows[name] = {}
        for screen in screens:
            folder = cache / screen
            row = rows[name][screen] = {}
            for read_out in ("GAN-DL", "untrained"):
                row[f"{read_out} tiles"] = default_scores(folder, read_out)
                if wanted is None or (screen, read_out) in wanted:
                    row[f"{read_out} cells"] = cell_fraction_scores(folder, read_out)
                    if args.classifier:
                        row[f"{read_out} cells, classifier"] = cell_fraction_scores(folder, read_out, "classifier")
            row["handcrafted tiles"] = default_scores(folder, "handcrafted")
            if wanted is None or (screen, "handcrafted") in wanted:
                row["handcrafted cells, classifier"] = cell_fraction_scores(folder, "handcrafted", "classifier")
            log(f"{screen}: " + "; ".join(f"{k} {v['spearman']:.3f}/{v['rank_ap']:.3f}" for k, v in row.items()))
    publish("cell_fraction", "Which compounds rescue, read as the fraction of cells that look infected "
            "(bench_cell_fraction.py)", report(rows), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
