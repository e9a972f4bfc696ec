"""What more CPU training buys: the suite's metrics against GAN-DL's training time.

For each screen and each budget, ``gandl train PLATE --minutes M --threads 1`` (the default
preset, as a user runs it; ``bench_suite.py``'s runs and scoring, tagged ``<M>min``), then the
same scores as the suite (C+/C- accuracy, dose-ranking Spearman, compound-ranking AP, true and
false hits) beside the untrained network and the handcrafted features, which do not depend on
the budget. A budget is minutes of wall time on one thread, so each run must have the machine
to itself: the section records the load at the start and the end of every run.

    python benchmarks/bench_budget.py --screens medium --minutes 5,30[,120]

Runs are cached under ``--cache`` like the suite's, so a longer budget can be added later and the
table is rebuilt from every budget found there (``--minutes`` lists the budgets to show). After a
default changed, ``--variant NAME`` trains a second series (tags ``<M>min-NAME``) that the table
shows beside the first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import run_screen, suite_parser  # noqa: E402

COLUMNS = (("acc", "C+/C- %", 100.0), ("spearman", "Spearman", 1.0), ("rank_ap", "ranking AP", 1.0))


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def scores(r: dict) -> str:
    """One row's metric cells and its hits."""
    return (" | ".join(f"{r[k] * scale:.1f}" if scale == 100 else f"{r[k]:.3f}" for k, _, scale in COLUMNS)
            + f" | {r['true_hits']} / {r['false_hits']} of {r['rescuing_curves']}")


def curve(screen: str, gandl: list[tuple[float, float, dict]], baselines: dict) -> str:
    """One line per screen: what the longer budgets changed, beside the better baseline."""
    steps = " → ".join(f"{m:g} min ({k:.0f} kimg): Spearman {r['spearman']:.3f}, AP {r['rank_ap']:.3f}, "
                       f"{r['true_hits']} true hits" for m, k, r in gandl)
    best = max(baselines.values(), key=lambda r: r["spearman"])
    name = next(n for n, r in baselines.items() if r is best)
    return (f"- `{screen}`: {steps}; the better of the untrained network and handcrafted features on Spearman "
            f"({name}): {best['spearman']:.3f}, AP {best['rank_ap']:.3f}, {best['true_hits']} true hits.")


def budget_run(args, screen: str, minutes: float, variant: str) -> dict | None:
    """The cached scores of one run, trained and scored first when it is the series asked for (``--variant``)
    and ``--only-cached`` is not given; None when there is no such run."""
    tag = f"{minutes:g}min" + (f"-{variant}" if variant else "")
    saved = args.cache / screen / f"budget-{tag}.json"
    if not saved.is_file():
        if args.only_cached or variant != args.variant:
            return None
        start = load()
        row = run_screen(screen, args.cache, minutes, tag, args.splits, ("GAN-DL", "untrained", "handcrafted"))
        row["load"] = f"{start} / {load()}"
        row["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        saved.write_text(json.dumps(row, indent=1, default=str))
    return json.loads(saved.read_text())


def main(argv=None) -> int:
    ap = suite_parser(__doc__, screens="medium", splits=True)
    ap.add_argument("--minutes", default="5,30", help="training budgets, comma-separated")
    ap.add_argument("--variant", default="",
                    help="train runs under the tags <M>min-VARIANT, e.g. after a default changed; the table shows "
                         "the plain runs and every variant found in the cache")
    ap.add_argument("--only-cached", action="store_true",
                    help="train nothing: show the budgets already run, name the others as not run")
    args = ap.parse_args(argv)
    budgets = [float(m) for m in args.minutes.split(",")]
    lines = ["| screen | features | minutes | kimg | downsampling | " + " | ".join(name for _, name, _ in COLUMNS)
             + " | true / false hits | load at start / end |", "|---" * (len(COLUMNS) + 7) + "|"]
    curves, notes, missing = [], [], []
    for screen in args.screens.split(","):
        found = {f.stem.split("min-", 1)[1] for f in (args.cache / screen).glob("budget-*min-*.json")}
        for variant in sorted({"", args.variant, *found}, key=lambda v: (v != "", v)):  # the plain runs first
            label = f" ({variant})" if variant else ""
            baselines, gandl = None, []
            for minutes in budgets:
                row = budget_run(args, screen, minutes, variant)
                if row is None:
                    if variant == args.variant:  # the series asked for; other variants show what they have
                        missing.append(f"{screen} {minutes:g} min{label}")
                    continue
                if row.get("beside"):  # written by hand when something else ran during the run
                    notes.append(f"- {screen}, {minutes:g} min{label}: beside it ran {row['beside']}.")
                r = row["results"]["GAN-DL"]
                scale = f"{row['config']['data']['scale']}x"
                lines.append(f"| {screen} | GAN-DL | {minutes:g} | {row['kimg']:.1f} | {scale} | {scores(r)} | "
                             f"{row['load']} |")
                if baselines is None:  # the untrained network of the first budget, at that run's scale
                    baselines, baseline_scale = {m: row["results"][m] for m in ("untrained", "handcrafted")}, scale
                gandl.append((minutes, row["kimg"], r))
            for method, r in (baselines or {}).items():
                lines.append(f"| {screen} | {method} | – | – | {baseline_scale if method == 'untrained' else '–'} | "
                             f"{scores(r)} | |")
            if gandl:
                curves.append(curve(screen + label, gandl, baselines))
    body = ("`gandl train PLATE --minutes M --device cpu --threads 1` with the default preset, one run at a time "
            "with the machine to itself unless the list below the table says what else ran (1-minute load average "
            "at each run's start and end in the last column: the run's own thread is about 1), scored as the suite is (`bench_suite.py`: `gandl analyse` with "
            "plate centre-scaling; C+/C- on held-out wells, dose-ranking Spearman, compound-ranking AP by "
            "`gandl analyse`'s rank, hits at q < 0.05). The untrained network and the handcrafted features do not "
            "depend on the budget. Downsampling: what `--scale auto` chose when the run trained; the rule has "
            "changed since some of these runs (nuclei up to 33 px are now kept at full resolution, see the 16-kimg "
            "suite section), so a run downsampled 2x or 4x here is trained at full resolution today.\n\n"
            + "\n".join(lines) + "\n\n" + "\n".join(curves) + "\n")
    if notes:
        body += "\nWhat else ran during a run:\n" + "\n".join(notes) + "\n"
    if missing:
        body += f"\nNot run yet: {', '.join(missing)}.\n"
    publish("budget", "What more CPU training buys (bench_budget.py)", body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
