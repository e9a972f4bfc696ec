"""The default's code-recovery weight: two ``--info 10`` runs read together, or two ``--info 3`` runs?

``gandl train``'s default (the ``quick`` preset) splits a budget into two runs with code recovery
(``--info 10``) and reads them together. Code recovery costs the generator its realism: the runs'
final KID is orders of magnitude above a run without it, so the Train dock's live samples and the
latent dock show no cells. ``--info 3`` kept the generator near a plain run's at 16 kimg (one seed)
and ranked compounds as well. This benchmark scores both weights as the default uses them, on every
screen of the suite: two 8-kimg runs (seeds 0 and 1) read together, against the same networks
untrained read together and handcrafted features, and compares the generators' final KID run by run.

    python benchmarks/bench_suite.py --kimg 8 --tag 8kimg-info3 --train-args="--info 3" \\
        --methods GAN-DL,untrained,handcrafted --no-report      # and --tag 8kimg-info3-seed1 "... --seed 1"
    python benchmarks/bench_info_pair.py [--no-report]

(The ``--info 10`` runs are bench_split_budget's, tags ``8kimg-info`` and ``8kimg-info-seed1``.) The
rule the pair was judged by was written before any ``--info 3`` run was trained; it is printed with the
section's verdict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_joined_runs import joined  # noqa: E402
from bench_split_budget import pair_trails  # noqa: E402
from bench_suite import log, paired_se, suite_parser  # noqa: E402

#: weight -> bench_suite's tags of its 8-kimg runs at seeds 0 and 1
PAIRS = {"--info 10": ("8kimg-info", "8kimg-info-seed1"), "--info 3": ("8kimg-info3", "8kimg-info3-seed1")}
CURRENT, CANDIDATE = PAIRS
#: the rule, written before any --info 3 run was trained (2026-12-06 22:50 UTC)
RULE = {"kid_ratio": 0.1, "spearman": -0.010, "rank_ap": -0.010, "true_hits": 72, "false_hits": 5, "trailing": 5}


def final_metrics(run: Path) -> dict:
    """The run's last ``metrics.csv`` row (1-NN accuracy, KID, diversity at the end of training)."""
    return pd.read_csv(run / "metrics.csv").iloc[-1].to_dict()


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    res, checks, kid_ratios, ends = {}, [], [], {name: [] for name in PAIRS}
    for screen in screens:
        folder = args.cache / screen
        results = {name: [json.loads((folder / f"results-{t}.json").read_text())["results"] for t in tags]
                   for name, tags in PAIRS.items()}
        res[screen] = {name: joined(folder, tags, args.splits) for name, tags in PAIRS.items()}
        res[screen]["untrained"] = joined(folder, tuple(f"{t}-untrained" for t in PAIRS[CURRENT]), args.splits)
        res[screen]["hand"] = results[CURRENT][0]["handcrafted"]
        for seed in (0, 1):  # both weights start from the same networks at each seed
            for key in ("spearman", "rank_ap"):
                checks.append((f"{screen} seed {seed} untrained {key}", abs(
                    results[CURRENT][seed]["untrained"][key] - results[CANDIDATE][seed]["untrained"][key])))
            end = {name: final_metrics(folder / f"gandl-{PAIRS[name][seed]}") for name in PAIRS}
            kid_ratios.append(end[CANDIDATE]["kid"] / end[CURRENT]["kid"])
            for name in PAIRS:
                ends[name].append(end[name])
        log(f"{screen}: " + "; ".join(f"{n} Spearman {r['spearman']:.3f} AP {r['rank_ap']:.3f}"
                                      for n, r in res[screen].items()))
    worst = max(checks, key=lambda c: c[1])

    def trailing(name):  # screens where the pair is below the better of the untrained pair and handcrafted
        return int(sum(pair_trails(res, res[s][name], s) for s in screens))

    def total(name, key):
        return sum(res[s][name][key] for s in screens)

    diff = {k: np.array([res[s][CANDIDATE][k] - res[s][CURRENT][k] for s in screens]) for k in ("spearman", "rank_ap")}
    median_ratio = float(np.median(kid_ratios))
    verdict = {
        f"final KID, median ratio over the 24 runs <= {RULE['kid_ratio']}": median_ratio <= RULE["kid_ratio"],
        f"Spearman difference >= {RULE['spearman']}": diff["spearman"].mean() >= RULE["spearman"],
        f"ranking-AP difference >= {RULE['rank_ap']}": diff["rank_ap"].mean() >= RULE["rank_ap"],
        f"true hits >= {RULE['true_hits']}": total(CANDIDATE, "true_hits") >= RULE["true_hits"],
        f"false hits <= {RULE['false_hits']}": total(CANDIDATE, "false_hits") <= RULE["false_hits"],
        f"screens trailing <= {RULE['trailing']}": trailing(CANDIDATE) <= RULE["trailing"],
    }
    lines = [
        "Two 8-kimg runs (seeds 0 and 1) read together, the way `gandl train` spends a budget with the `quick` "
        "preset, at two code-recovery weights: `--info 10` (bench_suite tags `8kimg-info`, `8kimg-info-seed1`) and "
        "`--info 3` (`8kimg-info3`, `8kimg-info3-seed1`: `gandl train PLATE --kimg 8 --runs 1 --info 3 [--seed 1]`, "
        "one CPU thread each, two screens trained side by side, with targeted tests (the GAN and Train-dock tests) and, for the last runs, the scoring of the first six screens beside them at times; the budget is counted in images). Both are scored "
        "as the suite scores an embedding, against the same networks untrained read together and handcrafted "
        "features. Suite means; hits summed; \"trailing\" counts the screens where the pair's Spearman or ranking "
        "AP is below the better baseline.", "",
        f"**Same starting networks.** Both weights start from the same untrained networks at each seed: their "
        f"untrained scores differ by at most {worst[1]:.3f} ({worst[0]}).", "",
        "| read-out | C+/C- % | Spearman | ranking AP | true / false hits | trailing | final KID (median) "
        "| final 1-NN (median) |", "|---|---|---|---|---|---|---|---|"]
    for name in PAIRS:
        lines.append(
            f"| two `{name}` runs together | {100 * np.mean([res[s][name]['acc'] for s in screens]):.1f} | "
            + " | ".join(f"{np.mean([res[s][name][k] for s in screens]):.3f}" for k in ("spearman", "rank_ap"))
            + f" | {total(name, 'true_hits'):g} / {total(name, 'false_hits'):g} | {trailing(name)} | "
            f"{np.median([e['kid'] for e in ends[name]]):.3g} | {np.median([e['nn1_accuracy'] for e in ends[name]]):.2f} |")
    for name, label in (("untrained", "untrained, two networks together"), ("hand", "handcrafted")):
        lines.append(f"| {label} | {100 * np.mean([res[s][name]['acc'] for s in screens]):.1f} | "
                     + " | ".join(f"{np.mean([res[s][name][k] for s in screens]):.3f}" for k in ("spearman", "rank_ap"))
                     + f" | {total(name, 'true_hits'):g} / {total(name, 'false_hits'):g} | | | |")
    lines += [
        "", f"`--info 3` against `--info 10`, paired over the screens: Spearman {diff['spearman'].mean():+.3f} ± "
        f"{paired_se(diff['spearman']):.3f}, ranking AP {diff['rank_ap'].mean():+.3f} ± {paired_se(diff['rank_ap']):.3f} "
        f"(mean ± standard error). The final KID of an `--info 3` run over the `--info 10` run of the same screen and "
        f"seed: median {median_ratio:.3g} (from {min(kid_ratios):.2g} to {max(kid_ratios):.2g}, 24 runs).", "",
        "The rule, written before any `--info 3` run was trained; `--info 3` becomes the default only if every line "
        "holds:", ""]
    lines += [f"- {what}: {'met' if ok else 'not met'}" for what, ok in verdict.items()]
    lines += ["", f"**Verdict: {'met, the default becomes --info 3' if all(verdict.values()) else 'not met'}.**", "",
              "Per screen, Spearman / ranking AP, true / false hits:", "",
              "| screen | two `--info 10` runs | two `--info 3` runs | untrained pair | handcrafted |",
              "|---|---|---|---|---|"]
    for s in screens:
        lines.append(f"| {s} | " + " | ".join(
            f"{res[s][n]['spearman']:.3f} / {res[s][n]['rank_ap']:.3f}, {res[s][n]['true_hits']:g} / "
            f"{res[s][n]['false_hits']:g}" for n in (*PAIRS, "untrained", "hand")) + " |")
    publish("info_pair", "The default pair's code-recovery weight: `--info 10` or `--info 3` (bench_info_pair.py)",
            "\n".join(lines), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
