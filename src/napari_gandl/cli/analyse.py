"""The ``gandl analyse`` and ``gandl align`` subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_gandl.analysis.normalise import METHODS as NORMALISATIONS
from napari_gandl.cli.common import COMMANDS, ReportedProgress
from napari_gandl.columns import BATCHES
from napari_gandl.files import output_lock


def run_analyse(args: argparse.Namespace) -> int:
    from napari_gandl.analysis.report import analyse

    features = None
    if args.features:
        features = [f.strip() for f in args.features.split(",") if f.strip()]
    gt = False if args.no_ground_truth else args.ground_truth
    with output_lock(args.out, folder=True), ReportedProgress("analyse", "step", args.quiet) as progress:
        report = analyse(args.embeddings, metadata=args.metadata, out_dir=args.out,
                         normalise=args.normalise, features=features, ground_truth=gt,
                         n_splits=args.splits, on_nonfinite="drop" if args.drop_nonfinite else "raise",
                         seed=args.seed, progress=progress)
    out = Path(args.out)
    for name, r in report["tasks"].items():
        lopo = report["tasks_lopo"].get(name)
        plates = (f"; held-out plates {100 * lopo['accuracy_mean']:5.1f} ± {100 * lopo['accuracy_sd']:4.1f} %"
                  if lopo else "")
        print(f"{name:28s} accuracy, held-out wells {100 * r['accuracy_mean']:5.1f} ± "
              f"{100 * r['accuracy_sd']:4.1f} %{plates}")
    for stage, d in report["batch"].items():
        pp = d["plate_predictability"]
        if "skipped" not in pp:
            print(f"plate predictability ({stage}): {100 * pp['accuracy']:.1f} % "
                  f"(chance {100 * pp['chance']:.1f} %)")
    mp = report.get("map")
    if mp:
        print(f"copairs mAP: activity vs C- {mp['activity']['mean_mAP']:.3f} "
              f"({mp['activity']['n_significant']}/{mp['activity']['n_groups']} compound-doses active at q < 0.05), "
              f"replicate consistency {mp['consistency']['mean_mAP']:.3f}")
    dr = report.get("dose_response")
    if dr:
        flagged = dr["n_hits_off_manifold"]
        print(f"dose-response: {dr['n_fitted']} curves fitted, {dr['n_hits']} hits"
              + (f" ({flagged} off-manifold: possible toxicity, see the flag column)" if flagged else "")
              + f", {dr['n_too_few_doses']} with too few doses")
    gt = report.get("ground_truth")
    if gt and gt.get("auc") is not None:
        print(f"ground truth: AUC {gt['auc']:.3f} (active vs inactive compounds)")
    for k, v in report["skipped"].items():
        print(f"skipped {k}: {v}")
    print(f"Report: {out / 'report.html'}")
    return 0


def run_align(args: argparse.Namespace) -> int:
    with output_lock(args.out):
        return _align(args)


def _align(args: argparse.Namespace) -> int:
    import json

    from napari_gandl.analysis.align import align_embeddings
    from napari_gandl.analysis.batch import batch_diagnostics
    from napari_gandl.tables import load_embeddings, write_table

    table = load_embeddings(args.embeddings, args.metadata,
                            on_nonfinite="drop" if args.drop_nonfinite else "raise")

    with ReportedProgress("align", "step", args.quiet) as progress:
        aligned, summary = align_embeddings(table, by=args.batch, steps=args.steps, weight=args.weight,
                                            seed=args.seed, progress=progress)
    if summary["plan"]["note"]:
        print(f"note: {summary['plan']['note']}")
    path = write_table(aligned, args.out)
    summary["diagnostics"] = {}
    for stage, t in (("before", table), ("after", aligned)):
        d = summary["diagnostics"][stage] = batch_diagnostics(t.X, t.meta, seed=args.seed)
        pp = d["plate_predictability"]
        if "skipped" not in pp:
            print(f"plate predictability {stage}: {100 * pp['accuracy']:.1f} % (chance {100 * pp['chance']:.1f} %)")
    sidecar = path.with_name(path.name.split(".")[0] + ".align.json")
    sidecar.write_text(json.dumps(summary, indent=2))
    print(f"{len(aligned)} sites aligned by {args.batch} -> {path} (summary {sidecar.name})")
    return 0


def register(subparsers) -> None:
    """Add ``analyse`` and ``align`` to the ``gandl`` command."""
    p = subparsers.add_parser(
        "analyse", help=COMMANDS["analyse"][1],
        description="Analyse an embedding table (ours, RxRx19a embeddings.csv, or CellProfiler-style): "
                    "plate normalisation, linear-SVM control tasks, perturbation spaces, dose-response "
                    "curves with EC50 and q-values; writes report.json, dose_response.csv, plots and report.html.")
    p.add_argument("embeddings", help="embedding table (.parquet or .csv) with a site_id column")
    p.add_argument("--metadata", help="metadata.csv joined on site_id (if not already in the table)")
    p.add_argument("--out", default="gandl-report", help="report folder (default: gandl-report)")
    p.add_argument("--normalise", default="centerscale", choices=NORMALISATIONS,
                   help="plate-effect correction fitted on untreated control sites")
    p.add_argument("--features", help="comma-separated feature columns (default: numeric non-metadata)")
    p.add_argument("--splits", type=int, default=10, help="repeated well-grouped 75/25 splits per task")
    p.add_argument("--ground-truth", help="compounds.csv with compound,active columns (default: "
                                          "ground_truth/compounds.csv beside the inputs, if any)")
    p.add_argument("--no-ground-truth", action="store_true", help="do not look for ground truth")
    p.add_argument("--drop-nonfinite", action="store_true", help="drop rows with NaN/inf features (warns)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_analyse)

    a = subparsers.add_parser(
        "align", help=COMMANDS["align"][1],
        description="Post-hoc domain-adversarial alignment: learns a per-plate gain and offset of every "
                    "feature such that a batch classifier behind a gradient-reversal layer can no longer "
                    "tell the plates apart. Writes the aligned table (same columns) and "
                    "<OUT>.align.json with plate predictability before and after.")
    a.add_argument("embeddings", help="embedding table (.parquet or .csv) with a site_id column")
    a.add_argument("--batch", default="plate", choices=BATCHES,
                   help="what to align (plates are aligned within experiments when each experiment "
                        "is one cell type)")
    a.add_argument("--out", required=True, help="aligned table (.parquet or .csv)")
    a.add_argument("--metadata", help="metadata.csv joined on site_id (if not already in the table)")
    a.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    a.add_argument("--weight", type=float, default=1.0, help="final gradient-reversal weight")
    a.add_argument("--drop-nonfinite", action="store_true", help="drop rows with NaN/inf features (warns)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=run_align)

