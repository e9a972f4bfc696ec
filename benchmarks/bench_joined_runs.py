"""Do two training seeds read together rank compounds better than one run?

``gandl embed --checkpoint A --checkpoint B`` puts each site's features from two runs side by side
(512 + 512). For every screen of the suite, bench_suite's 16-kimg runs at seeds 0 and 1 are read
together, for the default training (tags ``16kimg``, ``16kimg-seed1``) and for code recovery
(``16kimg-info``, ``16kimg-info-seed1``, trained with ``--info 10``; ``16kimg-info30``,
``16kimg-info30-seed1`` with ``--info 30``), through ``gandl embed``'s own
path, and scored exactly as the suite scores an embedding. They are judged against the two runs
alone (bench_suite's own scores; their mean is what one run gives on average), and against the
same networks untrained read together: the two seeds' initial weights, which every training here
starts from (same networks, same seeds). Reading two untrained networks also averages out their
randomness, so that is the fair baseline of a joined read-out, beside handcrafted features. The same
budget split in two is judged too: the default's 8-kimg runs at seeds 0 and 1 (``8kimg``,
``8kimg-seed1``) read together, against one 16-kimg run. And a third run: ``--info 10`` at seed 2
(``16kimg-info-seed2``) read with the first two, against those two, with the three seeds' untrained
networks read together as its baseline (reported once every screen has it).

    python benchmarks/bench_joined_runs.py [--screens texture,large-rare] [--no-report]

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
from bench_suite import embed, log, paired_se, scored, suite_parser  # noqa: E402

#: training -> bench_suite's tags of its runs at seeds 0 and 1
TRAININGS = {"default": ("16kimg", "16kimg-seed1"), "--info 10": ("16kimg-info", "16kimg-info-seed1"),
             "--info 30": ("16kimg-info30", "16kimg-info30-seed1"), "default, 8 kimg": ("8kimg", "8kimg-seed1")}
PAIR_AGAINST_PAIR = ("--info 30", "--info 10")  # a joined read-out against the recommended one
SAME_BUDGET = ("default, 8 kimg", "default")  # two runs of half the budget, and one run of the whole
UNTRAINED = ("16kimg-untrained", "16kimg-seed1-untrained")  # every training here starts from these weights
#: three runs read together, against the pair of the same training (its first two), each with its untrained
#: networks read the same way (``--info 10`` starts from the default's initial D at the same seed)
THREE = {"runs": ("16kimg-info", "16kimg-info-seed1", "16kimg-info-seed2"),
         "untrained": (*UNTRAINED, "16kimg-info-seed2-untrained"), "training": "--info 10"}


def joined_embedding(folder: Path, tags: tuple[str, ...]) -> Path:
    """The embedding of the runs ``gandl-TAG`` of ``tags`` read together, computed once."""
    return embed(folder / "plate", "gandl", [folder / f"gandl-{t}" for t in tags],
                 folder / f"emb-gandl-joined-{'+'.join(tags)}.parquet")


def joined(folder: Path, tags: tuple[str, ...], splits: int) -> dict:
    """The scores of the runs ``gandl-TAG`` of ``tags`` read together, embedded and scored once."""
    return scored(joined_embedding(folder, tags), folder / "plate", splits)


def alone(folder: Path, tag: str, splits: int) -> dict:
    return scored(folder / f"emb-gandl-{tag}.parquet", folder / "plate", splits)


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    res = {}  # screen -> {"hand", "untrained": {"joined", "seeds"}, training: {"joined", "seeds"}}
    for screen in screens:
        folder = args.cache / screen
        res[screen] = {"hand": scored(folder / "emb-handcrafted.parquet", folder / "plate", args.splits)}
        for name, tags in (("untrained", UNTRAINED), *TRAININGS.items()):
            res[screen][name] = {"joined": joined(folder, tags, args.splits),
                                 "seeds": [alone(folder, t, args.splits) for t in tags]}
        if all((folder / f"gandl-{t}" / "checkpoint.pt").is_file() for t in THREE["runs"] + THREE["untrained"]):
            res[screen]["three"] = {k: joined(folder, THREE[k], args.splits) for k in ("runs", "untrained")}
        log(f"{screen}: " + "; ".join(
            f"{n} joined Spearman {r['joined']['spearman']:.3f} AP {r['joined']['rank_ap']:.3f}, alone "
            + " / ".join(f"{s['spearman']:.3f} {s['rank_ap']:.3f}" for s in r["seeds"])
            for n, r in res[screen].items() if n not in ("hand", "three"))
            + "".join(f"; three {k} Spearman {r['spearman']:.3f} AP {r['rank_ap']:.3f}"
                      for k, r in res[screen].get("three", {}).items()))

    def one_run(screen, name, key):  # what one run gives on average: the mean of the two seeds
        return float(np.mean([s[key] for s in res[screen][name]["seeds"]]))

    def value(screen, name, key, read):  # read "one" (one run) or "joined" (two seeds together)
        return res[screen][name]["joined"][key] if read == "joined" else one_run(screen, name, key)

    def best_baseline(screen, key, read):
        return max(value(screen, "untrained", key, read), res[screen]["hand"][key])

    def trails(screen, name, read):
        """Screens (or, alone, the mean over seeds of screen-seeds) where the training's GAN-DL is
        below the better baseline read the same way, on Spearman or ranking AP."""
        if read == "joined":
            g = res[screen][name]["joined"]
            return float(any(g[k] < best_baseline(screen, k, read) for k in ("spearman", "rank_ap")))
        return float(np.mean([any(s[k] < max(u[k], res[screen]["hand"][k]) for k in ("spearman", "rank_ap"))
                              for s, u in zip(res[screen][name]["seeds"], res[screen]["untrained"]["seeds"])]))

    def suite(name, key, read):
        values = [value(s, name, key, read) for s in screens]
        return float(np.sum(values)) if key.endswith("hits") else float(np.mean(values))

    lines = [
        "Every site embedded by bench_suite's runs at seeds 0 and 1 **read together** (`gandl embed "
        "--checkpoint SEED0_RUN --checkpoint SEED1_RUN`: 1,024 features, each run's 512 side by side), "
        "and scored as the suite scores an embedding. The runs: the default's, `--info 10`'s and `--info 30`'s 16-kimg runs "
        "(sections *16-kimg runs*), and the default's 8-kimg runs (`gandl train --kimg 8`; at seed 0 on the "
        "four screens at the scales of real screens, those of section *8-kimg runs*). **One run** is the mean of the two runs scored alone "
        "(bench_suite's own scores): what one run gives on average. The untrained rows read the two seeds' "
        "initial weights the same way; every training here starts from them. Suite means; hits summed (for one "
        "run, the mean of the two seeds' totals); \"trailing\" counts the screens where GAN-DL's Spearman or "
        "compound-ranking AP is below the better of handcrafted and the untrained networks read the same "
        "way (for one run, the mean over the two seeds).", "",
        "| training | read | C+/C- % | Spearman | ranking AP | copairs mAP | true / false hits | trailing |",
        "|---|---|---|---|---|---|---|---|"]
    for name in ("untrained", *TRAININGS):
        for read, label in (("one", "one run"), ("joined", "**two seeds together**")):
            hits = f"{suite(name, 'true_hits', read):g} / {suite(name, 'false_hits', read):g}"
            trail = "" if name == "untrained" else f"{sum(trails(s, name, read) for s in screens):g}"
            lines.append(f"| {name} | {label} | {100 * suite(name, 'acc', read):.1f} | "
                         + " | ".join(f"{suite(name, k, read):.3f}" for k in ("spearman", "rank_ap", "map"))
                         + f" | {hits} | {trail} |")
    hand = {k: float(np.mean([res[s]["hand"][k] for s in screens])) for k in ("acc", "spearman", "rank_ap", "map")}
    lines.append(f"| handcrafted | | {100 * hand['acc']:.1f} | {hand['spearman']:.3f} | {hand['rank_ap']:.3f} | "
                 f"{hand['map']:.3f} | {sum(res[s]['hand']['true_hits'] for s in screens)} / "
                 f"{sum(res[s]['hand']['false_hits'] for s in screens)} | |")
    lines += ["", "Two seeds together against one run, paired over the screens (mean difference ± its standard "
              "error), and the margin over the better of the two baselines read the same way:", ""]
    for name in ("untrained", *TRAININGS):
        parts = []
        for key, label in (("spearman", "Spearman"), ("rank_ap", "ranking AP")):
            d = np.array([res[s][name]["joined"][key] - one_run(s, name, key) for s in screens])
            parts.append(f"{label} {d.mean():+.3f} ± {paired_se(d):.3f}")
        if name != "untrained":
            for key, label in (("spearman", "Spearman"), ("rank_ap", "AP")):
                margin = {read: np.mean([value(s, name, key, read) - best_baseline(s, key, read) for s in screens])
                          for read in ("one", "joined")}
                parts.append(f"margin on {label} {margin['one']:+.3f} → {margin['joined']:+.3f}")
        lines.append(f"- {name}: " + "; ".join(parts) + ".")
    half, whole = SAME_BUDGET
    lines.append(f"- the same budget split in two: {half} read together against one run of {whole} (16 kimg): "
                 + "; ".join(f"{label} {d.mean():+.3f} ± {paired_se(d):.3f}" for label, d in (
                     (label, np.array([res[s][half]["joined"][key] - one_run(s, whole, key) for s in screens]))
                     for key, label in (("spearman", "Spearman"), ("rank_ap", "ranking AP"))))
                 + f"; true / false hits {suite(half, 'true_hits', 'joined'):g} / "
                   f"{suite(half, 'false_hits', 'joined'):g} against {suite(whole, 'true_hits', 'one'):g} / "
                   f"{suite(whole, 'false_hits', 'one'):g}.")
    new, old = PAIR_AGAINST_PAIR
    lines.append(f"- {new} read together against {old} read together: "
                 + "; ".join(f"{label} {d.mean():+.3f} ± {paired_se(d):.3f}" for label, d in (
                     (label, np.array([res[s][new]["joined"][key] - res[s][old]["joined"][key] for s in screens]))
                     for key, label in (("spearman", "Spearman"), ("rank_ap", "ranking AP"))))
                 + f"; true / false hits {suite(new, 'true_hits', 'joined'):g} / "
                   f"{suite(new, 'false_hits', 'joined'):g} against {suite(old, 'true_hits', 'joined'):g} / "
                   f"{suite(old, 'false_hits', 'joined'):g}.")
    lines += three_runs(res, screens)
    names = (*TRAININGS, "untrained")
    lines += ["", "Per screen, Spearman and compound-ranking AP: two seeds together (the seeds alone), for "
              + ", ".join(f"`{n}`" for n in names) + "; then handcrafted:", "",
              "| screen | " + " | ".join(f"`{n}` {k}" for k in ("Spearman", "AP") for n in names)
              + " | handcrafted Spearman, AP |", "|---" * (2 + 2 * len(names)) + "|"]
    for screen in screens:
        def cell(name, key, r=res[screen]):
            return f"{r[name]['joined'][key]:.3f} ({' / '.join(f'{s[key]:.3f}' for s in r[name]['seeds'])})"

        lines.append(f"| {screen} | " + " | ".join(cell(n, k) for k in ("spearman", "rank_ap")
                                                  for n in names)
                     + f" | {res[screen]['hand']['spearman']:.3f}, {res[screen]['hand']['rank_ap']:.3f} |")
    publish("joined_runs", "Two training seeds read together (bench_joined_runs.py)", "\n".join(lines),
            write=not args.no_report)
    return 0


def three_runs(res: dict, screens: list[str]) -> list[str]:
    """The lines on three runs read together against two (empty until every screen has the third run)."""
    if not all("three" in res[s] for s in screens):
        log("three runs: not every screen has its third run yet; not reported")
        return []
    pair, hand = THREE["training"], {s: res[s]["hand"] for s in screens}
    reads = {"two": {s: (res[s][pair]["joined"], res[s]["untrained"]["joined"]) for s in screens},
             "three": {s: (res[s]["three"]["runs"], res[s]["three"]["untrained"]) for s in screens}}

    def margin(read, s, key):  # over the better of handcrafted and the untrained networks read the same way
        gan, untrained = reads[read][s]
        return gan[key] - max(untrained[key], hand[s][key])

    def trailing(read):
        return sum(any(margin(read, s, k) < 0 for k in ("spearman", "rank_ap")) for s in screens)

    lines = ["", f"Three `{pair}` runs (seeds 0, 1 and 2) read together, against the first two read together; "
             "the untrained networks are read the same way (three against two):", "",
             "| read | C+/C- % | Spearman | ranking AP | copairs mAP | true / false hits | trailing | "
             "untrained: Spearman, AP |", "|---|---|---|---|---|---|---|---|"]
    for read in ("two", "three"):
        g = [reads[read][s][0] for s in screens]
        u = [reads[read][s][1] for s in screens]
        lines.append(f"| {read} runs | {100 * np.mean([x['acc'] for x in g]):.1f} | "
                     + " | ".join(f"{np.mean([x[k] for x in g]):.3f}" for k in ("spearman", "rank_ap", "map"))
                     + f" | {sum(x['true_hits'] for x in g)} / {sum(x['false_hits'] for x in g)} | {trailing(read)} | "
                     f"{np.mean([x['spearman'] for x in u]):.3f}, {np.mean([x['rank_ap'] for x in u]):.3f} |")
    parts = []
    for key, label in (("spearman", "Spearman"), ("rank_ap", "ranking AP")):
        d = np.array([reads["three"][s][0][key] - reads["two"][s][0][key] for s in screens])
        grow = [np.mean([margin(r, s, key) for s in screens]) for r in ("two", "three")]
        parts.append(f"{label} {d.mean():+.3f} ± {paired_se(d):.3f}, margin {grow[0]:+.3f} → {grow[1]:+.3f}")
    lines += ["", "- three against two, paired over the screens: " + "; ".join(parts) + "."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
