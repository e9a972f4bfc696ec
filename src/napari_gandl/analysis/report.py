"""``analyse``: the whole analysis of one embedding table, as a report folder.

``analyse(embeddings, metadata=None, out_dir=..., normalise='centerscale')``
loads the table, normalises plates on their controls, runs the RxRx19a
control tasks (linear SVM, well-grouped and leave-one-plate-out splits),
measures plate effects before and after normalisation (``batch.py``), fits
the E2 and C2 perturbation spaces, derives dose-response curves on the E2
on-axis score, and writes into ``out_dir``:

* ``report.json`` — every accuracy (mean ± sd, confusion matrices; ``tasks``
  on held-out wells, ``tasks_lopo`` on held-out plates), the batch
  diagnostics, the copairs mAP summary, space and dose-response summary, and
  the ground-truth AUC when known;
* ``map_activity.csv`` and ``map_consistency.csv`` — copairs mAP per
  compound x dose x cell type (phenotypic activity against C-, replicate
  consistency);
* ``dose_response.csv`` (one row per compound x cell type) and
  ``dose_points.csv`` (mean ± s.e.m. per dose);
* ``scores.parquet`` — per-site E2/C2 coordinates with metadata;
* plots (``e2.png``, ``c2.png``, ``e2_hits_by_dose.png``, ``dose_curves.png``,
  ``batch_pca.png``);
* ``report.html`` — one page with the plots embedded.

Parts that the table cannot support (no treated sites, one cell type, ...)
are skipped and the reason is recorded under ``"skipped"``.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from napari_gandl.analysis.axes import color_values, fit_c2, fit_e2, plot_space
from napari_gandl.analysis.batch import batch_diagnostics, plot_batch_pca
from napari_gandl.analysis.classify import Task, TaskError, evaluate_task, rxrx19a_tasks
from napari_gandl.analysis.dose import dose_response, flagged_off_manifold, off_manifold
from napari_gandl.analysis.dose_plots import plot_curves
from napari_gandl.analysis.normalise import normalise as normalise_table
from napari_gandl.analysis.pages import render
from napari_gandl.analysis.profile_map import map_report
from napari_gandl.files import check_output
from napari_gandl.tables import (
    EmbeddingTable, TableError, as_str, batch_labels, load_embeddings, write_table,
)

Progress = Callable[[int, int, str], None]
STEPS = 6
#: every file ``analyse`` may write into its folder; all are removed before it writes, so none is
#: left from an earlier analysis whose sections this one skips
OUTPUTS = ("report.json", "report.html", "scores.parquet", "dose_response.csv", "dose_points.csv",
           "map_activity.csv", "map_consistency.csv", "batch_pca.png", "e2.png", "c2.png",
           "e2_hits_by_dose.png", "dose_curves.png")


def find_ground_truth(*paths) -> Path | None:
    """``ground_truth/compounds.csv`` beside a metadata/embedding file or plate folder."""
    for p in paths:
        if p is None or not isinstance(p, (str, Path)):
            continue
        p = Path(p)
        for base in (p, p.parent, p.parent.parent):
            cand = base / "ground_truth" / "compounds.csv"
            if cand.is_file():
                return cand
    return None


def ground_truth_auc(curves: pd.DataFrame, compounds: str | Path | pd.DataFrame,
                     score: str = "hit_score") -> dict:
    """ROC AUC of ``score`` for telling truly active compounds (ground truth
    ``active``) from inactive ones, over every fitted compound x cell type curve
    (and per compound, taking its best cell type)."""
    from sklearn.metrics import roc_auc_score

    gt = pd.read_csv(compounds) if isinstance(compounds, (str, Path)) else compounds
    if not {"compound", "active"} <= set(gt.columns):
        raise TableError(f"{compounds}: ground truth needs columns 'compound' and 'active'")
    act = gt.set_index("compound")["active"].astype(str).str.lower().isin(["true", "1", "yes"])
    c = curves[curves["compound"].isin(act.index)].copy()
    c["active"] = c["compound"].map(act).astype(bool)
    s = c[score].astype(float).fillna(-np.inf)
    out = {"score": score, "n_active_curves": int(c["active"].sum()),
           "n_inactive_curves": int((~c["active"]).sum())}
    if c["active"].nunique() < 2:
        out["auc"] = None
        out["note"] = "ground truth has only one class among the fitted compounds"
        return out
    out["auc"] = float(roc_auc_score(c["active"], np.where(np.isfinite(s), s, -1e300)))
    per = c.assign(s=s).groupby("compound").agg(active=("active", "first"), s=("s", "max"))
    if per["active"].nunique() == 2:
        out["auc_per_compound"] = float(roc_auc_score(per["active"], np.where(np.isfinite(per["s"]), per["s"], -1e300)))
    return out


def _png_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _confounded(meta: pd.DataFrame) -> bool:
    """True when every batch holds a single cell type (plate effects and cell
    model cannot be told apart, so plate normalisation erases the cell model)."""
    if "cell_type" not in meta.columns:
        return False
    try:
        b = batch_labels(meta)
    except TableError:
        return False
    per = pd.DataFrame({"b": b, "c": as_str(meta, "cell_type")}).groupby("b")["c"].nunique()
    return bool((per <= 1).all()) and meta["cell_type"].nunique() > 1


SPLIT_KEYS = (("well", "tasks", ""), ("plate", "tasks_lopo", " (leave-one-plate-out)"))


def normalise_for_tasks(raw: EmbeddingTable, normalise: str, report: dict) -> tuple[EmbeddingTable, bool]:
    """Plate-normalised table and whether cell type is confounded with plate.

    Records into ``report`` (keys ``normalise``, ``skipped``, ``notes``) what
    could not be normalised and why cell-type tasks keep the raw features.
    """
    try:
        table = normalise_table(raw, normalise)
    except TableError as exc:
        report["skipped"]["normalisation"] = str(exc)
        report["normalise"] = "none"
        table = raw
    confounded = normalise != "none" and _confounded(raw.meta)
    if confounded:
        report["notes"].append(
            "every plate holds a single cell type, so plate normalisation would erase the cell "
            "model: cell-type tasks and the C2 space use the un-normalised features")
    return table, confounded


def control_tasks(raw: EmbeddingTable, table: EmbeddingTable, confounded: bool,
                  report: dict) -> dict[str, tuple[Task, np.ndarray]]:
    """The paper's control tasks with the features each is scored on (raw for
    cell-type tasks when cell type is confounded with plate)."""
    try:
        tasks = rxrx19a_tasks(table.meta)
    except TableError as exc:
        report["skipped"]["tasks"] = str(exc)
        return {}
    return {name: (task, raw.X if confounded and not name.startswith("C+ vs C-") else table.X)
            for name, task in tasks.items()}


def score_tasks(tasks: dict[str, tuple[Task, np.ndarray]], report: dict, n_splits: int = 10,
                C: float = 1.0, seed: int = 0, say: Callable[[str], None] | None = None) -> None:
    """Linear-SVM accuracy of every task under both split schemes, into ``report``
    (``tasks``: well-grouped, ``tasks_lopo``: leave-one-plate-out, ``skipped``); ``say`` is told
    each fold as it is fitted (on RxRx19a's table the tasks take about ten minutes)."""
    for name, (task, X) in tasks.items():
        for split, key, suffix in SPLIT_KEYS:
            held_out = "held-out wells" if split == "well" else "held-out plates"
            folds = None if say is None else (lambda k, n: say(f"classification tasks: {name}, {held_out} {k}/{n}"))
            try:
                res = evaluate_task(X, task, n_splits=n_splits, C=C, seed=seed, split=split, progress=folds)
                report[key][name] = res.as_dict()
            except TaskError as exc:
                report["skipped"][f"task {name}{suffix}"] = str(exc)


def analyse(embeddings, metadata=None, out_dir="gandl-report", normalise: str = "centerscale",
            features: Sequence[str] | None = None, ground_truth=None, n_splits: int = 10,
            on_nonfinite: str = "raise", C: float = 1.0, seed: int = 0,
            max_curve_plots: int = 12, progress: Progress | None = None) -> dict:
    """Run the full analysis and write a report folder; returns the report dict.

    Parameters
    ----------
    embeddings : path (.parquet/.csv), DataFrame or EmbeddingTable (one row per site)
    metadata : optional metadata.csv (or DataFrame) joined on ``site_id``
    out_dir : folder for report.json, report.html, dose_response.csv, plots (the files an earlier
        analysis wrote there, :data:`OUTPUTS`, are removed first)
    normalise : 'centerscale', 'tvn' or 'none' (plate effects, fitted on controls)
    features : explicit feature column names (default: numeric non-metadata columns)
    ground_truth : path to a compounds.csv (or a DataFrame) with ``compound, active``; ``None``
        looks for ``ground_truth/compounds.csv`` beside the inputs; ``False`` skips
    n_splits : repeated well-grouped 75/25 splits per task
    on_nonfinite : 'raise' or 'drop' rows with NaN/inf features
    progress : optional ``callback(step, total_steps, message)``
    """
    t_start = time.perf_counter()
    if isinstance(n_splits, bool) or int(n_splits) != n_splits or n_splits < 1:
        raise ValueError(f"--splits must be an integer >= 1, got {n_splits!r}")
    out = check_output(out_dir, folder=True)

    def tick(i, msg):
        if progress:
            progress(i, STEPS, msg)

    tick(0, "loading embeddings")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = load_embeddings(embeddings, metadata, features=features, on_nonfinite=on_nonfinite)
    notes = [str(w.message) for w in caught]
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # an earlier analysis's files would pass for this one's
        (out / name).unlink(missing_ok=True)
    report: dict = {
        "embeddings": str(embeddings) if isinstance(embeddings, (str, Path)) else "<table>",
        "metadata": str(metadata) if isinstance(metadata, (str, Path)) else None,
        "n_sites": len(raw), "n_features": len(raw.features), "normalise": normalise,
        "dropped_columns": raw.dropped_columns, "dropped_rows": raw.dropped_rows,
        "tasks": {}, "tasks_lopo": {}, "batch": {}, "spaces": {}, "skipped": {}, "notes": notes,
        "files": {},
    }

    tick(1, f"normalising ({normalise})")
    table, confounded = normalise_for_tasks(raw, normalise, report)

    tick(2, "classification tasks")
    score_tasks(control_tasks(raw, table, confounded, report), report, n_splits=n_splits, C=C, seed=seed,
                say=lambda text: tick(2, text))
    tick(2, "plate effects")
    stages = {"raw": raw.X} if report["normalise"] == "none" else {"raw": raw.X, report["normalise"]: table.X}
    report["batch"] = {stage: batch_diagnostics(X, raw.meta, seed=seed) for stage, X in stages.items()}
    try:
        plot_batch_pca(stages, raw.meta, out / "batch_pca.png", seed=seed)
        report["files"]["batch_pca"] = "batch_pca.png"
    except TableError as exc:
        report["skipped"]["batch PCA"] = str(exc)
    tick(2, "copairs mAP")
    try:
        report["map"] = map_report(table, out, seed=seed)
    except TableError as exc:
        report["skipped"]["copairs mAP"] = str(exc)

    tick(3, "perturbation spaces")
    scores = table.meta[[c for c in ("site_id", "well_id", "cell_type", "experiment", "plate", "well",
                                     "disease_condition", "treatment", "treatment_conc")
                         if c in table.meta.columns]].copy()
    e2 = None
    try:
        e2 = fit_e2(table, C=C, seed=seed)
        xy = e2.transform(table.X)
        scores["e2_on"], scores["e2_off"] = xy[:, 0], xy[:, 1]
        report["spaces"]["E2"] = e2.as_dict()
        # colour: the condition (the plate map's and the napari docks' colours); shape: the cell type
        plot_space(xy, color_values(table.meta, np.arange(len(table)), "condition")[0], out / "e2.png",
                   title="E2 (effectiveness) space",
                   marker_by=as_str(table.meta, "cell_type") if "cell_type" in table.meta else None)
        report["files"]["e2"] = "e2.png"
    except (TaskError, TableError) as exc:
        report["skipped"]["E2 space"] = str(exc)
    try:
        src = raw if confounded else table
        c2 = fit_c2(src, C=C, seed=seed)
        xy2 = c2.transform(src.X)
        scores["c2_on"], scores["c2_off"] = xy2[:, 0], xy2[:, 1]
        report["spaces"]["C2"] = c2.as_dict()
        plot_space(xy2, color_values(src.meta, np.arange(len(src)), "condition")[0], out / "c2.png",
                   title="C2 (cell model) space", marker_by=as_str(src.meta, "cell_type"))
        report["files"]["c2"] = "c2.png"
    except (TaskError, TableError) as exc:
        report["skipped"]["C2 space"] = str(exc)
    write_table(scores, out / "scores.parquet")
    report["files"]["scores"] = "scores.parquet"

    tick(4, "dose-response curves")
    curves = None
    if e2 is None:
        report["skipped"]["dose-response"] = "needs the E2 space (C+ and C- controls)"
    else:
        try:
            t0 = time.perf_counter()
            curves, pts = dose_response(scores["e2_on"].to_numpy(), table.meta)
            dt = time.perf_counter() - t0
            curves = off_manifold(table.X, table.meta, curves)
            curves.to_csv(out / "dose_response.csv", index=False)
            pts.drop(columns=["ss_within"]).to_csv(out / "dose_points.csv", index=False)
            report["files"]["dose_response"] = "dose_response.csv"
            report["files"]["dose_points"] = "dose_points.csv"
            fitted = curves["status"] == "fitted"
            top = curves[fitted].head(max_curve_plots)
            report["dose_response"] = {
                "n_curves": int(len(curves)), "n_fitted": int(fitted.sum()),
                "n_too_few_doses": int((~fitted).sum()), "n_hits": int(curves["hit"].sum()),
                "n_hits_off_manifold": int((curves["hit"] & flagged_off_manifold(curves)).sum()),
                "n_bad_dose_sites": int(curves.attrs.get("n_bad_dose", 0)),
                "seconds": dt,
                "top": json.loads(curves.head(20)[[
                    "rank", "compound", "cell_type", "status", "ec50_uM", "hill", "bottom", "top",
                    "r2", "efficacy", "rescue_fraction", "p_value", "q_value", "hit", "off_manifold",
                    "flag"]].to_json(orient="records")),
            }
            if len(top):
                plot_curves(curves, pts, list(zip(top["compound"], top["cell_type"])),
                            out / "dose_curves.png", title="Top-ranked dose-response curves (E2 on-axis)")
                report["files"]["dose_curves"] = "dose_curves.png"
                # E2 scatter of the top compounds' sites coloured by dose
                best = top["compound"].head(3).tolist()
                sel = np.isin(as_str(table.meta, "treatment"), best)
                dose = pd.to_numeric(table.meta["treatment_conc"], errors="coerce").to_numpy()
                plot_space(xy, np.where(sel, dose, np.nan), out / "e2_hits_by_dose.png", kind="numeric",
                           title=f"E2 space: {', '.join(best)} by dose (µM)", other_label="other sites")
                report["files"]["e2_hits_by_dose"] = "e2_hits_by_dose.png"
        except TableError as exc:
            report["skipped"]["dose-response"] = str(exc)

    tick(5, "ground truth and report")
    if ground_truth is not False and curves is not None:
        if isinstance(ground_truth, pd.DataFrame):
            report["ground_truth"] = {"file": "<table>", **ground_truth_auc(curves, ground_truth)}
        else:
            gt = Path(ground_truth) if ground_truth else find_ground_truth(metadata, embeddings)
            if gt is not None:
                report["ground_truth"] = {"file": str(gt), **ground_truth_auc(curves, gt)}
    report["seconds"] = time.perf_counter() - t_start
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    report["files"]["json"] = "report.json"
    write_html(report, out)
    report["files"]["html"] = "report.html"
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    tick(6, "done")
    return report


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


FIGURES = (("batch_pca", "Plate effects: PCA by plate and by condition"), ("e2", "E2 space"),
           ("c2", "C2 space"), ("e2_hits_by_dose", "Top hits by dose"), ("dose_curves", "Dose-response curves"))


def write_html(report: dict, out: Path) -> Path:
    """One self-contained page (templates/report.html.j2): accuracies, plate effects, mAP, hits,
    ground truth, and the plots of ``out`` inlined."""
    figures = [(caption, _png_b64(out / report["files"][key])) for key, caption in FIGURES
               if key in report["files"] and (out / report["files"][key]).is_file()]
    path = out / "report.html"
    path.write_text(render("report.html.j2", report=report, figures=figures), encoding="utf-8")
    return path
