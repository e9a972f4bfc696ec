"""`gandl compare` on the synthetic benchmark suite: Table 1 per screen, and sites/s per method.

For each screen of the suite (docs/synthetic.md; written once under
/work/bench-cache/suite/SCREEN/plate, or --cache), every method that needs no
weights file is trained on the screen for --minutes (the same budget each)
and embeds all its sites; the control tasks are scored under well-grouped and
leave-one-plate-out splits.  Work is kept in CACHE/compare-M/SCREEN/ and
resumes, so a screen cut off by a time limit continues on the next run.  The
section of docs/benchmarks.md is rebuilt from every screen finished so far.

DenseNet-121 (--densenet) runs with *randomly initialised* weights: the
ImageNet file cannot be downloaded here, so its rows say nothing about
ImageNet features, only about cost and the architecture untrained.

    OMP_NUM_THREADS=1 python benchmarks/bench_compare.py --screens texture --minutes 1.5
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
TASKS = ("C+ vs C- (merged)", "C+ vs C- (HRCE)", "C+ vs C- (VERO)", "HRCE vs VERO")


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


def run_screen(cache: Path, screen: str, minutes: float, densenet: bool) -> dict:
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
    report = compare(screen_plate(cache, screen), out_folder(cache, minutes) / screen, methods=methods,
                     minutes=minutes, weights=weights, device="cpu", progress=progress)
    print(f"{screen}: {time.time() - t0:.0f} s", flush=True)
    return report


def out_folder(cache: Path, minutes: float) -> Path:
    return cache / "compare" / f"minutes-{minutes:g}"


def report_body(reports: dict[str, dict], minutes: float, densenet: dict | None) -> str:
    from napari_gandl.analysis.compare import accuracy_cell, map_cell

    methods = []
    for r in reports.values():
        methods += [m for m in r["methods"] if m not in methods]
    lines = [
        f"`gandl compare` on each screen of the synthetic suite (512 sites, 256 px, 2 plates), "
        f"run by `benchmarks/bench_compare.py --minutes {minutes:g}`. Every method that trains got "
        f"the same **{minutes:g} min of CPU training (1 torch thread)** on the screen -- far shorter "
        "than GAN-DL's quick preset (10 min) or any real run, so the figures compare methods at an "
        "equal, small budget, not at convergence. Linear SVM on centre-scaled features, accuracy % "
        "mean ± sd (10 well-grouped 75/25 splits; leave-one-plate-out: sd over the two held-out "
        "plates). `gandl-untrained` is GAN-DL's discriminator before training (the control); "
        "`handcrafted` the 15 intensity/texture features per stain. At this budget GAN-DL has "
        "seen under 1 kimg, so `gandl` and `gandl-untrained` are close: the table shows what the "
        "architecture and its readout give, not what GAN training adds (see the GAN-DL quality "
        "benchmark for that). ConvAE (256-d bottleneck) and SimCLR (pooled encoder) trail both on "
        "C+ vs C-; they tell the cell types apart.",
    ]
    if any(m.startswith("densenet") for m in methods):
        lines.append("\n**DenseNet-121 ran with randomly initialised weights** (no ImageNet file can be "
                     "downloaded here): its columns measure the untrained architecture and its cost, "
                     "not ImageNet features.")
    for key, title in (("tasks", "Well-grouped splits"), ("tasks_lopo", "Leave-one-plate-out")):
        lines += ["", f"**{title}**", "", "| screen | task | " + " | ".join(methods) + " |",
                  "|---|---|" + "---|" * len(methods)]
        for screen, r in reports.items():
            for task in TASKS:
                cells = r["results"][key].get(task)
                if cells:
                    row = " | ".join(accuracy_cell(cells.get(m)) for m in methods)
                    lines.append(f"| {screen} | {task} | {row} |")
    if any(r.get("map") for r in reports.values()):
        lines += ["", "**copairs mAP of well profiles** (phenotypic activity of compound x dose groups "
                  "against C- wells: mean mAP, groups at q < 0.05 / groups)", "",
                  "| screen | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for screen, r in reports.items():
            cells = [map_cell(r.get("map", {}).get(m, {}).get("activity")) for m in methods]
            lines.append(f"| {screen} | " + " | ".join(cells) + " |")
    lines += ["", "**Embedding throughput** (sites/s, whole 256 px sites, CPU, 1 thread, on the "
              "shared 2-core machine under load from other jobs: rough; `gandl` and `gandl-untrained` are "
              "the same network, so their difference is the load) and training done in the budget (kimg)", "",
              "| screen | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for screen, r in reports.items():
        row = []
        for m in methods:
            st = r["methods"].get(m, {})
            sps = st.get("embedded", {}).get("sites_per_s")
            kimg = (st.get("trained") or {}).get("kimg")
            row.append(("–" if sps is None else f"{sps:.1f}") + ("" if not kimg else f" ({kimg:.1f} kimg)"))
        lines.append(f"| {screen} | " + " | ".join(row) + " |")
    if densenet:
        lines += ["", f"DenseNet-121 (random-init weights, same threads), timed on {densenet['sites']} sites "
                  f"of the {densenet['screen']} screen: collapsed {densenet['densenet-collapsed']:.2f} "
                  f"sites/s, concatenated {densenet['densenet-concat']:.2f} sites/s (not run over whole "
                  "screens: at 256 px it would take most of the CPU budget)."]
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
    ap.add_argument("--minutes", type=float, default=1.5, help="training budget per method and screen")
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
            run_screen(cache, screen, args.minutes, args.densenet)
        densenet_throughput(cache, screens[0], args.minutes)
    timed = out_folder(cache, args.minutes) / "densenet-throughput.json"
    densenet = json.loads(timed.read_text()) if timed.exists() else None
    reports = {}
    for screen in SUITE:
        path = out_folder(cache, args.minutes) / screen / "compare.json"
        if path.exists():
            reports[screen] = json.loads(path.read_text())
    if reports and not args.no_report:
        from _report import write_section

        print(write_section("compare", "Method comparison on the synthetic suite (gandl compare)",
                            report_body(reports, args.minutes, densenet)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
