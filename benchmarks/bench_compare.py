"""`gandl compare` on the synthetic benchmark suite: every method at the same budget, and sites/s.

For each screen of the suite (docs/synthetic.md; written once under
/work/bench-cache/suite/SCREEN/plate, or --cache), every method that needs no
weights file -- GAN-DL, its untrained twin, handcrafted features, ConvAE,
SimCLR, DINO, the channel-agnostic MAE -- is trained on the screen for
--minutes (the same budget each, one torch thread) and embeds all its sites
and the RxRx1-like sample (6 stains, 4 cell types; stains mapped by name).
Each embedding is scored with the suite's columns (``bench_suite.score``:
``gandl analyse`` with the screen's ground truth): C+/C- accuracy under
well-grouped splits, and under leave-one-plate-out from ``gandl compare``;
dose-ranking Spearman; copairs mAP of the rescued doses against C-;
compound-ranking AP; and the zero-shot cell type of the RxRx1-like sample.
Work is kept in CACHE/compare/minutes-M/SCREEN/ and resumes, so a screen cut
off by a time limit continues on the next run.  The section of
docs/benchmarks.md for that budget is rebuilt from every screen finished so far.

DenseNet-121 (--densenet) runs with *randomly initialised* weights: the
ImageNet file cannot be downloaded here, so its rows say nothing about
ImageNet features, only about cost and the architecture untrained.

    OMP_NUM_THREADS=1 python benchmarks/bench_compare.py --screens texture,medium --minutes 2
    OMP_NUM_THREADS=1 python benchmarks/bench_compare.py --minutes 30     # the whole suite
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

CACHE = Path("/work/bench-cache")
MERGED = "C+ vs C- (merged)"


def random_densenet_weights(path: Path) -> Path:
    """A seeded, randomly initialised DenseNet-121 in torchvision's layout (no ImageNet file here)."""
    import torch

    from napari_gandl.comparators.densenet import DenseNet121

    if not path.exists():
        torch.manual_seed(0)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(DenseNet121().state_dict(), path)
    return path


def densenet_throughput(cache: Path, screen: str, minutes: float, n_sites: int = 16) -> dict:
    """Sites/s of both DenseNet modes on ``n_sites`` sites of one screen (random-init weights;
    measured once, then kept)."""
    from napari_gandl.embedding import embed_batch, load_embedder
    from napari_gandl.plate import open_plate

    path = out_folder(cache, minutes) / "densenet-throughput.json"
    if path.exists():
        return json.loads(path.read_text())
    plate = open_plate(screen_plate(cache, screen))
    weights = random_densenet_weights(cache / "compare" / "densenet121-random-init.pth")
    result = {"screen": screen, "sites": n_sites}
    for mode in ("collapsed", "concat"):
        embedder = load_embedder(f"densenet-{mode}", weights, plate, "cpu")
        embed_batch(plate, embedder, range(2))  # warm-up
        t0 = time.perf_counter()
        embed_batch(plate, embedder, range(n_sites))
        result[f"densenet-{mode}"] = n_sites / (time.perf_counter() - t0)
        print(f"densenet-{mode}: {result[f'densenet-{mode}']:.2f} sites/s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def screen_plate(cache: Path, screen: str) -> Path:
    from napari_gandl.synthetic import write_sample_plate

    root = cache / "suite" / screen / "plate"
    if not (root / "metadata.csv").exists():
        print(f"writing screen {screen} to {root} ...", flush=True)
        write_sample_plate(root, preset=screen, seed=0)
    return root


def zero_shot_sample(cache: Path) -> Path:
    """The RxRx1-like sample of bench_zero_shot.py (128 px tiles, 12 control wells per cell type)."""
    from napari_gandl.synthetic import write_rxrx1_sample

    root = cache / "compare" / "rxrx1-128px-12cw"
    if not (root / "metadata.csv").exists():
        write_rxrx1_sample(root, seed=0, tile_size=128, control_wells=12)
    return root


def run_screen(cache: Path, screen: str, minutes: float, densenet: bool, splits: int) -> dict:
    from bench_suite import score

    from napari_gandl.analysis.compare import compare, default_methods

    methods = default_methods()
    weights = None
    if densenet:
        weights = random_densenet_weights(cache / "compare" / "densenet121-random-init.pth")
        methods += ["densenet-collapsed", "densenet-concat"]
    last = {"t": 0.0}

    def progress(method, stage, fraction, message):
        if time.time() - last["t"] > 20 or fraction >= 1.0:
            last["t"] = time.time()
            print(f"  {screen} {method} {stage} {100 * fraction:.0f}% {message}", flush=True)

    t0 = time.time()
    folder = out_folder(cache, minutes) / screen
    plate_root = screen_plate(cache, screen)
    report = compare(plate_root, folder, methods=methods, minutes=minutes, weights=weights,
                     zero_shot=zero_shot_sample(cache), device="cpu", n_splits=splits, progress=progress)
    report["scores"] = {}
    for method in methods:  # the suite's columns, from the same embedding
        saved = folder / method / "bench_scores.json"
        if not saved.is_file():
            saved.write_text(json.dumps(score(folder / method / "embeddings.parquet", plate_root,
                                              folder / method / "report", splits), indent=1))
        report["scores"][method] = json.loads(saved.read_text())
    (folder / "bench_compare.json").write_text(json.dumps(report, indent=1))
    print(f"{screen}: {time.time() - t0:.0f} s", flush=True)
    return report


def out_folder(cache: Path, minutes: float) -> Path:
    return cache / "compare" / f"minutes-{minutes:g}"


COLUMNS = ("kimg", "C+/C- %", "C+/C- % (LOPO)", "Spearman", "copairs mAP", "ranking AP", "zero-shot cell type %",
           "sites/s")


def method_row(report: dict, method: str) -> dict:
    """One method's numbers on one screen, by column."""
    from napari_gandl.analysis.compare import ZERO_SHOT

    st, sc = report["methods"][method], report["scores"][method]
    lopo = report["results"]["tasks_lopo"].get(MERGED, {}).get(method)
    zs = report["results"]["tasks"].get(ZERO_SHOT, {}).get(method)
    return {"kimg": (st.get("trained") or {}).get("kimg"), "C+/C- %": 100 * sc["acc"],
            "C+/C- % (LOPO)": None if lopo is None else 100 * lopo["mean"], "Spearman": sc["spearman"],
            "copairs mAP": sc["map"], "ranking AP": sc["rank_ap"],
            "zero-shot cell type %": None if zs is None else 100 * zs["mean"],
            "sites/s": st.get("embedded", {}).get("sites_per_s")}


def _cell(column: str, value) -> str:
    if value is None or value != value:
        return "–"
    return f"{value:.1f}" if "%" in column or column in ("kimg", "sites/s") else f"{value:.3f}"


def report_body(reports: dict[str, dict], minutes: float, densenet: dict | None) -> str:
    methods = []
    for r in reports.values():
        methods += [m for m in r["methods"] if m not in methods]
    lines = [
        f"`gandl compare` on {len(reports)} screen{'s' if len(reports) > 1 else ''} of the synthetic suite "
        f"({', '.join(reports)}), run by `benchmarks/bench_compare.py --minutes {minutes:g}`. Every method that "
        f"trains got the same **{minutes:g} min of CPU training on one torch thread** on the screen, on the "
        "shared 2-core machine while other developers' tests and benchmarks ran. The columns are the suite's "
        "(`bench_suite.py`): C+/C- accuracy of a linear SVM on centre-scaled features (10 well-grouped 75/25 "
        "splits; LOPO: leave one plate out), dose-ranking Spearman (E2 on-axis well score against the true "
        "rescue), copairs mAP of the truly rescued doses against C-, compound-ranking AP (truly rescuing "
        "compounds first in `gandl analyse`'s ranking), and the cell type (4 classes) of the RxRx1-like "
        "sample (6 stains, 128 px; stains mapped by name, the model trained on the screen; its synthetic cell "
        "types differ in size, shape and density far more than RxRx1's, so this task is easier than the real "
        "one). `gandl-untrained` "
        "is GAN-DL's discriminator before training; `handcrafted` the 15 intensity/texture features per stain. "
        "kimg: thousand training images seen in the budget; sites/s: whole-site embedding throughput under that "
        "load (rough). One seed per cell: gaps of a point or two are within what one run varies.",
    ]
    if any(m.startswith("densenet") for m in methods):
        lines.append("\n**DenseNet-121 ran with randomly initialised weights** (no ImageNet file can be "
                     "downloaded here): its rows measure the untrained architecture and its cost, "
                     "not ImageNet features.")
    rows = {screen: {m: method_row(r, m) for m in r["methods"]} for screen, r in reports.items()}
    for screen, by_method in rows.items():
        lines += ["", f"**{screen}**", "", "| method | " + " | ".join(COLUMNS) + " |",
                  "|---|" + "---:|" * len(COLUMNS)]
        lines += [f"| {m} | " + " | ".join(_cell(c, v[c]) for c in COLUMNS) + " |" for m, v in by_method.items()]
    if len(rows) > 1:
        lines += ["", f"**Mean over the {len(rows)} screens**", "",
                  "| method | " + " | ".join(COLUMNS[1:-1]) + " |", "|---|" + "---:|" * (len(COLUMNS) - 2)]
        for m in methods:
            cells = []
            for c in COLUMNS[1:-1]:
                values = [by_method[m][c] for by_method in rows.values() if m in by_method]
                known = [v for v in values if v is not None and v == v]
                cells.append(_cell(c, sum(known) / len(known) if len(known) == len(values) else None))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if densenet:
        lines += ["", f"DenseNet-121 (random-init weights, same threads), timed on {densenet['sites']} sites "
                  f"of the {densenet['screen']} screen: collapsed {densenet['densenet-collapsed']:.2f} "
                  f"sites/s, concatenated {densenet['densenet-concat']:.2f} sites/s."]
    skipped = {}  # what was not scored, and why (the reason without its per-plate details)
    for r in reports.values():
        for key, why in r["skipped"].items():
            skipped.setdefault(key.split(": ", 1)[1], why.split(": ", 1)[-1].split(" (")[0])
    if skipped:
        lines += ["", "Not scored: " + "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) + "."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--screens", help="comma-separated screens (default: the whole suite)")
    ap.add_argument("--minutes", type=float, default=2.0, help="training budget per method and screen")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--densenet", action="store_true",
                    help="also DenseNet-121 collapsed/concat (random-init weights; slow at 256 px)")
    ap.add_argument("--report-only", action="store_true", help="rebuild the docs section only")
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from napari_gandl.synthetic import SUITE

    cache = Path(args.cache)
    screens = args.screens.split(",") if args.screens else list(SUITE)
    if not args.report_only:
        for screen in screens:
            run_screen(cache, screen, args.minutes, args.densenet, args.splits)
        if args.densenet:
            densenet_throughput(cache, screens[0], args.minutes)
    timed = out_folder(cache, args.minutes) / "densenet-throughput.json"
    densenet = json.loads(timed.read_text()) if timed.exists() else None
    reports = {}
    for screen in SUITE:
        path = out_folder(cache, args.minutes) / screen / "bench_compare.json"
        if path.exists():
            reports[screen] = json.loads(path.read_text())
    if reports and not args.no_report:
        from _report import write_section

        print(write_section(f"compare_{args.minutes:g}min",
                            f"Every method at {args.minutes:g} min of CPU training (gandl compare, bench_compare.py)",
                            report_body(reports, args.minutes, densenet)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
