"""One training budget, spent on one run or split into two ``--info 10`` runs read together?

Reading two ``--info 10`` runs together ranks compounds best on the suite (section *Two training seeds
read together*), but it costs two runs. This benchmark asks what a user with a fixed budget should
do: train two runs of half the budget with ``--info 10`` (bench_suite's 8-kimg runs at seeds 0 and 1,
tags ``8kimg-info`` and ``8kimg-info-seed1``) and read them together, or one run of the whole
budget (16 kimg, the default or ``--info 10``).

The new runs are embedded and scored here, exactly as the suite scores an embedding, with the same
networks untrained read together and handcrafted features as the baselines. The 16-kimg runs they
are judged against are no longer on disk: their scores are read from their own sections of
docs/benchmarks.md (``suite_16kimg``, ``suite_16kimg-seed1``, ``suite_16kimg-info``,
``suite_16kimg-info-seed1`` for one run; ``joined_runs`` for two runs read together). Before any
comparison, the untrained networks and handcrafted features scored here are checked against those
sections: they are the same networks on the same frozen screens, so they must score the same.

The same question is then asked at twice the budget, from stored runs only (one 32-kimg default run,
sections ``suite_32kimg`` and ``suite_32kimg-seed1``, against the two 16-kimg ``--info 10`` runs read
together), and near the 30-minute budget on the two screens with a stored 30-minute default run
(``suite_30min-v2``: 62-65 kimg) against two 32-kimg ``--info 10`` runs trained for it, read together here.

These runs were trained one run per tag, before ``gandl train``'s default became this split; with
today's default, ``--train-args`` needs ``--runs 1`` to train them the same way:

    python benchmarks/bench_suite.py --kimg 8 --tag 8kimg-info --train-args="--runs 1 --info 10" \\
        --methods GAN-DL,untrained,handcrafted --no-report        # and --tag 8kimg-info-seed1 "... --seed 1"
    python benchmarks/bench_suite.py --kimg 32 --tag 32kimg-info --train-args="--runs 1 --info 10" \\
        --methods GAN-DL,untrained,handcrafted --screens medium,large-rare --no-report   # and -seed1
    python benchmarks/bench_split_budget.py [--no-report]

With ``--rebuilt`` it scores only the pair, on a machine where the suite's runs were trained again from scratch
(same code, screens and seeds; the cache had been lost): whether they reproduce the stored section (Spearman
and the ranking AP with the ranking it was scored with, per screen), and the default's table with today's
ranking (hits flagged off-manifold after the others), beside the screens' ground truth scored as the
embedding (section ``split_budget_rebuilt``; ``--beside`` says what else ran while they trained).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import REPORT, publish  # noqa: E402
from bench_heldout import scale_chosen, suite_rows, summary  # noqa: E402
from bench_joined_runs import joined, joined_embedding  # noqa: E402
from bench_suite import embedding_report, log, paired_se, rank_ap_flag_ignored, suite_parser  # noqa: E402

from napari_gandl.synthetic import SUITE as SUITE_NAMES  # noqa: E402

SPLIT = ("8kimg-info", "8kimg-info-seed1")  # two runs of half the budget, --info 10, seeds 0 and 1
#: one run of the whole budget: its stored sections at seeds 0 and 1
WHOLE = {"default": ("16kimg", "16kimg-seed1"), "--info 10": ("16kimg-info", "16kimg-info-seed1")}
#: twice the budget: one 32-kimg default run (stored, seeds 0 and 1) against the two 16-kimg --info 10 runs
#: read together (stored, section joined_runs)
WHOLE_32 = ("32kimg", "32kimg-seed1")
#: about the 30-minute budget (a 30-minute run alone on this machine sees 62-65 kimg): two 32-kimg --info 10
#: runs, trained and read together here, against the stored 30-minute default runs of the two screens that
#: have one (section suite_30min-v2)
SPLIT_64, THIRTY = ("32kimg-info", "32kimg-info-seed1"), "30min-v2"
KEYS = ("acc", "spearman", "rank_ap", "true_hits", "false_hits")
#: the bold title that opens each stored per-screen table of a suite section
TITLES = {"acc": "C+/C- accuracy (%)", "spearman": "dose-ranking Spearman",
          "rank_ap": "compound-ranking AP", "hits": "Hits recovered"}
ROWS = {"GAN-DL": "GAN-DL", "untrained": "untrained", "handcrafted": "handcrafted"}


def section(name: str) -> str:
    text = REPORT.read_text()
    match = re.search(rf"<!-- bench:{re.escape(name)} -->(.*?)<!-- /bench:{re.escape(name)} -->", text, re.S)
    if match is None:
        raise SystemExit(f"{REPORT}: no section {name}")
    return match.group(1)


def table_after(text: str, title: str) -> list[dict[str, str]]:
    """The markdown table that follows the bold line starting with ``title``, as dicts by header."""
    start = text.index(f"**{title}")
    lines = [ln for ln in text[start:].split("\n\n", 2)[1].splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip().strip("*") for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def stored_suite(tag: str) -> dict[str, dict[str, dict[str, float]]]:
    """screen -> method -> scores, from the stored section of bench_suite's tag ``tag``."""
    text, out = section(f"suite_{tag}"), {}
    for key, title in TITLES.items():
        for row in table_after(text, title):
            if row["screen"] == "mean":
                continue
            for method in ROWS:
                cell = row[method]
                scores = out.setdefault(row["screen"], {}).setdefault(method, {})
                if key == "hits":
                    scores["true_hits"], scores["false_hits"] = (int(x) for x in cell.split("/"))
                else:
                    scores[key] = float(cell) / (100 if key == "acc" else 1)
    return out


def stored_joined() -> dict[str, dict[str, dict[str, float]]]:
    """screen -> read-out -> Spearman and AP of two runs read together, from section ``joined_runs``."""
    text = section("joined_runs")
    start = text.index("| screen | `default` Spearman")
    rows = [ln for ln in text[start:].splitlines() if ln.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    out = {}
    for ln in rows[2:]:
        cells = dict(zip(header, (c.strip() for c in ln.strip("|").split("|"))))
        for name in ("--info 10", "untrained"):
            out.setdefault(cells["screen"], {})[name] = {
                key: float(cells[f"`{name}` {label}"].split()[0]) for key, label in (("spearman", "Spearman"),
                                                                                     ("rank_ap", "AP"))}
    return out


def stored_pair_totals() -> tuple[str, str]:
    """C+/C- % and true / false hits of two 16-kimg ``--info 10`` runs read together: suite totals of
    section ``joined_runs`` (its per-screen table holds only Spearman and AP)."""
    row = next(ln for ln in section("joined_runs").splitlines()
               if ln.startswith("| --info 10 | **two seeds together**"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    return cells[2], cells[6]


def mean_run(seeds, screen: str, key: str) -> float:
    """One run's score: the mean of a training's stored seeds."""
    return float(np.mean([seed[screen]["GAN-DL"][key] for seed in seeds]))


def best(fresh, screen: str, key: str) -> float:
    """The better baseline of a pair: the untrained networks read together, or handcrafted."""
    return max(fresh[screen]["untrained"][key], fresh[screen]["hand"][key])


def pair_trails(fresh, scores, screen: str) -> float:
    return float(any(scores[k] < best(fresh, screen, k) for k in ("spearman", "rank_ap")))


def one_trails(seeds, screen: str) -> float:
    """How often one run trails: the mean over the seeds of each seed's run against its own untrained network
    and handcrafted."""
    return float(np.mean([any(seed[screen]["GAN-DL"][k] < max(seed[screen]["untrained"][k],
                                                               seed[screen]["handcrafted"][k])
                              for k in ("spearman", "rank_ap")) for seed in seeds]))


def larger_budgets(screens, fresh, stored_pairs, args) -> list[str]:
    """The same question at 32 kimg (stored runs only) and near the 30-minute budget (new runs on the two
    screens with a stored 30-minute run): lines of the report."""
    one = [stored_suite(t) for t in WHOLE_32]
    worst = max(abs(one[i][s][m][k] - (fresh[s]["untrained alone"][i] if m == "untrained" else fresh[s]["hand"])[k])
                for i in (0, 1) for s in screens for m in ("untrained", "handcrafted") for k in ("spearman", "rank_ap"))

    d = {k: np.array([stored_pairs[s]["--info 10"][k] - mean_run(one, s, k) for s in screens]) for k in ("spearman", "rank_ap")}
    pair_trailing = sum(pair_trails(fresh, stored_pairs[s]["--info 10"], s) for s in screens)
    one_trailing = sum(one_trails(one, s) for s in screens)
    hits = [f"{sum(seed[s]['GAN-DL']['true_hits'] for s in screens)} / {sum(seed[s]['GAN-DL']['false_hits'] for s in screens)}"
            for seed in one]
    lines = ["", "**Twice the budget, 32 kimg** (every run stored: one 32-kimg default run, section *32-kimg runs* and "
             "its `--seed 1`, the mean of the two seeds; two 16-kimg `--info 10` runs read together, section *Two "
             f"training seeds read together*). Their untrained and handcrafted rows equal those scored here (largest "
             f"difference {worst:.3f}).", "",
             "| read-out | Spearman | ranking AP | true / false hits | trailing |", "|---|---|---|---|---|",
             f"| one 32-kimg default run | {np.mean([mean_run(one, s, 'spearman') for s in screens]):.3f} | "
             f"{np.mean([mean_run(one, s, 'rank_ap') for s in screens]):.3f} | {hits[0]} · {hits[1]} | {one_trailing:g} |",
             f"| two 16-kimg `--info 10` runs together | {np.mean([stored_pairs[s]['--info 10']['spearman'] for s in screens]):.3f} | "
             f"{np.mean([stored_pairs[s]['--info 10']['rank_ap'] for s in screens]):.3f} | "
             f"{stored_pair_totals()[1] if set(screens) == set(SUITE_NAMES) else '–'} | {pair_trailing:g} |", "",
             f"- the split against one run, paired over the screens: Spearman {d['spearman'].mean():+.3f} ± "
             f"{paired_se(d['spearman']):.3f}; ranking AP {d['rank_ap'].mean():+.3f} ± {paired_se(d['rank_ap']):.3f}."]
    near = [s for s in screens if all((args.cache / s / f"results-{t}.json").is_file() for t in SPLIT_64)]
    if not near:
        return lines
    thirty = stored_suite(THIRTY)
    lines += ["", "**Near the 30-minute budget.** A 30-minute default run alone on this machine sees 62 to 65 kimg "
              "(section *30-minute runs on `medium` and `large-rare`*: 61.6 and 64.5 kimg, one seed). Against it, two "
              "32-kimg `--info 10` runs (`gandl train PLATE --kimg 32 --info 10 [--seed 1]`, bench_suite tags "
              "`32kimg-info`, `32kimg-info-seed1`, one CPU thread each, the two screens trained side by side, with "
              "targeted tests and a 5-minute screenshot training beside them at times; the budget is counted in "
              "images) read together, scored here; and, for scale, one 32-kimg default run (half that budget). "
              "Spearman / ranking AP, true / false hits:", "",
              "| screen | 30-minute default run | two 32-kimg `--info 10` runs together | the two alone | one 32-kimg default run | untrained pair | handcrafted |",
              "|---|---|---|---|---|---|---|"]
    for s in near:
        pair = joined(args.cache / s, SPLIT_64, args.splits)
        seeds = [json.loads((args.cache / s / f"results-{t}.json").read_text())["results"]["GAN-DL"] for t in SPLIT_64]

        def cell(r):
            return f"{r['spearman']:.3f} / {r['rank_ap']:.3f}, {r['true_hits']:g} / {r['false_hits']:g}"

        lines.append(f"| {s} | {cell(thirty[s]['GAN-DL'])} | {cell(pair)} | "
                     + " · ".join(f"{r['spearman']:.3f} / {r['rank_ap']:.3f}" for r in seeds)
                     + f" | {mean_run(one, s, 'spearman'):.3f} / {mean_run(one, s, 'rank_ap'):.3f} | "
                     f"{fresh[s]['untrained']['spearman']:.3f} / {fresh[s]['untrained']['rank_ap']:.3f} | "
                     f"{fresh[s]['hand']['spearman']:.3f} / {fresh[s]['hand']['rank_ap']:.3f} |")
        log(f"{s}: 32+32 pair {cell(pair)}; 30-minute run {cell(thirty[s]['GAN-DL'])}")
    return lines


def per_screen_table(trio: dict, screens: list[str], nuclei: dict[str, str] | None = None) -> list[str]:
    """The default read-out's table, one row per screen and their mean: each cell reads the pair / the same
    networks untrained, read together / handcrafted (``trio``: screen -> those three score dicts), with the
    nuclei ``--scale auto`` measured when ``nuclei`` (screen -> label) is given."""
    lines = ["| screen | " + "nuclei | " * bool(nuclei) + "C+/C- % | Spearman | ranking AP | true / false hits (of N) |",
             "|---|" + "---|" * bool(nuclei) + "---|---|---|---|"]
    for s in [*screens, "mean"]:
        rows = trio[s] if s != "mean" else [{k: np.mean([trio[x][i][k] for x in screens]) for k in KEYS[:3]}
                                            | {k: sum(trio[x][i][k] for x in screens) for k in KEYS[3:]}
                                            for i in range(3)]
        n = (sum(trio[x][2]["rescuing_curves"] for x in screens) if s == "mean" else trio[s][2]["rescuing_curves"])
        lines.append(f"| {s} | " + (f"{nuclei.get(s, '')} | " if nuclei else "")
                     + " / ".join(f"{100 * r['acc']:.1f}" for r in rows) + " | "
                     + " / ".join(f"{r['spearman']:.2f}" for r in rows) + " | "
                     + " / ".join(f"{r['rank_ap']:.2f}" for r in rows) + " | "
                     + " · ".join(f"{r['true_hits']:g}/{r['false_hits']:g}" for r in rows) + f" ({n}) |")
    return lines


def stored_per_screen() -> dict[str, dict[str, tuple[float, float]]]:
    """screen -> read-out (``GAN-DL``, ``untrained``, ``handcrafted``) -> (Spearman, ranking AP) of the pair's
    per-screen table in the stored section ``split_budget`` (scored with the ranking of its date)."""
    text = section("split_budget")
    rows = text[text.index("| screen | two 8-kimg"):].split("\n\n", 1)[0].splitlines()  # the table alone
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    columns = {"GAN-DL": header[1], "untrained": "untrained pair", "handcrafted": "handcrafted"}
    out = {}
    for ln in rows[2:]:
        cells = dict(zip(header, (c.strip() for c in ln.strip("|").split("|"))))
        out[cells["screen"]] = {who: tuple(float(x) for x in cells[col].split(" / ")) for who, col in columns.items()}
    return out


def rebuilt(args, screens: list[str]) -> list[str]:
    """The section's lines for the pair trained again from scratch (``--rebuilt``)."""
    rows = suite_rows(args.splits, screens)
    if not rows:
        raise SystemExit(f"{args.cache}: the suite's pair ({', '.join(SPLIT)}) is not trained on every screen asked for")
    stored = stored_per_screen()
    pairs = {"GAN-DL": SPLIT, "untrained": tuple(f"{t}-untrained" for t in SPLIT)}
    old_ap = {}  # screen -> read-out -> ranking AP with the flag ignored (the stored section's ranking)
    for s in screens:
        truth = args.cache / s / "plate" / "ground_truth"
        old_ap[s] = {who: rank_ap_flag_ignored(embedding_report(joined_embedding(args.cache / s, tags)), truth)
                     for who, tags in pairs.items()}
        old_ap[s]["handcrafted"] = rank_ap_flag_ignored(
            embedding_report(args.cache / s / "emb-handcrafted.parquet"), truth)
    who_all = ("GAN-DL", "untrained", "handcrafted")
    lines = [
        "The suite's default pair (two 8-kimg `--info 10` runs, seeds 0 and 1, read together; bench_suite tags "
        "`8kimg-info`, `8kimg-info-seed1`) **trained again from scratch** on this machine: the same code, screens "
        "and seeds as the section *One budget, one run or two*, whose runs were no longer on disk. Two lanes, "
        f"one CPU thread per run; beside them: {args.beside}. The budget is counted in images.", "",
        "**Reproduction.** Spearman, and the ranking AP with the ranking the stored section used (hits by q-value "
        "alone), rebuilt against stored, per screen:", "",
        "| screen | " + " | ".join(f"{w} Spearman | {w} AP" for w in who_all) + " |", "|---" * 7 + "|"]
    diffs = {w: [] for w in who_all}
    for s in screens:
        cells = []
        for w in who_all:
            sp, ap_ = rows[s][w]["spearman"], old_ap[s][w]
            st_sp, st_ap = stored[s][w]
            diffs[w] += [abs(sp - st_sp), abs(ap_ - st_ap)]
            cells += [f"{sp:.3f} ({st_sp:.3f})", f"{ap_:.3f} ({st_ap:.3f})"]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Largest difference from the stored section (Spearman or AP): "
              + "; ".join(f"{w} {max(diffs[w]):.3f}" for w in who_all) + ".", ""]
    summ = summary({s: rows[s] for s in screens})
    lines += ["**The default, scored with today's ranking.** Each cell reads the pair / the same networks "
              "untrained, read together / handcrafted; the nuclei are those `--scale auto` measured:", ""]
    nuclei = {}
    for s in screens:
        config = json.loads((args.cache / s / f"results-{SPLIT[0]}.json").read_text())["config"]
        nuclei[s] = scale_chosen({"scale": config["data"]["scale"], "cell_scale": config.get("cell_scale")})
    lines += per_screen_table({s: tuple(rows[s][w] for w in who_all) for s in screens}, screens, nuclei)
    truth = {k: np.mean([rows[s]["reference"][k] for s in screens]) for k in ("spearman", "rank_ap")}
    lines += ["", f"- Margin over the better baseline, per screen (mean ± se): Spearman "
              f"{summ['margin_spearman'][0]:+.3f} ± {summ['margin_spearman'][1]:.3f}, ranking AP "
              f"{summ['margin_rank_ap'][0]:+.3f} ± {summ['margin_rank_ap'][1]:.3f}; what the screens allow (their "
              f"ground truth scored as the embedding: Spearman {truth['spearman']:.3f}, AP {truth['rank_ap']:.3f}): "
              f"{summ['truth_margin_spearman']:+.3f} and {summ['truth_margin_rank_ap']:+.3f}.",
              f"- Trailing a baseline (Spearman or AP below the untrained pair's or handcrafted's): "
              f"{len(summ['trailing'])} of {len(screens)} ({', '.join(summ['trailing']) or 'none'}); below 90 % "
              f"C+/C-: {', '.join(summ['below_90']) or 'none'}.",
              "- Today's ranking against the stored section's, suite-mean AP: "
              + "; ".join(f"{w} {np.mean([rows[s][w]['rank_ap'] for s in screens]):.3f} against "
                          f"{np.mean([old_ap[s][w] for s in screens]):.3f}" for w in who_all) + "."]
    return lines


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("--rebuilt", action="store_true",
                    help="the pair trained again from scratch: reproduction, and its table with today's ranking")
    ap.add_argument("--beside", default="nothing but editing",
                    help="with --rebuilt: what else ran while the pair trained, said in the section")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    if args.rebuilt:
        publish("split_budget_rebuilt", "The suite's default pair trained again from scratch "
                "(bench_split_budget.py --rebuilt)", "\n".join(rebuilt(args, screens)), write=not args.no_report)
        return 0
    stored = {name: [stored_suite(t) for t in tags] for name, tags in WHOLE.items()}
    stored_pairs = stored_joined()
    fresh, checks = {}, []  # screen -> read-out -> scores; (what, largest difference) of the reproducibility checks
    for screen in screens:
        folder = args.cache / screen
        seeds = [json.loads((folder / f"results-{t}.json").read_text())["results"] for t in SPLIT]
        fresh[screen] = {
            "split": joined(folder, SPLIT, args.splits), "split alone": [s["GAN-DL"] for s in seeds],
            "untrained": joined(folder, tuple(f"{t}-untrained" for t in SPLIT), args.splits),
            "untrained alone": [s["untrained"] for s in seeds], "hand": seeds[0]["handcrafted"]}
        old = stored["default"]  # the default's runs start from the same initial networks at each seed
        for key in ("spearman", "rank_ap"):
            checks.append((f"{screen} untrained {key}", max(
                abs(fresh[screen]["untrained alone"][i][key] - old[i][screen]["untrained"][key]) for i in (0, 1))))
            checks.append((f"{screen} untrained pair {key}",
                           abs(fresh[screen]["untrained"][key] - stored_pairs[screen]["untrained"][key])))
            checks.append((f"{screen} handcrafted {key}",
                           abs(fresh[screen]["hand"][key] - old[0][screen]["handcrafted"][key])))
        log(f"{screen}: split pair Spearman {fresh[screen]['split']['spearman']:.3f} "
            f"AP {fresh[screen]['split']['rank_ap']:.3f}")
    worst = max(checks, key=lambda c: c[1])

    reads = {  # label -> (per-screen scores, trailing per screen)
        "two 8-kimg `--info 10` runs together (one budget)": (
            {s: fresh[s]["split"] for s in screens}, {s: pair_trails(fresh, fresh[s]["split"], s) for s in screens}),
        "one 8-kimg `--info 10` run (half the budget)": (
            {s: {k: float(np.mean([r[k] for r in fresh[s]["split alone"]])) for k in KEYS} for s in screens}, None),
        **{f"one 16-kimg {name} run (one budget)": (
            {s: {k: mean_run(stored[name], s, k) for k in KEYS} for s in screens},
            {s: one_trails(stored[name], s) for s in screens}) for name in WHOLE},
        "two 16-kimg `--info 10` runs together (twice the budget)": (
            {s: stored_pairs[s]["--info 10"] for s in screens},
            {s: pair_trails(fresh, stored_pairs[s]["--info 10"], s) for s in screens}),
    }
    lines = [
        "Two `--info 10` runs of 8 kimg each (seeds 0 and 1; bench_suite tags `8kimg-info`, `8kimg-info-seed1`: "
        "`gandl train PLATE --kimg 8 --info 10 [--seed 1]`, one CPU thread each, two screens trained side by side "
        "with other work on the machine at times) read together (`gandl embed --checkpoint A --checkpoint B`), "
        "against one 16-kimg run: the same training budget spent on one run. The 8-kimg runs are scored here; "
        "the 16-kimg runs are gone from disk, so their scores are read from their sections (*16-kimg runs*, "
        "*`--seed 1`*, *`--info 10`*, *`--info 10 --seed 1`*, *Two training seeds read together*). One run is the "
        "mean of its two seeds. Suite means; hits summed (one run: the mean of the seeds' totals); \"trailing\" "
        "counts the screens where the read-out's Spearman or ranking AP is below the better of handcrafted and "
        "the untrained networks read the same way (one network for one run, the two seeds' together for a pair).",
        "",
        f"**Same networks, same screens.** The untrained networks (alone and read together) and the handcrafted "
        f"features scored here against their stored scores, on every screen: the largest difference in Spearman "
        f"or AP is {worst[1]:.3f} ({worst[0]}).", "",
        "| read-out | C+/C- % | Spearman | ranking AP | true / false hits | trailing |", "|---|---|---|---|---|---|"]
    # the stored pair's suite totals (every other read-out has them per screen), for the whole suite only
    pair_totals = stored_pair_totals() if set(screens) == set(SUITE_NAMES) else ("–", "–")
    for label, (scores, trail) in reads.items():
        acc, hits = pair_totals
        if all("acc" in scores[s] for s in screens):
            acc = f"{100 * np.mean([scores[s]['acc'] for s in screens]):.1f}"
            hits = f"{sum(scores[s]['true_hits'] for s in screens):g} / {sum(scores[s]['false_hits'] for s in screens):g}"
        lines.append(f"| {label} | {acc} | " + " | ".join(f"{np.mean([scores[s][k] for s in screens]):.3f}"
                                                         for k in ("spearman", "rank_ap"))
                     + f" | {hits} | {'–' if trail is None else f'{sum(trail.values()):g}'} |")
    untrained = {k: np.mean([fresh[s]["untrained"][k] for s in screens]) for k in ("spearman", "rank_ap")}
    hand = {k: np.mean([fresh[s]["hand"][k] for s in screens]) for k in ("spearman", "rank_ap")}
    lines += [f"| untrained, two networks together | | {untrained['spearman']:.3f} | {untrained['rank_ap']:.3f} | | |",
              f"| handcrafted | | {hand['spearman']:.3f} | {hand['rank_ap']:.3f} | | |", "",
              "The split budget against each other read-out, paired over the screens (mean difference ± its "
              "standard error):", ""]
    split = reads["two 8-kimg `--info 10` runs together (one budget)"][0]
    for label, (scores, _) in list(reads.items())[1:]:
        d = {k: np.array([split[s][k] - scores[s][k] for s in screens]) for k in ("spearman", "rank_ap")}
        lines.append(f"- against {label}: Spearman {d['spearman'].mean():+.3f} ± {paired_se(d['spearman']):.3f}; "
                     f"ranking AP {d['rank_ap'].mean():+.3f} ± {paired_se(d['rank_ap']):.3f}.")
    for key, label in (("spearman", "Spearman"), ("rank_ap", "AP")):
        margin = np.mean([split[s][key] - best(fresh, s, key) for s in screens])
        lines.append(f"- margin of the split pair over the better baseline read the same way, {label}: {margin:+.3f}.")
    lines += ["", "Per screen, Spearman / ranking AP:", "",
              "| screen | " + " | ".join(reads) + " | untrained pair | handcrafted |", "|---" * (3 + len(reads)) + "|"]
    for s in screens:
        lines.append(f"| {s} | " + " | ".join(f"{scores[s]['spearman']:.3f} / {scores[s]['rank_ap']:.3f}"
                                              for scores, _ in reads.values())
                     + f" | {fresh[s]['untrained']['spearman']:.3f} / {fresh[s]['untrained']['rank_ap']:.3f}"
                     f" | {fresh[s]['hand']['spearman']:.3f} / {fresh[s]['hand']['rank_ap']:.3f} |")
    lines += ["", "**The default read-out, per screen.** `gandl train`'s default with the `quick` preset is now this "
              "split (two `--info 10` runs of half the budget, read together). At the suite's 16-kimg budget, each "
              "cell reads the pair / the same networks untrained, read together / handcrafted:", ""]
    lines += per_screen_table({s: (fresh[s]["split"], fresh[s]["untrained"], fresh[s]["hand"]) for s in screens},
                              screens)
    lines += larger_budgets(screens, fresh, stored_pairs, args)
    publish("split_budget", "One budget, one run or two `--info 10` runs read together (bench_split_budget.py)",
            "\n".join(lines), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
