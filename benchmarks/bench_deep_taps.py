"""Which of D's blocks the "stats" read-out should take: today's taps, or the deeper blocks only.

The ``stats`` embedding of the ``quick`` preset is the mean and standard deviation over positions of 64
channels of D's 16x16 block, 128 of its 8x8 block and 64 of its 4x4 block (512 values). The variant **deep**
takes all 128 channels of the 8x8 block and all 128 of the 4x4 block (512 values too). If training changes the
deeper blocks most, reading them should favour the trained networks over the same networks untrained.

Read-out only: bench_suite's cached 8-kimg ``--info 10`` runs at seeds 0 and 1 of every suite screen (tags
``8kimg-info``, ``8kimg-info-seed1``) and their untrained networks are read together, as the default reads
them, both ways; handcrafted features are the stored ones. A rule written before any deep embedding was
computed decides (``RULE``, in the section). The variant is a patch of the read-out in this process, not an
option of ``gandl embed``.

Embed in two lanes, then score and write the section:

    python benchmarks/bench_deep_taps.py --screens texture,...,medium --no-report
    python benchmarks/bench_deep_taps.py --screens partial,...,large-rare --no-report
    python benchmarks/bench_deep_taps.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_joined_runs import joined_embedding  # noqa: E402
from bench_split_budget import pair_trails  # noqa: E402
from bench_suite import cached_embedding, embed, log, paired_se, scored, suite_parser  # noqa: E402

PAIR = ("8kimg-info", "8kimg-info-seed1")
UNTRAINED = tuple(f"{t}-untrained" for t in PAIR)
KEYS = ("spearman", "rank_ap")
#: written before any deep embedding was computed (2026-12-07 02:35 UTC)
RULE = "margin up by > 2 SE in Spearman or AP, down by <= 1 SE in both; own scores down by <= 1 SE; " \
       "trailing <= today's; true hits >= today's - 2, false hits <= today's + 2"


def todays_embeddings(folder: Path) -> dict[str, Path]:
    """Today's three read-outs of the suite screen in ``folder``, by their names in :func:`against_today`'s
    results: the default pair and the same networks untrained, each read together, and handcrafted features."""
    return {"pair": joined_embedding(folder, PAIR), "untrained": joined_embedding(folder, UNTRAINED),
            "hand": cached_embedding(folder.parent, folder.name, PAIR[0], "handcrafted")}


def todays_scores(folder: Path, splits: int) -> dict[str, dict]:
    """:func:`todays_embeddings`, scored."""
    return {who: scored(path, folder / "plate", splits) for who, path in todays_embeddings(folder).items()}


def deep_taps() -> None:
    """Patch D, in this process, to read all channels of its two deepest blocks (the 8x8 and 4x4 ones)."""
    from napari_gandl.gan.networks import Discriminator

    init = Discriminator.__init__

    def patched(self, cfg):
        init(self, cfg)
        last = len(self.blocks) - 1
        self.stats_taps = [(last - 1, cfg.d_channels(8)), (last, cfg.d_channels(4))]
        assert sum(take for _, take in self.stats_taps) == cfg.feature_dim // 2

    Discriminator.__init__ = patched


def deep_scores(folder: Path, tags: tuple[str, str], splits: int) -> dict:
    out = folder / f"emb-deep-{'+'.join(tags)}.parquet"
    embed(folder / "plate", "gandl", [folder / f"gandl-{t}" for t in tags], out)
    return scored(out, folder / "plate", splits)


def against_today(res: dict, screens: list[str], variant: str, what: str, intro: str, rule: str,
                  if_not_met: str) -> list[str]:
    """A read-out variant against today's on the suite, judged by ``RULE``'s six lines: the section's lines
    (the means, the paired differences, the rule line by line and its verdict, ``if_not_met`` saying what
    stays; the screens). ``res``: screen -> way ("today" or ``variant``) -> {"pair", "untrained", "hand"} ->
    scores."""
    ways = ("today", variant)

    def margin(way, s, k):
        r = res[s][way]
        return r["pair"][k] - max(r["untrained"][k], r["hand"][k])

    def trailing(way):
        return int(sum(pair_trails({s: res[s][way]}, res[s][way]["pair"], s) for s in screens))

    def hits(way, who="pair"):
        return tuple(sum(res[s][way][who][h] for s in screens) for h in ("true_hits", "false_hits"))

    dm = {k: np.array([margin(variant, s, k) - margin("today", s, k) for s in screens]) for k in KEYS}
    dp = {k: np.array([res[s][variant]["pair"][k] - res[s]["today"]["pair"][k] for s in screens]) for k in KEYS}
    se_m, se_p = {k: paired_se(dm[k]) for k in KEYS}, {k: paired_se(dp[k]) for k in KEYS}
    verdict = {
        "margin up by more than 2 SE in Spearman or AP": any(dm[k].mean() > 2 * se_m[k] for k in KEYS),
        "margin down by at most 1 SE in both": all(dm[k].mean() >= -se_m[k] for k in KEYS),
        "the pair's own Spearman and AP down by at most 1 SE": all(dp[k].mean() >= -se_p[k] for k in KEYS),
        f"screens trailing at most today's {trailing('today')}": trailing(variant) <= trailing("today"),
        "true hits at least today's - 2": hits(variant)[0] >= hits("today")[0] - 2,
        "false hits at most today's + 2": hits(variant)[1] <= hits("today")[1] + 2,
    }
    lines = [
        intro + " Suite means; hits summed; \"trailing\": screens where the pair's Spearman or ranking AP is "
        "below the better of the untrained pair and handcrafted, read the same way.", "",
        f"| {what} | pair C+/C- % | pair Spearman | pair ranking AP | untrained Spearman | untrained ranking AP "
        "| true / false hits (pair · untrained) | trailing |", "|---|---|---|---|---|---|---|---|"]
    for way in ways:
        mean = {who: {k: np.mean([res[s][way][who][k] for s in screens]) for k in ("acc", *KEYS)}
                for who in ("pair", "untrained")}
        lines.append(f"| {way} | {100 * mean['pair']['acc']:.1f} | {mean['pair']['spearman']:.3f} | "
                     f"{mean['pair']['rank_ap']:.3f} | {mean['untrained']['spearman']:.3f} | "
                     f"{mean['untrained']['rank_ap']:.3f} | {hits(way)[0]} / {hits(way)[1]} · "
                     f"{hits(way, 'untrained')[0]} / {hits(way, 'untrained')[1]} | {trailing(way)} |")
    lines += ["", f"{variant[0].upper() + variant[1:]} against today, paired over the screens (mean ± standard error):", ""]
    for k, label in (("spearman", "Spearman"), ("rank_ap", "ranking AP")):
        lines.append(f"- {label}: the pair {dp[k].mean():+.3f} ± {se_p[k]:.3f}; its margin over the better baseline "
                     f"{dm[k].mean():+.3f} ± {se_m[k]:.3f} (today's margin "
                     f"{np.mean([margin('today', s, k) for s in screens]):+.3f}).")
    lines += ["", f"The rule, {rule}:", ""]
    lines += [f"- {line}: {'met' if ok else 'not met'}" for line, ok in verdict.items()]
    lines += ["", f"**Verdict: {'met' if all(verdict.values()) else f'not met; {if_not_met}'}.**", "",
              f"Per screen, Spearman / ranking AP (today → {variant}):", "",
              "| screen | pair | untrained pair | handcrafted |", "|---|---|---|---|"]
    for s in screens:
        t, d = res[s]["today"], res[s][variant]
        lines.append(f"| {s} | " + " | ".join(
            f"{t[w]['spearman']:.3f} / {t[w]['rank_ap']:.3f} → {d[w]['spearman']:.3f} / {d[w]['rank_ap']:.3f}"
            for w in ("pair", "untrained", "hand")) + " |")
    return lines


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    today = {s: todays_scores(args.cache / s, args.splits) for s in screens}  # before D's taps are patched
    deep_taps()
    res = {}
    for screen in screens:
        folder = args.cache / screen
        res[screen] = {"today": today[screen], "deep": {"pair": deep_scores(folder, PAIR, args.splits),
                                                        "untrained": deep_scores(folder, UNTRAINED, args.splits),
                                                        "hand": today[screen]["hand"]}}
        log(f"{screen}: " + "; ".join(f"{way} pair {r['pair']['spearman']:.3f} / {r['pair']['rank_ap']:.3f}, "
                                      f"untrained {r['untrained']['spearman']:.3f} / {r['untrained']['rank_ap']:.3f}"
                                      for way, r in res[screen].items()))

    intro = (
        "Two 8-kimg `--info 10` runs (seeds 0 and 1; bench_suite tags `8kimg-info`, `8kimg-info-seed1`) read "
        "together as the default reads them, and the same two networks untrained read together, with the "
        "`stats` read-out's taps of today (64 channels of D's 16x16 block, 128 of its 8x8 block, 64 of its 4x4 "
        "block) and **deep** (all 128 of the 8x8 block and all 128 of the 4x4 block; 512 values either way). "
        "Handcrafted features: the stored scores. Read-out only (a patch of D's taps in the benchmark's "
        "process), every screen of the suite, embedded two screens side by side on the 2 cores with nothing "
        "else running.")
    lines = against_today(res, screens, "deep", "taps", intro,
                          f"written before any deep embedding was computed ({RULE})", "the taps stay as they are")
    publish("deep_taps", "Which of D's blocks the read-out takes: today's taps or the deeper ones (bench_deep_taps.py)",
            "\n".join(lines), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
