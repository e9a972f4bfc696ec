"""How much should the SVM behind `gandl analyse` be regularised?

Every number `gandl analyse` reports on a screen's compounds (the E2 on-axis score, the dose
curves, their rank and hits) comes from the normal of a linear SVM fitted on the standardised
control sites, and the C+/C- accuracy from the same SVM on held-out wells. A screen of the suite
has 64 C+ and 64 C- control sites; GAN-DL's embedding has 512 features and handcrafted 130. With
more features than sites the controls are separable, and at C = 1 the normal is close to the
hard-margin one, set by a few support vectors. A smaller C weighs every control site (as C -> 0 the
normal tends to the difference of the two class means in standardised space, which bench_ranking.py
measured with a shrinkage LDA; this fills in the C between).

For every screen of the suite, bench_suite's embeddings of a tag (GAN-DL, the same network
untrained, handcrafted) are scored exactly as the suite scores them, at each C of the grid; C = 1
is bench_suite's own score.

    python benchmarks/bench_svm_c.py [--tags 16kimg-crops,16kimg,16kimg-seed1] [--screens texture,medium] [--no-report]

Lanes: run it with ``--no-report`` on disjoint ``--screens`` side by side, then once without to
write the section from the cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import (  # noqa: E402
    NETWORK_SUFFIX, cached_embedding, log, paired_se, scored, suite_parser, trails_a_baseline,
)

GRID = (1.0, 0.1, 0.01, 0.001, 0.0001)
METHODS = (*NETWORK_SUFFIX, "handcrafted")
KEYS = (("spearman", "Spearman"), ("rank_ap", "ranking AP"))


def section(tag: str, screens: list[str], runs: dict) -> list[str]:
    """The tables of one tag: suite means at each C, then each C against C = 1 screen by screen."""
    def values(C, method, key):
        return np.array([runs[s, C][method][key] for s in screens], dtype=np.float64)

    lines = [f"**Embeddings `{tag}`** ({len(screens)} screens): suite means, hits summed; \"trailing\" counts the "
             "screens where GAN-DL's Spearman or ranking AP is below the untrained network's or handcrafted's.", "",
             "| C | method | C+/C- % | Spearman | ranking AP | true / false hits | trailing |",
             "|---|---|---|---|---|---|---|"]
    for C in GRID:
        for method in METHODS:
            hits = f"{int(values(C, method, 'true_hits').sum())} / {int(values(C, method, 'false_hits').sum())}"
            trailing = str(sum(trails_a_baseline(runs[s, C]) for s in screens)) if method == "GAN-DL" else ""
            lines.append(f"| {C:g} | {method} | {values(C, method, 'acc').mean() * 100:.1f} | "
                         f"{values(C, method, 'spearman').mean():.3f} | {values(C, method, 'rank_ap').mean():.3f} | "
                         f"{hits} | {trailing} |")
    lines += ["", "Against C = 1, screen by screen: the mean difference ± twice its standard error over the "
              f"{len(screens)} screens, and on how many screens it is higher / lower.", "",
              "| C | method | " + " | ".join(name for _, name in KEYS) + " |", "|---|---|" + "---|" * len(KEYS)]
    for C in GRID[1:]:
        for method in METHODS:
            cells = []
            for key, _ in KEYS:
                d = values(C, method, key) - values(1.0, method, key)
                cells.append(f"{d.mean():+.3f} ± {2 * paired_se(d):.3f} ({(d > 0).sum()} / {(d < 0).sum()})")
            lines.append(f"| {C:g} | {method} | " + " | ".join(cells) + " |")
    lines += ["", "Per screen, GAN-DL's Spearman / ranking AP at each C:", "",
              "| screen | " + " | ".join(f"C = {C:g}" for C in GRID) + " |", "|---|" + "---|" * len(GRID)]
    for s in screens:
        lines.append(f"| {s} | " + " | ".join(f"{runs[s, C]['GAN-DL']['spearman']:.2f} / "
                                              f"{runs[s, C]['GAN-DL']['rank_ap']:.2f}" for C in GRID) + " |")
    return lines + [""]


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("--tags", default="16kimg-crops,16kimg,16kimg-seed1",
                    help="bench_suite tags whose embeddings are scored")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    lines = ["Each embedding of bench_suite's runs (seed 0, or seed 1 where the tag says so) scored as the suite "
             "scores it, with the SVMs of "
             "`gandl analyse` (the C+/C- accuracy and the E2 axis behind every dose curve, rank and hit) at "
             "each regularisation C; C = 1 is the default. Nothing else changes (copairs mAP does not use the SVM, so it "
             "is left out).", ""]
    for tag in args.tags.split(","):
        runs = {}  # (screen, C) -> {method: scores}
        for screen in screens:
            plate_root = args.cache / screen / "plate"
            for C in GRID:
                runs[screen, C] = {m: scored(cached_embedding(args.cache, screen, tag, m), plate_root, args.splits, C)
                                   for m in METHODS}
            log(f"{screen} {tag}: GAN-DL Spearman / AP " + ", ".join(
                f"C {C:g} {runs[screen, C]['GAN-DL']['spearman']:.3f} / {runs[screen, C]['GAN-DL']['rank_ap']:.3f}"
                for C in GRID))
        lines += section(tag, screens, runs)
    body = "\n".join(lines)
    publish("svm_c", "How much the SVM of `gandl analyse` is regularised (bench_svm_c.py)",
            body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
