"""How much one training seed moves the suite's scores, and the training changes judged against that.

Reads what bench_suite left in its cache (nothing is trained):

1. The default run trained with ``--seed 0`` (tag ``16kimg``) and ``--seed 1`` (tag ``16kimg-seed1``) on
   every screen that has both: per screen, GAN-DL's and the untrained network's scores at each seed
   (the untrained network is the seed's initialisation, so it moves too). The spread of the
   per-screen differences gives the standard error of a suite-mean difference between two runs of
   one seed each -- what a comparison of two settings on the suite, one seed each, can resolve.
2. Each change tried on the suite (``--train-args`` tags with seed-0 runs on every screen
   of the default's) against the default: the suite-mean differences at seed 0, set beside that
   standard error, and, on the screens where both have a seed-1 run too, the two-seed means.

    python benchmarks/bench_seeds.py [--no-report]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import paired_se, suite_parser, trails_a_baseline  # noqa: E402

DEFAULT, DEFAULT_SEED1 = "16kimg", "16kimg-seed1"
#: the changes tried on the whole suite: tag of the seed-0 runs -> (seed-1 tag or None, what changed)
CHANGES = {
    "16kimg-contrast": ("16kimg-contrast-seed1", "`--contrastive 1`"),
    "16kimg-dema-short": (None, "D's weights averaged, short (bench_d_average.py)"),
    "16kimg-dema-tail": (None, "D's weights averaged, tail (bench_d_average.py)"),
    "16kimg-r1g05": ("16kimg-r1g05-seed1", "`--r1-gamma 0.5`"),
    "16kimg-lr1e3": ("16kimg-lr1e3-seed1", "`--g-lr 0.001 --d-lr 0.001`"),
    "16kimg-geom": ("16kimg-geom-seed1", "`--augment-gain 0 --augment-offset 0`"),
    "16kimg-o8": ("16kimg-seed1-o8", "`gandl embed --orientations 8` (bench_orientations.py)"),
    "32kimg": ("32kimg-seed1", "32 kimg of training instead of 16 (each run going on from its 16-kimg run)"),
}
KEYS = (("acc", "C+/C- %", 100.0), ("spearman", "Spearman", 1.0), ("rank_ap", "rank AP", 1.0),
        ("map", "mAP", 1.0))


def results(cache: Path, tag: str) -> dict[str, dict]:
    """screen -> the method scores of bench_suite's ``results-<tag>.json``."""
    return {p.parent.name: json.loads(p.read_text())["results"] for p in sorted(cache.glob(f"*/results-{tag}.json"))}


def fmt(v: float, scale: float, sign: bool = False) -> str:
    return f"{v * scale:{'+' if sign else ''}.{1 if scale == 100 else 3}f}"


def seed_table(seed0: dict, seed1: dict) -> tuple[list[str], dict]:
    """Per-screen scores at both seeds, and the standard error of a one-seed suite-mean difference."""
    screens = [s for s in seed0 if s in seed1]
    lines = ["| screen | features | " + " | ".join(f"{name} seed 0 / 1" for _, name, _ in KEYS)
             + " | true / false hits seed 0 · 1 | trails a baseline seed 0 / 1 |",
             "|---|---|" + "---|" * (len(KEYS) + 2)]
    for method in ("GAN-DL", "untrained"):
        for s in screens:
            a, b = seed0[s][method], seed1[s][method]
            trail = " / ".join("yes" if trails_a_baseline(r[s]) else "no" for r in (seed0, seed1)) \
                if method == "GAN-DL" else ""
            lines.append(f"| {s} | {method} | " + " | ".join(f"{fmt(a[k], x)} / {fmt(b[k], x)}" for k, _, x in KEYS)
                         + f" | {a['true_hits']}/{a['false_hits']} · {b['true_hits']}/{b['false_hits']} | {trail} |")
        means = {k: (np.mean([seed0[s][method][k] for s in screens]), np.mean([seed1[s][method][k] for s in screens]))
                 for k, _, _ in KEYS}
        lines.append(f"| **mean** | {method} | " + " | ".join(f"**{fmt(means[k][0], x)} / {fmt(means[k][1], x)}**"
                                                            for k, _, x in KEYS) + " | | |")
    diffs = {k: np.array([seed1[s]["GAN-DL"][k] - seed0[s]["GAN-DL"][k] for s in screens]) for k, _, _ in KEYS}
    spread = {k: (d.mean(), paired_se(d), np.abs(d).max()) for k, d in diffs.items()}
    noise = {"screens": screens, "GAN-DL": spread}
    noise["trailing"] = tuple(sum(trails_a_baseline(r[s]) for s in screens) for r in (seed0, seed1))
    return lines, noise


def tally(runs: tuple[dict, ...], screens: list[str]) -> tuple[int, int, int]:
    """GAN-DL's true hits, false hits and screens trailing a baseline, summed over ``runs`` (one
    ``results()`` per seed) and ``screens``."""
    rows = [r[s] for r in runs for s in screens]
    return (sum(row["GAN-DL"]["true_hits"] for row in rows), sum(row["GAN-DL"]["false_hits"] for row in rows),
            sum(trails_a_baseline(row) for row in rows))


def changes_table(cache: Path, seed0: dict, seed1: dict, se: dict) -> list[str]:
    lines = ["| change | screens | " + " | ".join(f"{name} change" for _, name, _ in KEYS)
             + " | true / false hits | screens trailing a baseline |", "|---|---|" + "---|" * (len(KEYS) + 2)]
    two_seed = []
    for tag, (tag1, what) in CHANGES.items():
        runs, runs1 = results(cache, tag), results(cache, tag1) if tag1 else {}
        screens = [s for s in seed0 if s in runs]
        if len(screens) < len(seed0):
            continue
        d = {k: np.mean([runs[s]["GAN-DL"][k] - seed0[s]["GAN-DL"][k] for s in screens]) for k, _, _ in KEYS}
        change, default = tally((runs,), screens), tally((seed0,), screens)
        lines.append(f"| {what} | {len(screens)} | " + " | ".join(
            f"{fmt(d[k], x, True)} ({'beyond' if abs(d[k]) > 2 * se[k][1] else 'within'} 2 SE)" for k, _, x in KEYS)
            + f" | {change[0]}/{change[1]} against {default[0]}/{default[1]} | {change[2]} against {default[2]} |")
        both = [s for s in screens if s in runs1 and s in seed1]
        if both:
            def mean(first, second, k):  # GAN-DL's mean over both seeds and the screens in ``both``
                return np.mean([first[s]["GAN-DL"][k] + second[s]["GAN-DL"][k] for s in both]) / 2
            two_seed.append((what, both, {k: (mean(runs, runs1, k), mean(seed0, seed1, k)) for k, _, _ in KEYS},
                             (tally((runs, runs1), both), tally((seed0, seed1), both))))
    if two_seed:
        lines += ["", "Two-seed means (seeds 0 and 1) on the screens where both have a seed-1 run, "
                      "the change / the default:\n",
                  "| change | screens | " + " | ".join(name for _, name, _ in KEYS)
                  + " | true / false hits, both seeds | screens trailing a baseline, both seeds |",
                  "|---|---|" + "---|" * (len(KEYS) + 2)]
        for what, both, m, (change, default) in two_seed:
            screens = f"all {len(both)}" if len(both) == len(seed0) else ", ".join(both)
            lines.append(f"| {what} | {screens} | "
                         + " | ".join(f"{fmt(m[k][0], x)} / {fmt(m[k][1], x)}" for k, _, x in KEYS)
                         + f" | {change[0]}/{change[1]} against {default[0]}/{default[1]} | {change[2]} against {default[2]} |")
    return lines


def main(argv=None) -> int:
    ap = suite_parser(__doc__, screens=False)
    args = ap.parse_args(argv)
    seed0, seed1 = results(args.cache, DEFAULT), results(args.cache, DEFAULT_SEED1)
    rows, noise = seed_table(seed0, seed1)
    n = len(noise["screens"])
    se = noise["GAN-DL"]
    lines = [f"The default (`gandl train PLATE --kimg 16 --threads 1`, runs of bench_suite) trained with "
             f"`--seed 0` and `--seed 1` on {n} screens, scored as the suite is. The untrained network is "
             "each seed's initialisation. Handcrafted features do not depend on the seed.\n", *rows, "",
             f"**What one seed moves.** Seed 1 minus seed 0, GAN-DL, suite mean over the {n} screens "
             "(± the standard error of a difference of two one-seed suite means, from the spread of the "
             "per-screen differences; the largest per-screen difference in brackets): "
             + "; ".join(f"{name} {fmt(se[k][0], x, True)} ± {fmt(se[k][1], x)} ({fmt(se[k][2], x)})"
                         for k, name, x in KEYS)
             + f". Screens where GAN-DL trails a baseline on Spearman or AP: {noise['trailing'][0]} at seed 0, "
             f"{noise['trailing'][1]} at seed 1.\n",
             "**The changes tried on the suite, against the default** (seed 0, every screen; a change "
             "is *beyond 2 SE* when it exceeds twice the standard error above):\n",
             *changes_table(args.cache, seed0, seed1, se)]
    body = "\n".join(lines) + "\n"
    publish("seeds", "How much one training seed moves the suite (bench_seeds.py)", body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
