"""Can a run whose generator blew up at the end be saved by going on, and with which R1 gamma?

``gandl train`` warns when a run ends with a KID far above its best (``divergence_note``). This
benchmark takes every 16-kimg suite run that bench_suite scored and that warns (bench_divergence's
rule; runs derived from others left out) and goes on from its final checkpoint for ``--more`` kimg
(default 8) twice, in copies of the run:

* ``<tag>-more``: ``gandl train --resume`` with the run's own settings;
* ``<tag>-more-r1g<G>``: ``gandl train --resume --r1-gamma G`` (default 0.5, 10x the ``quick`` preset's).

Each copy is embedded and scored by bench_suite (``run_screen``: GAN-DL and the untrained network,
which is the run's own: it is copied from the run's tag, going on changes no initial weight). The
report lists, per blown-up run, the KID ratio and scores at 16 kimg and after each way of going on,
beside the untrained network, the handcrafted features and the same screen's seed-0 run.

    python benchmarks/bench_recover.py [--more 8] [--r1-gamma 0.5] [--no-report] [--load "what else ran"]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import reuse_untrained, run_screen, suite_parser  # noqa: E402

KIMG = 16


def blown_up_runs(cache: Path, r1_gamma: float) -> list[tuple[str, str]]:
    """(screen, tag) of the scored 16-kimg runs, trained with another R1 gamma than ``r1_gamma``,
    whose metrics.csv draws the divergence warning."""
    from napari_gandl.gan.metrics import run_divergence_note

    found = []
    for results in sorted(cache.glob(f"*/results-{KIMG}kimg*.json")):
        tag = results.stem[len("results-"):]
        row = json.loads(results.read_text())
        if ("-dema" in tag or "-more" in tag or row.get("kimg") != KIMG
                or row["config"]["r1_gamma"] == r1_gamma):
            continue
        if run_divergence_note(results.parent / f"gandl-{tag}"):
            found.append((results.parent.name, tag))
    return found


def go_on(cache: Path, screen: str, tag: str, new_tag: str, more: float, train_args: tuple[str, ...]) -> dict:
    """Copy run ``tag`` of ``screen`` to ``new_tag`` (with its untrained network's scores), train it
    ``more`` kimg further and score it; bench_suite's result row."""
    folder = cache / screen
    if not (folder / f"gandl-{new_tag}").exists():
        shutil.copytree(folder / f"gandl-{tag}", folder / f"gandl-{new_tag}")
    reuse_untrained(folder, tag, new_tag)
    row = run_screen(screen, cache, 0.0, new_tag, 10, ("GAN-DL", "untrained"), train_args, KIMG + more)
    (folder / f"results-{new_tag}.json").write_text(json.dumps(row, indent=1, default=str))
    return row


def kid_summary(run: Path) -> tuple[float, float]:
    """(the run's last KID, its :func:`~napari_gandl.gan.metrics.kid_ratio`); NaNs without a metrics.csv."""
    from napari_gandl.gan.metrics import kid_ratio

    if not (run / "metrics.csv").is_file():
        return float("nan"), float("nan")
    history = pd.read_csv(run / "metrics.csv")
    return float(history["kid"].dropna().iloc[-1]), kid_ratio(history["kimg"], history["kid"])


def main(argv=None) -> int:
    ap = suite_parser(__doc__, screens=False)
    ap.add_argument("--more", type=float, default=8.0, help="kimg to go on for")
    ap.add_argument("--r1-gamma", type=float, default=0.5)
    ap.add_argument("--load", default="", help="what else ran on the machine (said in the report)")
    args = ap.parse_args(argv)
    from napari_gandl.gan.metrics import DIVERGED_KID_RATIO

    gamma_tag = "r1g" + f"{args.r1_gamma:g}".replace(".", "")
    ways = (("the run's own settings", "more", ()),
            (f"`--r1-gamma {args.r1_gamma:g}`", f"more-{gamma_tag}", ("--r1-gamma", f"{args.r1_gamma:g}")))
    lines = ["| screen | run | going on | kimg | last KID | last / lowest KID | warned | C+/C- % | Spearman "
             "| rank AP | true / false hits |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def line(screen, tag, how, row, run):
        g = row["results"]["GAN-DL"]
        last, ratio = kid_summary(run)
        warned = "yes" if ratio > DIVERGED_KID_RATIO else ""  # divergence_note's rule
        return (f"| {screen} | {tag} | {how} | {row['kimg']:.0f} | {last:,.0f} | {ratio:,.0f} | {warned} | "
                f"{100 * g['acc']:.1f} | {g['spearman']:.3f} | {g['rank_ap']:.3f} | "
                f"{g['true_hits']} / {g['false_hits']} |")

    for screen, tag in blown_up_runs(args.cache, args.r1_gamma):
        folder = args.cache / screen
        first = json.loads((folder / f"results-{tag}.json").read_text())
        lines.append(line(screen, tag, "(blown up at the end)", first, folder / f"gandl-{tag}"))
        for how, suffix, train_args in ways:
            new_tag = f"{tag}-{suffix}"
            row = go_on(args.cache, screen, tag, new_tag, args.more, train_args)
            lines.append(line(screen, tag, f"+{args.more:g} kimg, {how}", row, folder / f"gandl-{new_tag}"))
        for method, what in (("untrained", "the same network untrained"), ("handcrafted", "handcrafted features")):
            u = first["results"][method]
            lines.append(f"| {screen} | {tag} | {what} | – | | | | {100 * u['acc']:.1f} | "
                         f"{u['spearman']:.3f} | {u['rank_ap']:.3f} | {u['true_hits']} / {u['false_hits']} |")
        seed0 = tag.replace("-seed1", "")
        if seed0 != tag and (folder / f"results-{seed0}.json").is_file():
            ref = json.loads((folder / f"results-{seed0}.json").read_text())
            lines.append(line(screen, seed0, "(seed 0, for reference)", ref, folder / f"gandl-{seed0}"))
    body = (f"Every 16-kimg suite run that `gandl train` warns about (the last KID over 300 times the run's "
            f"lowest; bench_divergence.py), trained {args.more:g} kimg further from its final checkpoint in two "
            f"copies: with its own settings, and with `gandl train --resume --r1-gamma {args.r1_gamma:g}` (the "
            "`quick` preset's is 0.05). Each copy embedded and scored as the suite is (bench_suite.py), one CPU "
            "thread per run, two runs side by side; the budget is counted in images, so the load changed only "
            "the minutes taken." + (f" Also running: {args.load}." if args.load else "") + "\n\n"
            + "\n".join(lines) + "\n")
    publish("recover", "Going on from a run that blew up (bench_recover.py)", body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
