"""GAN-DL training choices, each judged on the whole synthetic benchmark suite.

For every screen of ``napari_gandl.synthetic.SUITE`` and every variant of the
``quick`` preset (random tiles vs cell-centred crops, fixed augmentation vs
ADA, a wider generator, logistic+R1 vs WGAN-GP, plate alignment, a longer
time budget), a GAN is trained on the screen for ``--kimg`` thousand images
(the same for every variant, so a slower variant is not penalised by a busy
machine; its speed is reported instead) with one torch thread, its
discriminator embeds the screen
(``--sites-per-well`` sites of every well) and the embedding is scored the way the
suite table scores it: plate centre-scaling on the untreated controls, a
linear SVM C+ (Mock, UV-inactivated) vs C- (active virus) with well-grouped
splits, and the Spearman correlation of the compound wells' projection on
that axis with their true rescue.  Reference rows on every screen: the
handcrafted features, and the same discriminators untrained.  The sample
quality of each run (1-NN two-sample accuracy, KID, diversity from its
``metrics.csv``) is reported beside.

Every finished (variant, screen) result is cached in the work folder, so an
interrupted run continues where it stopped.

    python benchmarks/bench_gan_ablation.py [--kimg 1.5] [--variants default,crops,...]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

# name -> (training overrides of the quick preset, embedding options, what it tests)
VARIANTS = {
    "default": ({}, {}, "the quick preset: random 64x64 tiles, adaptive augmentation (ADA, target 0.6) from "
                        "p=0, logistic+R1"),
    "fixed-p": ({"ada": False, "augment": {"p": 0.5}}, {}, "fixed augmentation p=0.5 (the quick default before ADA)"),
    "crops": ({"resolution": 32, "data": {"sampling": "crops"}}, {"sampling": "crops"},
              "cell-centred 32x32 crops for training and embedding (cell mean, std, outlying fraction)"),
    "G2x": ({"network": {"channel_base": 1024}}, {}, "generator twice as wide (16 channels at 64x64, 256 at 4x4)"),
    "wgan-gp": ({"loss": "wgan-gp"}, {}, "Wasserstein loss with gradient penalty (the paper's framing)"),
    "align": ({"align": "plate"}, {}, "D's embedding made blind to the plate (--align plate, DANN)"),
    "long": ({}, {}, "the quick preset trained twice as long"),
}
UNTRAINED = {"default": "untrained D (tiles)", "crops": "untrained D (crops)"}


def suite_plates(cache: Path, screens: list[str]) -> dict[str, Path]:
    plates = {name: cache / name / "plate" for name in screens}
    missing = [n for n, p in plates.items() if not (p / "metadata.csv").exists()]
    if missing:
        raise SystemExit(f"suite screens missing under {cache}: {', '.join(missing)} "
                         f"(write them with `gandl synthetic --suite` first)")
    return plates


def last_metrics(run: Path) -> dict:
    path = run / "metrics.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {k: float(rows[-1][k]) for k in ("kimg", "nn1_accuracy", "kid", "diversity")}


def untrained_run(plate, run: Path, overrides: dict) -> Path:
    """A run folder holding the variant's networks at their (seeded) initialisation."""
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.gan.config import make_config

    if not (run / "checkpoint.pt").exists():
        cfg = make_config("quick", kimg=1.0, device="cpu", threads=1, **overrides)
        Trainer(plate, run, cfg).save(samples=False)
    return run


def embed(plate, sites, run: Path | None, method: str, options: dict) -> np.ndarray:
    from napari_gandl.embedding.pipeline import embed_plate
    from napari_gandl.embedding.registry import load_embedder

    embedder = load_embedder(method, run, plate, "cpu", **options)
    df = embed_plate(plate, embedder, sites=sites, batch_size=16)
    cols = [c for c in df.columns if re.fullmatch(r"f\d{3,}", c)]
    return df[cols].to_numpy(np.float64)


def score(plate, sites, X: np.ndarray, repeats: int) -> dict:
    from bench_gan_quality import evaluate

    truth = pd.read_csv(Path(plate.root) / "ground_truth" / "wells.csv")
    return evaluate(X, plate.sites.iloc[sites].reset_index(drop=True), truth, repeats)


def run_one(key: str, results: dict, results_path: Path, fn):
    if key in results:
        return results[key]
    t = time.time()
    value = {**fn(), "seconds": time.time() - t}
    if results_path.exists():  # another process (e.g. the reference rows) may have added rows
        results.update({k: v for k, v in json.loads(results_path.read_text()).items() if k not in results})
    results[key] = value
    tmp = results_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(results_path)
    print(key, json.dumps(results[key]), flush=True)
    return results[key]


def mean_row(rows: list[dict]) -> dict:
    keys = ("acc_mean", "spearman", "nn1_accuracy", "kid", "diversity", "kimg")
    return {k: float(np.mean([r[k] for r in rows])) for k in keys if all(k in r for r in rows)}


def _fmt(v, spec):
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def tables(results: dict, screens: list[str], variants: list[str]) -> tuple[str, dict]:
    rows = ["handcrafted", *[UNTRAINED[v] for v in UNTRAINED if v in variants], *variants]
    head = "| features | " + " | ".join(screens) + " | mean acc | mean Spearman | 1-NN | KID | diversity | kimg |"
    sep = "|---" * (len(screens) + 7) + "|"
    lines = [head, sep]
    means = {}
    for row in rows:
        per = [results.get(f"{row}/{s}") for s in screens]
        if any(p is None for p in per):
            continue
        m = mean_row(per)
        means[row] = m
        cells = [f"{p['acc_mean'] * 100:.1f} / {p['spearman']:.2f}" for p in per]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {m['acc_mean'] * 100:.1f} | "
                     f"{m['spearman']:.3f} | {_fmt(m.get('nn1_accuracy'), '.2f')} | "
                     f"{_fmt(m.get('kid'), '.3g')} | {_fmt(m.get('diversity'), '.2f')} | "
                     f"{_fmt(m.get('kimg'), '.2f')} |")
    return "\n".join(lines), means


def write_gan_md(table: str, note: str):
    path = ROOT / "docs" / "gan.md"
    text = path.read_text()
    block = f"<!-- ablation -->\n{note}\n\n{table}\n<!-- /ablation -->"
    if "<!-- ablation -->" in text:
        text = re.sub(r"<!-- ablation -->.*?<!-- /ablation -->", lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    path.write_text(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="/work/bench-cache/suite", help="folder of the suite screens")
    ap.add_argument("--workdir", default="/work/bench-cache/ablation")
    ap.add_argument("--kimg", type=float, default=1.5, help="training length of every run")
    ap.add_argument("--sites-per-well", type=int, default=1, help="sites of every well embedded")
    ap.add_argument("--references-only", action="store_true",
                    help="only the handcrafted and untrained rows (no training)")
    ap.add_argument("--no-references", action="store_true",
                    help="skip the reference rows (another process computes them into the same folder)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--screens", default=None, help="comma-separated subset (default: the whole suite)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from napari_gandl.gan import train
    from napari_gandl.plate import open_plate

    from napari_gandl.synthetic import SUITE

    screens = args.screens.split(",") if args.screens else list(SUITE)
    plates = suite_plates(Path(args.suite), screens)
    variants = args.variants.split(",")
    work = Path(args.workdir) / f"{args.kimg:g}kimg-{args.sites_per_well}spw"
    work.mkdir(parents=True, exist_ok=True)
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}

    opened = {}
    for screen in screens:
        plate = open_plate(plates[screen])
        sites = np.flatnonzero(plate.sites["site"].astype(int).to_numpy() <= args.sites_per_well)
        opened[screen] = (plate, sites)
        if args.no_references:
            continue
        run_one(f"handcrafted/{screen}", results, results_path,
                lambda: score(plate, sites, embed(plate, sites, None, "handcrafted", {}), args.repeats))
        for v, label in UNTRAINED.items():
            if v not in variants:
                continue
            overrides, options, _ = VARIANTS[v]
            run = untrained_run(plate, work / "untrained" / v / screen, overrides)
            run_one(f"{label}/{screen}", results, results_path,
                    lambda: score(plate, sites, embed(plate, sites, run, "gandl", options), args.repeats))
    # variant by variant over the whole suite, so an interrupted run has whole rows
    for v in [] if args.references_only else variants:
        overrides, options, _ = VARIANTS[v]
        kimg = args.kimg * (2 if v == "long" else 1)
        for screen in screens:
            plate, sites = opened[screen]
            run = work / v / screen

            def trained():
                t = time.time()
                train(plate, run, preset="quick", kimg=kimg, device="cpu", threads=1,
                      resume=(run / "checkpoint.pt").exists(), **overrides)
                train_s = time.time() - t
                return {**score(plate, sites, embed(plate, sites, run, "gandl", options), args.repeats),
                        **last_metrics(run), "train_s": train_s}

            run_one(f"{v}/{screen}", results, results_path, trained)

    table, means = tables(results, screens, variants)
    base = means.get("default", {})
    ranked = sorted((v for v in variants if v in means),
                    key=lambda v: means[v]["acc_mean"] + means[v]["spearman"], reverse=True)
    legend = "\n".join(f"* `{v}`: {VARIANTS[v][2]}" for v in variants)
    note = (f"Each cell: C+/C- accuracy (%) / dose Spearman ({args.repeats} well-grouped splits, "
            f"{args.sites_per_well} site(s) per well embedded). Training: {args.kimg:g} kimg per run "
            + (f"(`long`: {2 * args.kimg:g}) " if "long" in variants else "")
            + f"on one CPU thread; 1-NN, KID, diversity: the run's last "
            f"`metrics.csv` row, averaged over the screens.\n\n"
            f"{legend}\n\nRanked by mean accuracy + mean Spearman: {', '.join(ranked)}.")
    print(table)
    print(note)
    if not args.no_report and base:
        from _report import write_section

        write_section("gan_ablation", "GAN-DL training choices on the benchmark suite",
                      note + "\n\n" + table + "\n")
        write_gan_md(table, note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
