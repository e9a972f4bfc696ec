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
together, so the new draws are also read in pairs (seeds 2 and 3, 4 and 5) beside seeds 0 and 1. Where the
default was trained from a draw (seeds 0-3, bench_suite tags ``8kimg-info``, ``8kimg-info-seed1``, ``-seed2``,
``-seed3``), each pair of runs read together is scored against its own two draws untrained and handcrafted
features, as the suite's table scores seeds 0 + 1, and so are all four runs against all four draws.

With ``--frozen-generator`` it asks where what training adds comes from: the default's seed-0 run against
the same run trained with the generator left at its random draw (``gandl train --g-lr 1e-12``, bench_suite tag
``8kimg-info-frozen-g``: Adam moves a weight by about the learning rate per step), each against its draw; and,
where the seed-1 run was trained the same way (``8kimg-info-frozen-g-seed1``), the two frozen runs read together
against the default pair, as the suite's table scores it; and, where it was trained, the frozen seed-0 run without
code recovery (``8kimg-frozen-g-noinfo``, ``--g-lr 1e-12 --info 0``; the same draw), which asks whether D's
reading of the generator's codes or its scoring of real crops against any fakes carries the gain.

Its ``--d-init orthogonal`` mode (section ``untrained_draws_orthogonal``: six draws with each layer's filters
orthonormal against six Gaussian ones) was removed with the option it measured, which no run adopted; commit
``13858bb`` has both (check it out in a worktree to draw them again).

    python benchmarks/bench_suite.py --kimg 8 --tag 8kimg-info-seed2 --train-args="--seed 2" --methods GAN-DL \\
        --screens texture,... --no-report   # lanes; and --tag 8kimg-info-seed3 --train-args="--seed 3"
    python benchmarks/bench_untrained_draws.py --seeds 2,3,4,5 --screens texture,... --no-report   # lanes
    python benchmarks/bench_untrained_draws.py --seeds 2,3,4,5
    python benchmarks/bench_suite.py --kimg 8 --tag 8kimg-info-frozen-g --train-args="--g-lr 1e-12" \
        --methods GAN-DL --screens texture,... --no-report   # lanes; and -seed1 with "--seed 1 --g-lr 1e-12"
    python benchmarks/bench_untrained_draws.py --frozen-generator
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_heldout import summary  # noqa: E402
from bench_joined_runs import joined  # noqa: E402
from bench_suite import (cached_embedding, embed, log, paired_se, scored, suite_parser,  # noqa: E402
                         write_untrained)

#: seed -> the bench_suite tag of the default run trained from today's networks drawn at that seed (seeds 0 and 1
#: are the suite's default pair; their draws are TAG-untrained, the others' draw<seed>-untrained)
DEFAULT_RUNS = {0: "8kimg-info", 1: "8kimg-info-seed1", 2: "8kimg-info-seed2", 3: "8kimg-info-seed3"}
#: runs with a generator twice as wide: label -> tag (their draws are TAG-untrained)
WIDE_G = {"seed 0, wide G": "8kimg-g2", "seed 1, wide G": "8kimg-g2-seed1"}
#: seed -> the default's run at that seed trained with the generator left at its random draw (--g-lr 1e-12)
FROZEN_G = {0: "8kimg-info-frozen-g", 1: "8kimg-info-frozen-g-seed1"}
#: the same seed-0 run with the generator frozen and without code recovery (--g-lr 1e-12 --info 0): the same draw
FROZEN_G_NO_CODES = "8kimg-frozen-g-noinfo"
KEYS = ("acc", "spearman", "rank_ap")


def untrained_tag(seed: int) -> str:
    """The bench_suite tag of today's networks untrained at ``seed`` (a default run's for seeds 0 and 1)."""
    return f"{DEFAULT_RUNS[seed]}-untrained" if seed in (0, 1) else f"draw{seed}-untrained"


def draw_untrained(folder: Path, seed: int) -> Path:
    """Today's seed-0 run's networks and config at seed ``seed``'s initialisation."""
    run = folder / f"gandl-{untrained_tag(seed)}"
    write_untrained(folder / "plate", folder / "gandl-8kimg-info", run, seed)
    return run


def draw_embedding(folder: Path, seed: int) -> Path:
    """The screen embedded by one draw alone, computed once."""
    return embed(folder / "plate", "gandl", draw_untrained(folder, seed),
                 folder / f"emb-gandl-{untrained_tag(seed)}.parquet")


def together_embedding(folder: Path, tags: tuple[str, ...]) -> Path:
    """Runs or draws read together, as ``gandl embed`` reads several runs: its embedding is their columns side
    by side (checked bit-identical on ``medium``, draws 2 + 3), so it is put together from the cached ones
    instead of decoding the screen again."""
    import pandas as pd

    out = folder / f"emb-gandl-joined-{'+'.join(tags)}.parquet"
    if not out.is_file():
        first, *rest = (pd.read_parquet(folder / f"emb-gandl-{t}.parquet") for t in tags)
        blocks, width = [first], first.filter(regex=r"^f\d").shape[1]
        for tag, table in zip(tags[1:], rest):
            if not first["site_id"].equals(table["site_id"]):
                raise ValueError(f"{folder}: {tags[0]} and {tag} embedded different sites")
            features = table.filter(regex=r"^f\d")
            features.columns = [f"f{width + i:03d}" for i in range(features.shape[1])]
            blocks.append(features)
            width += features.shape[1]
        pd.concat(blocks, axis=1).to_parquet(out)
    return out


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


def trained_together(res: dict, hand: dict, screens: list[str], readings: list[str]) -> list[str]:
    """The default's runs read together, two (one pair of draws) or all of them, against the same draws untrained
    read together and handcrafted features: what the suite's table measures at seeds 0 + 1, at other draws."""
    lines = ["", "The default trained from draws read together (8-kimg `--info 10` runs, read together as `gandl "
             "embed` reads a split run: a pair is the default's 16-kimg budget, the four runs a 32-kimg one), "
             "against the same draws untrained read together and handcrafted features; margins over the better of "
             "the two per screen, then averaged (± the standard error over the screens):", "",
             "| draws | C+/C- % | Spearman | ranking AP | true / false hits | screens trailing a baseline "
             "| margin: Spearman | margin: ranking AP | over the draws untrained: Spearman, AP |",
             "|---|---|---|---|---|---|---|---|---|"]
    pair_margins = []  # (Spearman, AP) of each pair of draws
    for d in readings:
        summ = summary({s: {"GAN-DL": res[s][d]["GAN-DL"], "untrained": res[s][d]["untrained"],
                            "handcrafted": hand[s]} for s in screens})
        gan, own = summ["GAN-DL"], summ["untrained"]
        if d.count("+") == 1:
            pair_margins.append((summ["margin_spearman"][0], summ["margin_rank_ap"][0]))
        lines.append(f"| {d} | {100 * gan['acc']:.1f} | {gan['spearman']:.3f} | {gan['rank_ap']:.3f} | "
                     f"{summ['hits']['GAN-DL'][0]} / {summ['hits']['GAN-DL'][1]} | {len(summ['trailing'])} | "
                     + " | ".join(f"{summ['margin_' + k][0]:+.3f} ± {summ['margin_' + k][1]:.3f}"
                                  for k in ("spearman", "rank_ap"))
                     + f" | {gan['spearman'] - own['spearman']:+.3f}, {gan['rank_ap'] - own['rank_ap']:+.3f} |")
    if len(pair_margins) > 1:
        spearman, ap = np.mean(pair_margins, axis=0)
        lines += ["", f"Mean over the {len(pair_margins)} pairs of the margin over the better baseline: Spearman "
                  f"{spearman:+.3f}, ranking AP {ap:+.3f} (the target: +0.05 each)."]
    return lines


def final_losses(run: Path) -> dict:
    """The last 500 images' mean D loss, real and fake scores, and the augmentation probability at the end."""
    import pandas as pd

    losses = pd.read_csv(run / "losses.csv")
    last = losses[losses["kimg"] > losses["kimg"].max() - 0.5]
    return {"loss_D": last["loss_D"].mean(), "real": last["real_score"].mean(), "fake": last["fake_score"].mean(),
            "p": losses["augment_p"].iloc[-1]}


def frozen_generator(args, screens: list[str]) -> None:
    """What training adds to its draw, with the generator learning (the default's seed-0 run) and left at its
    random draw (the same run with --g-lr 1e-12), per screen and on average."""
    # a run's own embedding is written once it has trained its whole budget
    def trained(tag):
        return all(cached_embedding(args.cache, s, tag, "GAN-DL").is_file() for s in screens)

    runs = [("default", DEFAULT_RUNS[0], "the default's seed-0 run"),
            ("frozen", FROZEN_G[0], "the same run, generator frozen at its draw")]
    if trained(FROZEN_G_NO_CODES):
        runs.append(("frozen, no codes", FROZEN_G_NO_CODES, "generator frozen, no code recovery (`--info 0`)"))
    rows, ends, pairs, hand = {}, {who: [] for who, _, _ in runs}, {}, {}
    paired = trained(FROZEN_G[1])
    for screen in screens:
        folder = args.cache / screen
        plate = folder / "plate"
        rows[screen] = {"untrained": scored(draw_embedding(folder, 0), plate, args.splits)}
        for who, tag, _ in runs:
            rows[screen][who] = scored(cached_embedding(args.cache, screen, tag, "GAN-DL"), plate, args.splits)
            ends[who].append(final_losses(folder / f"gandl-{tag}"))
        if paired:
            hand[screen] = scored(cached_embedding(args.cache, screen, "", "handcrafted"), plate, args.splits)
            pairs[screen] = {who: joined(folder, tags, args.splits)
                             for who, tags in (("untrained", (untrained_tag(0), untrained_tag(1))),
                                               ("default", (DEFAULT_RUNS[0], DEFAULT_RUNS[1])),
                                               ("frozen", (FROZEN_G[0], FROZEN_G[1])))}
    read_outs = [("untrained", "the draw at seed 0, untrained")] + [(who, label) for who, _, label in runs]
    lines = [
        "What one 8-kimg `--info 10` run adds to the networks it starts from (seed 0's draw), with the generator "
        "learning (the default) and with it left at its random draw (`gandl train --g-lr 1e-12`: Adam moves a "
        "weight by about the learning rate per step, 5e-10 over the run). D trains the same way in both: real "
        "crops against the generator's images, R1, adaptive augmentation, code recovery. Each run alone, one CPU "
        f"thread, two lanes; suite means over {len(screens)} screens, hits summed; the gain is paired over the "
        "screens (± standard error). At the end of training (last 0.5 kimg, mean over the screens): D's loss, its "
        "mean score of real and of generated crops, and the augmentation probability."
        + (" The last run is the frozen one again without code recovery (`--info 0`; the same draw), so its D is "
           "taught by nothing but scoring real crops against the random generator's." if len(runs) > 2 else ""), "",
        "| read-out | C+/C- % | Spearman | ranking AP | true / false hits | gain over the draw: Spearman | "
        "ranking AP | D loss | real / fake score | augmentation p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for who, label in read_outs:
        mean = {k: np.mean([rows[s][who][k] for s in screens]) for k in KEYS}
        hits = [sum(rows[s][who][h] for s in screens) for h in ("true_hits", "false_hits")]
        row = (f"| {label} | {100 * mean['acc']:.1f} | {mean['spearman']:.3f} | {mean['rank_ap']:.3f} | "
               f"{hits[0]} / {hits[1]} |")
        if who == "untrained":
            lines.append(row + " | | | | |")
            continue
        for k in ("spearman", "rank_ap"):
            gain = np.array([rows[s][who][k] - rows[s]["untrained"][k] for s in screens])
            row += f" {gain.mean():+.3f} ± {paired_se(gain):.3f} |"
        end = {k: np.mean([e[k] for e in ends[who]]) for k in ends[who][0]}
        lines.append(row + f" {end['loss_D']:.3f} | {end['real']:+.2f} / {end['fake']:+.2f} | {end['p']:.2f} |")
    if paired:
        lines += ["", "Seeds 0 and 1 trained each way and read together (the default's 16-kimg budget), against the "
                  "same two draws untrained read together and handcrafted features, as the suite's table scores the "
                  "default; the last column is the frozen pair less the default pair, paired over the screens:", "",
                  "| pair | C+/C- % | Spearman | ranking AP | true / false hits | screens trailing a baseline | "
                  "margin: Spearman | margin: ranking AP | less the default pair: Spearman, AP |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for who, label in (("default", "the default (seeds 0 + 1)"), ("frozen", "generator frozen (seeds 0 + 1)")):
            summ = summary({s: {"GAN-DL": pairs[s][who], "untrained": pairs[s]["untrained"], "handcrafted": hand[s]}
                            for s in screens})
            gan = summ["GAN-DL"]
            diff = ""
            if who == "frozen":
                diff = ", ".join(f"{d.mean():+.3f} ± {paired_se(d):.3f}" for d in (
                    np.array([pairs[s]["frozen"][k] - pairs[s]["default"][k] for s in screens])
                    for k in ("spearman", "rank_ap")))
            lines.append(f"| {label} | {100 * gan['acc']:.1f} | {gan['spearman']:.3f} | {gan['rank_ap']:.3f} | "
                         f"{summ['hits']['GAN-DL'][0]} / {summ['hits']['GAN-DL'][1]} | {len(summ['trailing'])} | "
                         + " | ".join(f"{summ['margin_' + k][0]:+.3f} ± {summ['margin_' + k][1]:.3f}"
                                      for k in ("spearman", "rank_ap")) + f" | {diff} |")
    lines += ["", "Per screen, Spearman / ranking AP:", "", "| screen | " + " | ".join(label for _, label in read_outs)
              + " |", "|---|" + "---|" * len(read_outs)]
    for s in screens:
        lines.append(f"| {s} | " + " | ".join(f"{rows[s][who]['spearman']:.3f} / {rows[s][who]['rank_ap']:.3f}"
                                              for who, _ in read_outs) + " |")
    publish("untrained_draws_frozen_g", "What training adds with the generator frozen at its draw "
            "(bench_untrained_draws.py --frozen-generator)", "\n".join(lines), write=not args.no_report)


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("--seeds", default="2,3,4,5", help="seeds to draw beyond the default runs' 0 and 1")
    ap.add_argument("--frozen-generator", action="store_true",
                    help="what training adds with the generator learning and frozen at its draw (seed 0)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    if args.frozen_generator:
        frozen_generator(args, screens)
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    res = {}  # screen -> draw label -> {"untrained": scores, "GAN-DL": the trained run's scores, where there is one}
    hand = {}  # screen -> handcrafted features' scores
    for screen in screens:
        folder = args.cache / screen
        plate = folder / "plate"
        hand[screen] = scored(cached_embedding(args.cache, screen, "", "handcrafted"), plate, args.splits)
        res[screen] = {}
        for seed in [0, 1] + seeds:
            row = res[screen][f"seed {seed}"] = {"untrained": scored(draw_embedding(folder, seed), plate, args.splits)}
            if seed in DEFAULT_RUNS and (trained := cached_embedding(args.cache, screen, DEFAULT_RUNS[seed],
                                                                     "GAN-DL")).is_file():
                row["GAN-DL"] = scored(trained, plate, args.splits)
        for label, tag in WIDE_G.items():
            if (folder / f"gandl-{tag}-untrained" / "checkpoint.pt").is_file():
                res[screen][label] = {who: scored(cached_embedding(args.cache, screen, tag, who), plate, args.splits)
                                      for who in ("untrained", "GAN-DL")}
        for pair in [(0, 1)] + list(zip(seeds[::2], seeds[1::2])):
            row = res[screen][f"seeds {pair[0]} + {pair[1]}"] = {
                "untrained": joined(folder, tuple(untrained_tag(k) for k in pair), args.splits)}
            if all(f"seed {k}" in res[screen] and "GAN-DL" in res[screen][f"seed {k}"] for k in pair):
                row["GAN-DL"] = joined(folder, tuple(DEFAULT_RUNS[k] for k in pair), args.splits)
        if all("GAN-DL" in res[screen].get(f"seed {k}", {}) for k in DEFAULT_RUNS):  # every default run together
            res[screen]["seeds " + " + ".join(map(str, DEFAULT_RUNS))] = {
                who: scored(together_embedding(folder, tuple(tag(k) for k in DEFAULT_RUNS)), plate, args.splits)
                for who, tag in (("untrained", untrained_tag), ("GAN-DL", DEFAULT_RUNS.get))}
        log(f"{screen}: " + "; ".join(f"{d} {r['untrained']['spearman']:.3f}" for d, r in res[screen].items()))
    draws = [d for d in res[screens[0]] if all(d in res[s] for s in screens) and "+" not in d]
    pairs = [d for d in res[screens[0]] if all(d in res[s] for s in screens) and "+" in d]
    table = {k: np.array([[res[s][d]["untrained"][k] for s in screens] for d in draws]) for k in KEYS}
    lines = [
        "GAN-DL's networks untrained, one draw at a time, each draw embedding every suite screen alone "
        "(`gandl embed --checkpoint UNTRAINED`, one CPU thread). The draws at seeds 0 and 1 are the initial "
        "networks of the default runs (the suite's untrained baseline reads these two together); those at "
        f"seeds {', '.join(map(str, seeds))} are the same networks (each screen's seed-0 config) drawn at "
        "another seed; the *wide G* draws are the initial networks of runs with a generator twice as wide, whose "
        "D has the same architecture but another random draw, because G is drawn first. A trained run starts "
        "from its draw; where there is one (the default's 8-kimg `--info 10` run at that seed), its scores alone "
        "are given too. Suite means over "
        f"{len(screens)} screens; hits summed.", "",
        "| draw | C+/C- % | Spearman | ranking AP | true / false hits | trained run: Spearman | ranking AP "
        "| its margin over its draw: Spearman, AP |", "|---|---|---|---|---|---|---|---|"]
    for i, d in enumerate(draws):
        hits = [sum(res[s][d]["untrained"][h] for s in screens) for h in ("true_hits", "false_hits")]
        row = (f"| {d} | {100 * table['acc'][i].mean():.1f} | {table['spearman'][i].mean():.3f} | "
               f"{table['rank_ap'][i].mean():.3f} | {hits[0]} / {hits[1]} |")
        if all("GAN-DL" in res[s][d] for s in screens):
            trained = {k: np.mean([res[s][d]["GAN-DL"][k] for s in screens]) for k in ("spearman", "rank_ap")}
            row += (f" {trained['spearman']:.3f} | {trained['rank_ap']:.3f} | "
                    f"{trained['spearman'] - table['spearman'][i].mean():+.3f}, "
                    f"{trained['rank_ap'] - table['rank_ap'][i].mean():+.3f} |")
        else:
            row += " | | |"
        lines.append(row)
    lines += ["", "Draws read together, as the suite's untrained baseline reads seeds 0 and 1:", "",
              "| draws | C+/C- % | Spearman | ranking AP | true / false hits |", "|---|---|---|---|---|"]
    for d in pairs:
        mean = {k: np.mean([res[s][d]["untrained"][k] for s in screens]) for k in KEYS}
        hits = [sum(res[s][d]["untrained"][h] for s in screens) for h in ("true_hits", "false_hits")]
        lines.append(f"| {d} | {100 * mean['acc']:.1f} | {mean['spearman']:.3f} | {mean['rank_ap']:.3f} | "
                     f"{hits[0]} / {hits[1]} |")
    lines += trained_together(res, hand, screens, [d for d in pairs if all("GAN-DL" in res[s][d] for s in screens)])
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
