"""How much the random draw of GAN-DL's networks moves the untrained baseline, and whether a draw is good or
bad on every screen alike.

The untrained baseline of the suite is two draws: the initial networks of the default runs at seeds 0 and 1
(bench_suite tags ``8kimg-info-untrained``, ``8kimg-info-seed1-untrained``). A run at seed ``k`` always starts
from the same draw, whatever the screen, so the suite's per-screen differences are not independent of the
draw: a draw that is poor everywhere moves every screen's margin at once, and the paired standard error over
the screens does not see it. This benchmark draws the same networks untrained at more seeds (the default
config of each screen's seed-0 run, with only the seed changed), embeds and scores every screen with each
draw alone, and adds the draws of any runs trained with another generator width (``8kimg-g2*``: G is built
before D, so D's draw differs while D's architecture does not). It reports each draw's suite means, a
two-way analysis of variance (draw x screen) of the Spearman and the ranking AP, and, for the draws that
have a trained run, that run's own scores and its margin over its draw. The suite's baseline reads two draws
together, so the new draws are also read in pairs (seeds 2 and 3, 4 and 5) beside seeds 0 and 1.

    python benchmarks/bench_untrained_draws.py --seeds 2,3,4,5 --screens texture,... --no-report   # lanes
    python benchmarks/bench_untrained_draws.py --seeds 2,3,4,5
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_joined_runs import joined  # noqa: E402
from bench_suite import cached_embedding, embed, log, scored, suite_parser, write_untrained  # noqa: E402

#: draws with a trained run beside them: label -> the run's bench_suite tag (its untrained draw is TAG-untrained)
TRAINED = {"seed 0": "8kimg-info", "seed 1": "8kimg-info-seed1",
           "seed 0, wide G": "8kimg-g2", "seed 1, wide G": "8kimg-g2-seed1"}
KEYS = ("acc", "spearman", "rank_ap")


def draw_untrained(folder: Path, seed: int) -> Path:
    """Today's seed-0 run's networks and config, at seed ``seed``'s initialisation (``gandl-draw<seed>-untrained``)."""
    run = folder / f"gandl-draw{seed}-untrained"
    write_untrained(folder / "plate", folder / "gandl-8kimg-info", run, seed)
    return run


def untrained_tag(seed: int) -> str:
    """The bench_suite tag of today's networks untrained at ``seed``: a default run's for seeds 0 and 1."""
    return f"{TRAINED[f'seed {seed}']}-untrained" if f"seed {seed}" in TRAINED else f"draw{seed}-untrained"


def two_way_anova(table: np.ndarray) -> tuple[float, float, float]:
    """Draw x screen without replication (``table``: draws x screens): the draws' F statistic, its p-value,
    and the share of the variance left after the screens that the draws explain."""
    # written out (ten lines): scipy has no two-way analysis of variance, and statsmodels is not a dependency
    from scipy.stats import f

    grand = table.mean()
    d, s = table.shape
    ss_draw = s * ((table.mean(1) - grand) ** 2).sum()
    ss_screen = d * ((table.mean(0) - grand) ** 2).sum()
    ss_resid = ((table - grand) ** 2).sum() - ss_draw - ss_screen
    df_draw, df_resid = d - 1, (d - 1) * (s - 1)
    F = (ss_draw / df_draw) / (ss_resid / df_resid)
    return float(F), float(f.sf(F, df_draw, df_resid)), float(ss_draw / (ss_draw + ss_resid))


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("--seeds", default="2,3,4,5", help="seeds to draw beyond the default runs' 0 and 1")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    res = {}  # screen -> draw label -> {"untrained": scores, "trained": scores or absent}
    for screen in screens:
        folder = args.cache / screen
        plate = folder / "plate"
        res[screen] = {}
        for label, tag in TRAINED.items():
            if (folder / f"gandl-{tag}-untrained" / "checkpoint.pt").is_file():
                res[screen][label] = {who: scored(cached_embedding(args.cache, screen, tag, who), plate, args.splits)
                                      for who in ("untrained", "GAN-DL")}
        for seed in seeds:
            out = folder / f"emb-gandl-draw{seed}-untrained.parquet"
            embed(plate, "gandl", draw_untrained(folder, seed), out)
            res[screen][f"seed {seed}"] = {"untrained": scored(out, plate, args.splits)}
        for pair in [(0, 1)] + list(zip(seeds[::2], seeds[1::2])):
            tags = tuple(untrained_tag(k) for k in pair)
            res[screen][f"seeds {pair[0]} + {pair[1]}"] = {"untrained": joined(folder, tags, args.splits)}
        log(f"{screen}: " + "; ".join(f"{d} {r['untrained']['spearman']:.3f}" for d, r in res[screen].items()))
    draws = [d for d in res[screens[0]] if all(d in res[s] for s in screens) and "+" not in d]
    pairs = [d for d in res[screens[0]] if "+" in d]
    table = {k: np.array([[res[s][d]["untrained"][k] for s in screens] for d in draws]) for k in KEYS}
    lines = [
        "GAN-DL's networks untrained, one draw at a time, each draw embedding every suite screen alone "
        "(`gandl embed --checkpoint UNTRAINED`, one CPU thread). The draws at seeds 0 and 1 are the initial "
        "networks of the default runs (the suite's untrained baseline reads these two together); those at "
        f"seeds {', '.join(map(str, seeds))} are the same networks (each screen's seed-0 config) drawn at "
        "another seed; the *wide G* draws are the initial networks of runs with a generator twice as wide, whose "
        "D has the same architecture but another random draw, because G is drawn first. A trained run starts "
        "from its draw; where there is one, its scores alone are given too. Suite means over "
        f"{len(screens)} screens; hits summed.", "",
        "| draw | C+/C- % | Spearman | ranking AP | true / false hits | trained run: Spearman | ranking AP "
        "| its margin over its draw: Spearman, AP |", "|---|---|---|---|---|---|---|---|"]
    for i, d in enumerate(draws):
        hits = [sum(res[s][d]["untrained"][h] for s in screens) for h in ("true_hits", "false_hits")]
        row = (f"| {d} | {100 * table['acc'][i].mean():.1f} | {table['spearman'][i].mean():.3f} | "
               f"{table['rank_ap'][i].mean():.3f} | {hits[0]} / {hits[1]} |")
        if "GAN-DL" in res[screens[0]][d]:
            trained = {k: np.mean([res[s][d]["GAN-DL"][k] for s in screens]) for k in ("spearman", "rank_ap")}
            row += (f" {trained['spearman']:.3f} | {trained['rank_ap']:.3f} | "
                    f"{trained['spearman'] - table['spearman'][i].mean():+.3f}, "
                    f"{trained['rank_ap'] - table['rank_ap'][i].mean():+.3f} |")
        else:
            row += " | | |"
        lines.append(row)
    lines += ["", "Two draws read together, as the suite's untrained baseline reads seeds 0 and 1:", "",
              "| draws | C+/C- % | Spearman | ranking AP | true / false hits |", "|---|---|---|---|---|"]
    for d in pairs:
        mean = {k: np.mean([res[s][d]["untrained"][k] for s in screens]) for k in KEYS}
        hits = [sum(res[s][d]["untrained"][h] for s in screens) for h in ("true_hits", "false_hits")]
        lines.append(f"| {d} | {100 * mean['acc']:.1f} | {mean['spearman']:.3f} | {mean['rank_ap']:.3f} | "
                     f"{hits[0]} / {hits[1]} |")
    lines += ["", "Draw x screen analysis of variance (no replication; a draw effect means a draw is better or worse "
              "on every screen alike):", ""]
    for k, label in (("spearman", "Spearman"), ("rank_ap", "ranking AP")):
        F, p, share = two_way_anova(table[k])
        means = table[k].mean(1)
        lines.append(f"- {label}: the draws' suite means range {means.min():.3f} to {means.max():.3f} "
                     f"(sd {means.std(ddof=1):.3f}); F = {F:.2f}, p = {p:.2g}; the draws explain {100 * share:.0f} % "
                     "of the variance left after the screens.")
    lines += ["", "Per screen, Spearman / ranking AP of each draw:", "",
              "| screen | " + " | ".join(draws) + " |", "|---|" + "---|" * len(draws)]
    for j, s in enumerate(screens):
        lines.append(f"| {s} | " + " | ".join(f"{table['spearman'][i, j]:.3f} / {table['rank_ap'][i, j]:.3f}"
                                              for i in range(len(draws))) + " |")
    publish("untrained_draws", "How much the random draw of the untrained networks moves the suite "
            "(bench_untrained_draws.py)", "\n".join(lines), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
