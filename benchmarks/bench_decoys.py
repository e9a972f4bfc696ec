"""Which compounds rescue when a library is full of compounds with phenotypes of their own (the decoy screens).

On the suite's and the held-out screens a compound rescues, does nothing or kills, so whatever moves a well
towards the controls is rescue. The decoy screens (``napari_gandl.synthetic.DECOYS``, docs/synthetic.md,
frozen by hash before any method was scored on them) add four decoys to the 12-compound library, compounds
that rescue nothing but change every cell (cells that spread, nuclei that swell, a scattered Golgi, an
expanded ER), and a rescuer with an off-target phenotype of its own. Each screen is run as a user runs a new
screen, exactly as bench_heldout.py runs the held-out screens (:func:`bench_heldout.run_screen`): GAN-DL's
default (``gandl train PLATE --kimg 16``, its two runs read together), the same two networks untrained, read
together, handcrafted features, and the screen's ground truth as the embedding (what the screen allows).

Beside bench_suite.py's scores, two numbers say what the decoys did to the ranking a biologist reads
(``gandl analyse``'s ``dose_response.csv``, one curve per compound and cell type):

* **decoys in the top**: the decoy curves ranked among the first R curves, where R is the number of truly
  rescuing curves (a perfect ranking has none);
* **decoy hits**: the decoy curves called hits at q < 0.05 (they are among the false hits);

and how many decoy curves, and how many truly rescuing ones, ``gandl analyse`` flags as lying far from both
controls at their top dose ("off-manifold (possible toxicity)"), the warning a biologist reads beside a hit.

``gandl analyse`` ranks the hits it flags after the other hits; the section also counts the hits that carry
no flag ("clean hits", true and false) and gives the ranking AP of the ranking before it read the flag (the
same curves by hit, direction, q-value and efficacy alone).

``--seed S`` trains the default from another random draw (``gandl train --seed S``: runs at seeds S and S + 1,
section ``decoys_seed<S>``) with its own untrained networks (the same draws), as ``bench_heldout.py --seed``
does.

Train in two lanes, then score and write the section with a third call:

    python benchmarks/bench_decoys.py [--seed S] --screens decoys-medium,decoys-small --no-report
    python benchmarks/bench_decoys.py [--seed S] --screens decoys-large --no-report
    python benchmarks/bench_decoys.py [--seed S]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_heldout import READ_OUTS, budget_suffix, embedding_path, run_screen, scale_chosen, summary  # noqa: E402
from bench_suite import CACHE, embedding_report, rank_ap_flag_ignored, suite_parser  # noqa: E402

DECOYS_CACHE = CACHE.parent / "decoys"


def decoy_curves(curves: pd.DataFrame, truth: Path) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """A dose_response table joined to the screen's ground truth (``truth``: its ground_truth folder), with
    which curves truly rescue and which are decoys (an off-target phenotype, no rescue)."""
    curves = curves.merge(pd.read_csv(truth / "compounds.csv")[["compound", "active", "off_target"]], on="compound")
    active = curves["active"].astype(bool)
    return curves, active, curves["off_target"].notna() & ~active


def decoys_in_top(curves: pd.DataFrame, active: pd.Series, decoy: pd.Series) -> int:
    """How many decoy curves rank among the first R (R: the rescuing ones), from :func:`decoy_curves`."""
    return int((decoy & (curves["rank"] <= active.sum())).sum())


def decoy_ranking(folder: Path, read_out: str, seed: int = 0) -> dict:
    """Where the decoys landed in ``read_out``'s compound ranking on the screen cached in ``folder``: each
    decoy curve's rank (compound, cell type -> rank), how many sit among the first R curves (R: the truly
    rescuing curves), how many were called hits, how many decoy and truly rescuing curves carry the
    off-manifold flag, the hits without it (true, false) and the ranking AP of the ranking before it read the
    flag."""
    from napari_gandl.analysis.dose import flagged_off_manifold

    report, truth = embedding_report(embedding_path(folder, read_out, seed=seed)), folder / "plate" / "ground_truth"
    curves, active, decoy = decoy_curves(pd.read_csv(report / "dose_response.csv"), truth)
    flagged = flagged_off_manifold(curves)
    clean_hits = curves["hit"] & ~flagged
    return {"ranks": {f"{c} ({t})": int(r) for c, t, r in curves.loc[decoy, ["compound", "cell_type", "rank"]]
                      .itertuples(index=False)},
            "in_top": decoys_in_top(curves, active, decoy),
            "hits": int((curves["hit"] & decoy).sum()), "flagged": int((flagged & decoy).sum()),
            "flagged_rescuers": int((flagged & active).sum()),
            "clean_hits": (int((clean_hits & active).sum()), int((clean_hits & ~active).sum())),
            "ap_flag_ignored": rank_ap_flag_ignored(report, truth),
            "decoy_curves": int(decoy.sum()), "curves": len(curves), "rescuing": int(active.sum())}


def report(rows: dict, cache: Path, seed: int = 0) -> str:
    """The section: means and margins over the decoy screens, each screen's scores and where its decoys
    ranked (``rows``: screen -> bench_heldout.run_screen's row for the draw at ``seed``)."""
    results = {n: r["results"] for n, r in rows.items()}
    summ = summary(results)
    read_outs = (*READ_OUTS, ("reference", "the ground truth (what the screen allows)"))
    decoys = {n: {m: decoy_ranking(cache / n, m, seed) for m, _ in read_outs} for n in rows}

    def total(per_screen: dict, read_out: str, key: str) -> float:  # summed over the screens
        return sum(per_screen[n][read_out][key] for n in rows)
    lines = [
        "Screens whose library holds four decoys (no rescue, one off-target phenotype each: cells that spread, "
        "nuclei that swell, a scattered Golgi, an expanded ER) and a rescuer with an off-target phenotype, beside "
        "the 12-compound library (`napari_gandl.synthetic.DECOYS`, frozen by hash before any method was scored on "
        "them; docs/synthetic.md). Each run as bench_heldout.py runs a held-out screen: `gandl train PLATE --kimg 16 "
        f"--device cpu --threads 1{f' --seed {seed}' if seed else ''}` (two 8-kimg `--info 10` runs at seeds "
        f"{seed} and {seed + 1}, read together), the same two "
        "networks untrained, read together, `gandl embed --method handcrafted`, and the screen's ground truth "
        "scored as the embedding. Two lanes side by side on the 2 cores (one thread each), beside them at most "
        "the unit tests; the budget is counted in images, so what else ran changed the time taken, not the "
        "result.", "",
        f"| decoy screens ({len(rows)}), means | C+/C- % | Spearman | ranking AP | true / false hits (of N) "
        "| decoys in the top R / decoy hits (all screens) |",
        "|---|---|---|---|---|---|"]
    for m, name in read_outs:
        mean = {k: total(results, m, k) / len(rows) for k in ("acc", "spearman", "rank_ap")}
        lines.append(f"| {name} | {100 * mean['acc']:.1f} | {mean['spearman']:.3f} | {mean['rank_ap']:.3f} | "
                     f"{total(results, m, 'true_hits')} / {total(results, m, 'false_hits')} "
                     f"({total(results, m, 'rescuing_curves')}) | {total(decoys, m, 'in_top')} / "
                     f"{total(decoys, m, 'hits')} |")
    lines += ["", "The default against the better of its two baselines on each screen (mean ± standard error over "
                  "the screens), beside the same margin of the ground truth: Spearman "
                  f"{summ['margin_spearman'][0]:+.3f} ± {summ['margin_spearman'][1]:.3f} (the ground truth: "
                  f"{summ['truth_margin_spearman']:+.3f}), ranking AP {summ['margin_rank_ap'][0]:+.3f} ± "
                  f"{summ['margin_rank_ap'][1]:.3f} (the ground truth: {summ['truth_margin_rank_ap']:+.3f}); "
                  f"trailing a baseline on {len(summ['trailing'])} of {summ['screens']} screens"
                  + (f" ({', '.join(summ['trailing'])})" if summ["trailing"] else "")
                  + f"; below 90 % C+/C-: {', '.join(summ['below_90']) or 'none'}.", "",
              "Per screen: each cell reads the default / the same networks untrained / handcrafted / the ground "
              "truth; R is the number of truly rescuing curves (compound x cell type).", "",
              "| screen | scale chosen | C+/C- % | Spearman | ranking AP | true / false hits | decoys in the top R "
              "| decoy hits | off-manifold flags: decoys / rescuers |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        r, d = row["results"], decoys[name]
        lines.append(f"| {name} | {scale_chosen(row)} | "
                     + " | ".join(" / ".join(f"{(100 if k == 'acc' else 1) * r[m][k]:.{1 if k == 'acc' else 3}f}"
                                             for m, _ in read_outs) for k in ("acc", "spearman", "rank_ap"))
                     + " | " + " · ".join(f"{r[m]['true_hits']}/{r[m]['false_hits']}" for m, _ in read_outs)
                     + f" | {' / '.join(str(d[m]['in_top']) for m, _ in read_outs)} (R = {d['GAN-DL']['rescuing']})"
                     + f" | {' / '.join(str(d[m]['hits']) for m, _ in read_outs)} | "
                     + " · ".join(f"{d[m]['flagged']}/{d[m]['flagged_rescuers']}" for m, _ in read_outs)
                     + f" (of {d['GAN-DL']['decoy_curves']} / {d['GAN-DL']['rescuing']}) |")
    lines += ["", "The off-manifold flag: the hits without it (true / false, all screens), and the mean ranking AP "
                  "of `gandl analyse`'s ranking (flagged hits after the others) and of the ranking before it read "
                  "the flag (hits by q-value alone):", "",
              "| read-out | hits: true / false | clean hits: true / false | ranking AP | AP, the flag ignored |",
              "|---|---|---|---|---|"]
    for m, name in read_outs:
        clean = [sum(decoys[n][m]["clean_hits"][i] for n in rows) for i in (0, 1)]
        lines.append(f"| {name} | {total(results, m, 'true_hits')} / {total(results, m, 'false_hits')} | "
                     f"{clean[0]} / {clean[1]} | {total(results, m, 'rank_ap') / len(rows):.3f} | "
                     f"{total(decoys, m, 'ap_flag_ignored') / len(rows):.3f} |")
    if seed:
        first = {n: json.loads((cache / n / "results.json").read_text())["results"] for n in rows}
        both = summary({f"{n} {k}": r for k, rs in (("a", results), ("b", first)) for n, r in rs.items()})
        first_decoys = {n: {m: decoy_ranking(cache / n, m) for m, _ in READ_OUTS} for n in rows}
        lines += ["", "Beside the draw at seeds 0 + 1 (means over the screens; decoys in the top R summed):", "",
                  "| draw | read-out | Spearman | ranking AP | true / false hits | decoys in the top R |",
                  "|---|---|---|---|---|---|"]
        for label, res, dec in ((f"seeds {seed} + {seed + 1}", results, decoys), ("seeds 0 + 1", first, first_decoys)):
            for m, name in READ_OUTS:
                lines.append(f"| {label} | {name} | {total(res, m, 'spearman') / len(rows):.3f} | "
                             f"{total(res, m, 'rank_ap') / len(rows):.3f} | {total(res, m, 'true_hits')} / "
                             f"{total(res, m, 'false_hits')} | {total(dec, m, 'in_top')} |")
        lines += ["", f"Over both pairs of draws ({2 * len(rows)} screen-draws), the default's margin over the better "
                      f"baseline: Spearman {both['margin_spearman'][0]:+.3f} ± {both['margin_spearman'][1]:.3f}, "
                      f"ranking AP {both['margin_rank_ap'][0]:+.3f} ± {both['margin_rank_ap'][1]:.3f}; trailing on "
                      f"{len(both['trailing'])} of {both['screens']}."]
    lines += ["", f"Each decoy curve's rank among the {decoys[next(iter(rows))]['GAN-DL']['curves']} curves "
                  "(1: ranked most rescuing), per read-out (default / untrained / handcrafted / ground truth):", "",
              "| screen | decoy (cell type) | ranks |", "|---|---|---|"]
    for name in rows:
        for curve in decoys[name]["GAN-DL"]["ranks"]:
            lines.append(f"| {name} | {curve} | "
                         + " / ".join(str(decoys[name][m]["ranks"][curve]) for m, _ in read_outs) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import torch

    from napari_gandl.synthetic import DECOYS

    ap = suite_parser(__doc__, screens=",".join(DECOYS), splits=True)
    ap.set_defaults(cache=DECOYS_CACHE)
    ap.add_argument("--seed", type=int, default=0, help="the first run's seed (gandl train --seed)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = {name: run_screen(name, args.cache, args.splits, seed=args.seed) for name in args.screens.split(",")}
    suffix = budget_suffix(16, args.seed)
    publish(f"decoys{suffix.replace('-', '_')}",
            f"Which compounds rescue among decoys (bench_decoys.py{f' --seed {args.seed}' if args.seed else ''})",
            report(rows, args.cache, args.seed), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
