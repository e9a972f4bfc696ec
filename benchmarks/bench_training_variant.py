"""Whether a change to training makes the default pair rank compounds better on the suite.

Each variant is the default with one change: two 8-kimg ``--info 10`` runs (seeds 0 and 1) read together,
against today's pair (bench_suite tags ``8kimg-info``, ``8kimg-info-seed1``), each against the same networks
untrained read together and handcrafted features (the stored ones). A rule written before the variant's
first run decides (bench_deep_taps' six lines). Suite screens only; the held-out screens are never used.

* ``mismatch``: stain-mismatch negatives (``--mismatch 1``: every D step also sees half a batch of real crops
  with one stain from another place of the same site, called fake). The term adds no parameters, so it
  shares today's untrained pair. The option was removed after this measurement; its runs were trained at
  commit ``8b00d1b``, which has it (check that commit out in a worktree to train them again).
* ``wide-generator``: G twice as wide (``--channel-base 1024``; D unchanged). G is built before D, so D's
  random draw differs from today's: the variant is judged against its own untrained pair.

Train in two lanes (each screen, seed 0 then seed 1), then score the cached runs and write the section:

    python benchmarks/bench_suite.py --kimg 8 --tag 8kimg-g2 --train-args="--channel-base 1024" \\
        --methods GAN-DL,untrained --screens ... --no-report
    # and --tag 8kimg-g2-seed1 --train-args="--channel-base 1024 --seed 1"
    python benchmarks/bench_training_variant.py wide-generator [--no-report]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_deep_taps import KEYS, PAIR, RULE, UNTRAINED, against_today, todays_scores  # noqa: E402
from bench_info_pair import final_metrics  # noqa: E402
from bench_joined_runs import joined  # noqa: E402
from bench_suite import log, suite_parser  # noqa: E402

TODAY = {"runs": PAIR, "untrained": UNTRAINED}

VARIANTS = {
    "mismatch": dict(
        runs=("8kimg-mm", "8kimg-mm-seed1"), untrained=UNTRAINED, name="mismatch",
        title="Stain-mismatch negatives for the discriminator",
        what="with **stain mismatch** (`--info 10 --mismatch 1`: half a batch of real crops with one stain from "
             "another place of the same site, called fake by D at the fakes' weight). Both against the same two "
             "networks untrained (the term adds no parameters, so they are today's)",
        trained="nothing else running beyond editing (today's runs also trained two side by side, one thread "
                "each); the budget is counted in images. The option was removed after this measurement (the runs "
                "were trained at commit `8b00d1b`, which has it)",
        rule="written before the option was implemented", if_not_met="the default trains without stain mismatch"),
    "wide-generator": dict(
        runs=("8kimg-g2", "8kimg-g2-seed1"), untrained=("8kimg-g2-untrained", "8kimg-g2-seed1-untrained"),
        name="wide G", title="A generator twice as wide",
        what="with a **generator twice as wide** (`--info 10 --channel-base 1024`: 16 channels at 64x64 up to "
             "256 at 4x4 instead of 8 to 128; D unchanged). Each against its own two networks untrained (G is "
             "built before D, so the variant's D starts from another random draw)",
        trained="the embedding of bench_untrained_draws.py beside them (one process at low priority from 08:16 UTC, "
                "two from 09:13 to 09:31) and editing (today's runs also trained two side by side, one thread each); "
                "the budget is counted in images",
        rule="written before any run was trained with the variant", if_not_met="G keeps today's width"),
}


def seconds_per_kimg(run: Path) -> float:
    """The run's training time over the thousands of images it saw (from its checkpoint)."""
    from napari_gandl.gan.checkpoint import load_checkpoint

    ck = load_checkpoint(run)
    return ck["elapsed_s"] / (ck["cur_nimg"] / 1000)


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("variant", choices=list(VARIANTS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    v = VARIANTS[args.variant]
    ways = {"today": TODAY, v["name"]: v}
    screens = args.screens.split(",")
    res, speed, end = {}, {w: [] for w in ways}, {w: [] for w in ways}
    for screen in screens:
        folder = args.cache / screen
        today = todays_scores(folder, args.splits)
        res[screen] = {"today": today, v["name"]: {
            **today, "pair": joined(folder, v["runs"], args.splits),
            "untrained": joined(folder, v["untrained"], args.splits)}}
        for way, tags in ways.items():
            speed[way] += [seconds_per_kimg(folder / f"gandl-{t}") for t in tags["runs"]]
            end[way] += [final_metrics(folder / f"gandl-{t}") for t in tags["runs"]]
        log(f"{screen}: " + "; ".join(f"{way} {r['pair']['spearman']:.3f} / {r['pair']['rank_ap']:.3f}"
                                      for way, r in res[screen].items()))
    median = {way: {k: np.median([m[k] for m in end[way]]) for k in ("kid", "nn1_accuracy")} for way in ways}
    intro = (
        "Two 8-kimg runs (seeds 0 and 1) read together, the way `gandl train` spends a budget with the `quick` "
        f"preset: today's (`--info 10`) and {v['what']}, read together, and handcrafted features. The variant's "
        f"runs trained one CPU thread each, two screens side by side, with {v['trained']}. Over the 24 runs, "
        "median training time per kimg, final KID and final 1-NN accuracy of the generator's samples: "
        + "; ".join(f"{way} {np.median(speed[way]):.0f} s, {median[way]['kid']:.3g}, "
                    f"{median[way]['nn1_accuracy']:.2f}" for way in ways) + ".")
    lines = against_today(res, screens, v["name"], "training", intro, f"{v['rule']} ({RULE})", v["if_not_met"])
    if v["untrained"] != UNTRAINED:  # another draw: its margin over today's untrained pair too
        today_margin = {k: np.mean([res[s][v["name"]]["pair"][k] - max(res[s]["today"][who][k] for who in
                                                                          ("untrained", "hand")) for s in screens])
                        for k in KEYS}
        lines += ["", "Against today's untrained pair instead (the same D architecture, another random draw), the "
                  f"variant's margin over the better baseline: Spearman {today_margin['spearman']:+.3f}, "
                  f"ranking AP {today_margin['rank_ap']:+.3f}."]
    publish(args.variant.replace("-", "_"), f"{v['title']} (bench_training_variant.py {args.variant})",
            "\n".join(lines), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
