"""Plate-effect corrections compared on screens of the synthetic suite.

For each screen (default: the two strong-plate-effect screens and ``texture``,
which has the same wells with the suite's ordinary plate effects):

* a default GAN-DL run, ``gandl train --minutes M`` (one thread), embedded
  with the default read-out -- shared with ``bench_suite.py`` (same cache
  folder and tag);
* a ``--align plate`` run trained for the same number of images, embedded the
  same way;

and these rows, all scored on the same sites:

* **none** -- the default run's embedding as it is;
* **centre-scale**, **TVN** -- ``gandl analyse --normalise`` on untreated controls;
* **GRL training** -- the ``--align plate`` run's embedding as it is
  (and **+ centre-scale**);
* **post-hoc** -- ``gandl align`` on the default embedding (and **+ centre-scale**).

Columns: plate predictability (balanced accuracy of a linear SVM telling a
plate from the other plate of its experiment on held-out wells; chance 50 %;
below chance after a per-plate correction is expected, see docs/analysis.md),
C+/C- accuracy on well-grouped and leave-one-plate-out splits, the
dose-ranking Spearman (well means of the E2 on-axis score of treated wells
against the true rescue, as in bench_suite.py) and the training (or
alignment) time.

Cache: ``--cache/<screen>/plate`` (written by bench_suite.py, or here),
``gandl-<tag>``, ``gandl-<tag>-align-plate``, ``emb-gandl-<tag>*.parquet`` and
``align-<tag>.json`` (delete it to score again).  One screen per invocation
(``--train-only`` first, then again to embed and score) keeps a job under ten
minutes; ``--table`` only assembles the cached results.

    python benchmarks/bench_align.py --minutes 3 --screens plate-gain-blur
    python benchmarks/bench_align.py --minutes 3 --table
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_suite import CACHE, embed, gandl, log, screen_plate, train_run  # noqa: E402  (the suite's runner and cache layout)

SCREENS = ("plate-gain-blur", "plate-background-density", "texture")
ROWS = ("none", "centre-scale", "TVN", "GRL training", "GRL training + centre-scale",
        "post-hoc", "post-hoc + centre-scale")


def scores(table, wells: pd.DataFrame) -> dict:
    """Plate predictability, C+/C- on both splits, dose-ranking Spearman."""
    from scipy.stats import spearmanr

    from napari_gandl.analysis.axes import fit_e2
    from napari_gandl.analysis.batch import plate_predictability
    from napari_gandl.analysis.classify import evaluate_task, rxrx19a_tasks

    task = rxrx19a_tasks(table.meta)["C+ vs C- (merged)"]
    e2 = fit_e2(table)
    on = pd.Series(e2.transform(table.X)[:, 0], index=table.meta["well_id"].to_numpy())
    treated = table.meta["treatment"].notna().to_numpy()
    well_score = on[treated].groupby(level=0).mean().rename("score")
    ranked = wells.merge(well_score, left_on="well_id", right_index=True)
    pp = plate_predictability(table.X, table.meta)
    return {"plate": pp["accuracy"], "plate_chance": pp["chance"],
            "acc_well": evaluate_task(table.X, task, n_splits=10).accuracy_mean,
            "acc_lopo": evaluate_task(table.X, task, split="plate").accuracy_mean,
            "spearman": float(spearmanr(ranked["score"], ranked["true_rescue"]).statistic)}


def run_screen(name: str, cache: Path, minutes: float, tag: str, train_only: bool = False) -> dict | None:
    import torch

    from napari_gandl.analysis.align import align_embeddings
    from napari_gandl.analysis.normalise import normalise
    from napari_gandl.tables import load_embeddings
    from napari_gandl.gan.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    folder = cache / name
    saved = folder / f"align-{tag}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    plate_root = screen_plate(cache, name)
    run, aligned_run = folder / f"gandl-{tag}", folder / f"gandl-{tag}-align-plate"
    train_run(plate_root, run, minutes)
    base = load_checkpoint(run)
    kimg = base["cur_nimg"] / 1000
    if not (aligned_run / "checkpoint.pt").is_file() or load_checkpoint(aligned_run)["cur_nimg"] < base["cur_nimg"]:
        log(f"{name}: gandl train --align plate --kimg {kimg:g}")
        resume = ["--resume"] if (aligned_run / "checkpoint.pt").is_file() else []
        gandl("train", str(plate_root), "--out", str(aligned_run), "--kimg", f"{kimg:g}", "--device", "cpu",
              "--threads", "1", "--seed", "0", "--runs", "1", "--align", "plate", *resume)
    aligned = load_checkpoint(aligned_run)
    if train_only:
        return None
    t0 = time.time()
    raw = load_embeddings(embed(plate_root, "gandl", run, folder / f"emb-gandl-{tag}.parquet"))
    grl = load_embeddings(embed(plate_root, "gandl", aligned_run, folder / f"emb-gandl-{tag}-align-plate.parquet"))
    log(f"{name}: embedded in {time.time() - t0:.0f} s")
    t0 = time.time()
    post, summary = align_embeddings(raw, "plate")
    post_s = time.time() - t0
    wells = pd.read_csv(plate_root / "ground_truth" / "wells.csv")
    tables = {
        "none": raw, "centre-scale": normalise(raw, "centerscale"), "TVN": normalise(raw, "tvn"),
        "GRL training": grl, "GRL training + centre-scale": normalise(grl, "centerscale"),
        "post-hoc": post, "post-hoc + centre-scale": normalise(post, "centerscale"),
    }
    train_s = {"GRL training": aligned["elapsed_s"]}
    results = {}
    for row, table in tables.items():
        results[row] = {**scores(table, wells),
                        "seconds": train_s.get(row.split(" +")[0], base["elapsed_s"]) + (
                            post_s if row.startswith("post-hoc") else 0.0)}
        log(f"{name} {row}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[row].items()))
    out = {"screen": name, "kimg": kimg, "minutes": minutes,
           "img_per_s": {"default": base["cur_nimg"] / base["elapsed_s"],
                         "align": aligned["cur_nimg"] / aligned["elapsed_s"]},
           "post_hoc_seconds": post_s, "post_hoc_note": summary["plan"]["note"], "results": results}
    saved.write_text(json.dumps(out, indent=1))
    return out


def markdown(rows: list[dict], commit: str) -> str:
    budgets = ", ".join(f"{r['screen']} {r['kimg']:.1f} kimg" for r in rows)
    lines = [
        f"Each screen: the default `gandl train --minutes {rows[0]['minutes']:g} --device cpu --threads 1` "
        f"run, and a `--align plate` run trained on the same number of images ({budgets}); "
        f"both embedded with the default read-out; commit {commit}. Every experiment of these screens is "
        "one cell type, so plates are aligned within their experiment (the run says so). "
        "**Short budgets, one CPU thread: these GAN-DL runs are far from converged.**\n",
        "Plate predictability: balanced accuracy of a linear SVM telling a plate from the other plate of "
        "its experiment, held-out wells (chance 50 %, lower is better; below chance after a per-plate "
        "correction is expected). C+/C-: linear SVM, 10 well-grouped 75/25 splits (wells) and "
        "leave-one-plate-out (plates). Spearman: E2 on-axis well means of treated wells vs the true "
        "rescue. Time: training (and `gandl align`) seconds.\n",
        "| screen | correction | plate predictability | C+/C- wells | C+/C- plates | Spearman | time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for name in ROWS:
            v = r["results"][name]
            lines.append(f"| {r['screen']} | {name} | {100 * v['plate']:.1f} % | {100 * v['acc_well']:.1f} % | "
                         f"{100 * v['acc_lopo']:.1f} % | {v['spearman']:.3f} | {v['seconds']:.0f} |")
    lines.append("")
    lines.append("Training speed (img/s), default vs `--align plate`: " + "; ".join(
        f"{r['screen']} {r['img_per_s']['default']:.1f} vs {r['img_per_s']['align']:.1f}" for r in rows) + ".")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--screens", default=",".join(SCREENS))
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--minutes", type=float, default=3.0, help="training budget of the default run")
    ap.add_argument("--table", action="store_true", help="only assemble cached results into docs/benchmarks.md")
    ap.add_argument("--train-only", action="store_true",
                    help="stop after the two training runs (keeps one job under ten minutes)")
    args = ap.parse_args(argv)
    tag = f"{args.minutes:g}min"
    rows = []
    for name in args.screens.split(","):
        if args.table:
            path = args.cache / name / f"align-{tag}.json"
            if path.is_file():
                rows.append(json.loads(path.read_text()))
        else:
            rows.append(run_screen(name, args.cache, args.minutes, tag, args.train_only))
    if args.table and rows:
        from _report import write_section

        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        table = markdown(rows, commit)
        write_section("align", "Plate-effect corrections", table)
        # the same table in docs/analysis.md, where the corrections are explained
        doc = ROOT / "docs" / "analysis.md"
        text = doc.read_text()
        start, end = "<!-- align-table -->", "<!-- /align-table -->"
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1] if end in rest else rest
        doc.write_text(f"{head}{start}\n{table}\n{end}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
