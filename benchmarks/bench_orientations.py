"""Does averaging each square over its eight orientations (``gandl embed --orientations 8``) read a
screen better than the squares as they are?

D's default read-out (``stats``) averages mid-level activations over positions: it does not
depend on where the cells sit, but it does depend on how they are turned, since D's filters are
not symmetric. With ``--orientations 8`` every training-resolution square also goes through D
turned by 90, 180 and 270 degrees and mirrored, and the square's features are the mean of the
eight (8 times D's work).

For every screen of the suite, bench_suite's 16-kimg runs at seeds 0 and 1 (``--tags``, by default
the default's runs ``16kimg,16kimg-seed1``; ``16kimg-info,16kimg-info-seed1`` reads the code-recovery
runs) and the same networks untrained are embedded with eight orientations and scored
exactly as the suite scores an embedding; the one-orientation scores, and handcrafted's, are
bench_suite's own. The untrained network is read with eight orientations too, so GAN-DL is judged
against the same network read the same way. Each screen's eight-orientation scores are also written as
``results-<tag>-o8.json``, which bench_seeds compares with the default.

    python benchmarks/bench_orientations.py [--tags TAG0,TAG1] [--screens texture,large-rare] [--no-report]
                                            [--timed texture]

Lanes: run it with ``--no-report`` on disjoint ``--screens`` side by side, then once without to
write the section from the cache.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import (  # noqa: E402
    NETWORK_SUFFIX, embed, embed_seconds, log, scored, suite_parser, trails_a_baseline,
)

DEFAULT_TAGS = "16kimg,16kimg-seed1"  # bench_suite's default runs at seeds 0 and 1
ORIENTATIONS = 8


def scores(cache: Path, screen: str, tag: str, network: str, orientations: int, splits: int) -> dict:
    """bench_suite's scores of one network's embedding read with 1 orientation (bench_suite's own
    embedding) or ``orientations``, embedded and scored once."""
    folder = cache / screen
    name = f"gandl-{tag}{NETWORK_SUFFIX[network]}"
    suffix = "" if orientations == 1 else f"-o{orientations}"
    path = embed(folder / "plate", "gandl", folder / name, folder / f"emb-{name}{suffix}.parquet",
                 orientations=orientations)
    return scored(path, folder / "plate", splits)


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("--timed", default="",
                    help="screens whose embedding by the seed-0 run is timed, 1 against 8 orientations (the "
                         "machine otherwise idle)")
    ap.add_argument("--tags", default=DEFAULT_TAGS,
                    help="bench_suite's tags of the runs at seeds 0 and 1 (default: %(default)s)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seed_of = dict(zip(args.tags.split(","), (0, 1), strict=True))  # tag -> training seed
    seed0_tag = next(iter(seed_of))
    screens = args.screens.split(",")
    runs = {}  # (screen, tag) -> {"one": {method: scores}, "eight": {method: scores}}
    for tag in seed_of:
        for screen in screens:
            hand = scored(args.cache / screen / "emb-handcrafted.parquet", args.cache / screen / "plate",
                          args.splits)
            runs[screen, tag] = {
                read: {**{n: scores(args.cache, screen, tag, n, o, args.splits) for n in NETWORK_SUFFIX},
                       "handcrafted": hand}
                for read, o in (("one", 1), ("eight", ORIENTATIONS))}
            # as bench_suite writes a tag's results, for bench_seeds' comparison with the default
            (args.cache / screen / f"results-{tag}-o{ORIENTATIONS}.json").write_text(
                json.dumps({"screen": screen, "results": runs[screen, tag]["eight"]}, indent=1))
            log(f"{screen} {tag}: " + "; ".join(
                f"{read} {n} Spearman {r[n]['spearman']:.3f} AP {r[n]['rank_ap']:.3f}"
                for read, r in runs[screen, tag].items() for n in NETWORK_SUFFIX))

    def mean(read, network, key, tags=seed_of):
        return float(np.mean([runs[s, t][read][network][key] for s in screens for t in tags]))

    def total(read, network, key, tags=seed_of):
        return sum(runs[s, t][read][network][key] for s in screens for t in tags)

    def trailing(read, tags=seed_of):
        return sum(trails_a_baseline(runs[s, t][read]) for s in screens for t in tags)

    def row(label, network, tags):
        def both(fmt):
            return " → ".join(fmt(read) for read in ("one", "eight"))

        cells = [both(lambda read: f"{mean(read, network, 'acc', tags) * 100:.1f}")]
        cells += [both(lambda read, k=k: f"{mean(read, network, k, tags):.3f}") for k in ("spearman", "rank_ap", "map")]
        cells.append(both(lambda read: f"{total(read, network, 'true_hits', tags)} / "
                                       f"{total(read, network, 'false_hits', tags)}"))
        cells.append(both(lambda read: str(trailing(read, tags))) if network == "GAN-DL" else "")
        return f"| {label} | {network} | " + " | ".join(cells) + " |"

    lines = [
        f"Every site embedded by bench_suite's 16-kimg runs {' and '.join(f'`{t}`' for t in seed_of)} (seeds 0 and 1) "
        "and by the same networks untrained, "
        "with the squares as they are (**1**, the default) and with each square's features averaged over its "
        "**8** orientations (`gandl embed --orientations 8`: turned by 0, 90, 180, 270 degrees, each also "
        "mirrored). Scored as the suite scores an embedding. Each cell reads 1 → 8 orientations; suite means, "
        "hits summed; \"trailing\" counts the screen-seeds where GAN-DL's Spearman or compound-ranking AP is "
        "below the untrained network's (read the same way) or handcrafted's.", "",
        "| seeds | network | C+/C- % | Spearman | ranking AP | copairs mAP | true / false hits | trailing |",
        "|---|---|---|---|---|---|---|---|"]
    for label, tags in [*((f"seed {seed}", (tag,)) for tag, seed in seed_of.items()), ("**both**", tuple(seed_of))]:
        lines += [row(label, network, tags) for network in NETWORK_SUFFIX]
    lines.append("")
    lines += ["Per screen, GAN-DL's Spearman and compound-ranking AP with 1 / 8 orientations (the untrained "
              "network's in brackets), and handcrafted's:", "",
              "| screen | seed | Spearman | ranking AP | true / false hits | handcrafted Spearman, AP |",
              "|---|---|---|---|---|---|"]
    for screen in screens:
        for tag, seed in seed_of.items():
            r = runs[screen, tag]

            def pair_of(key, r=r):
                return (f"{r['one']['GAN-DL'][key]:.3f} / {r['eight']['GAN-DL'][key]:.3f} "
                        f"({r['one']['untrained'][key]:.3f} / {r['eight']['untrained'][key]:.3f})")

            hits = " · ".join(f"{r[read]['GAN-DL']['true_hits']}/{r[read]['GAN-DL']['false_hits']}"
                              for read in ("one", "eight"))
            hand = r["one"]["handcrafted"]
            lines.append(f"| {screen} | {seed} | {pair_of('spearman')} | {pair_of('rank_ap')} | {hits} | "
                         f"{hand['spearman']:.3f}, {hand['rank_ap']:.3f} |")
    gains = {k: np.array([runs[s, t]["eight"]["GAN-DL"][k] - runs[s, t]["one"]["GAN-DL"][k]
                          for s in screens for t in seed_of]) for k in ("spearman", "rank_ap")}
    lines += ["", "GAN-DL, 8 against 1 orientation, over the "
              f"{len(screens) * len(seed_of)} screen-seeds: " + "; ".join(
                  f"{name} higher on {(g > 0).sum()}, lower on {(g < 0).sum()}, mean difference {g.mean():+.3f}"
                  for name, g in (("Spearman", gains["spearman"]), ("ranking AP", gains["rank_ap"])))
              + "."]
    timed = []
    load = [os.getloadavg()[0]]
    for screen in filter(None, args.timed.split(",")):
        plate_root, run = args.cache / screen / "plate", args.cache / screen / f"gandl-{seed0_tag}"
        one, eight = (embed_seconds(plate_root, run, "--orientations", str(o)) for o in (1, ORIENTATIONS))
        load.append(os.getloadavg()[0])
        timed.append(f"`{screen}` {eight:.0f} s against {one:.0f} s")
    if timed:
        lines += ["", "Time to embed a whole screen (`gandl embed --threads 1 --device cpu`, decoding included), 8 "
                  "orientations against 1: " + "; ".join(timed) + f". Load average (1 min) from start to end: "
                  f"{min(load):.1f}–{max(load):.1f} on 2 cores, nothing else running."]
    body = "\n".join(lines)
    default = args.tags == DEFAULT_TAGS
    publish("orientations" if default else f"orientations-{seed0_tag}",
            "Reading each square in all eight orientations (bench_orientations.py"
            + ("" if default else f" --tags {args.tags}") + ")", body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
