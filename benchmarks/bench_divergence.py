"""Which runs end with a blown-up generator, and how they embed: the evidence for ``gandl train``'s warning.

For every trained run of the benchmark suite's cache that bench_suite scored (``<screen>/gandl-<tag>``
with ``results-<tag>.json``; untrained networks, bench_d_average's copies of runs and bench_recover's
runs that went on from others left out), the
ratio of the last KID in its ``metrics.csv`` to its lowest (the 0-kimg measurement left out, a lowest
value under 1 counted as 1), whether :func:`napari_gandl.gan.metrics.divergence_note` warns, and the
run's GAN-DL scores. Nothing is trained: it reads what bench_suite left.

With ``--code-recovery`` it writes another section instead, on the runs trained with ``--info``
(whose generator is expected to get less realistic): whether the warning tells the runs that rank
compounds worse than their untrained twin from those that do not.

    python benchmarks/bench_divergence.py [--code-recovery] [--no-report]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import suite_parser  # noqa: E402


def runs(cache: Path) -> list[dict]:
    from napari_gandl.gan.metrics import DIVERGED_KID_RATIO, divergence_note, kid_ratio

    rows = []
    for results in sorted(cache.glob("*/results-*.json")):
        tag = results.stem[len("results-"):]
        run = results.parent / f"gandl-{tag}"
        if "-dema-" in tag or "-more" in tag or not (run / "metrics.csv").is_file():
            continue
        history = pd.read_csv(run / "metrics.csv")
        ratio = kid_ratio(history["kimg"], history["kid"])
        saved = json.loads(results.read_text())
        scores, untrained = saved["results"]["GAN-DL"], saved["results"]["untrained"]
        rows.append({"screen": results.parent.name, "tag": tag, "ratio": ratio,
                     "warned": divergence_note(history["kimg"], history["kid"]) is not None,
                     "threshold": DIVERGED_KID_RATIO, "info": float(saved["config"].get("info", 0.0)),
                     **{k: scores[k] for k in ("acc", "spearman", "rank_ap")},
                     **{f"untrained_{k}": untrained[k] for k in ("spearman", "rank_ap")}})
    return rows


def code_recovery_section(rows: list[dict]) -> str:
    """Runs trained with --info, warned or not: how they rank compounds against their untrained twin."""
    lines = ["Every scored suite run trained with code recovery (`--info`) in the cache, grouped by whether "
             "`gandl train` warns that its generator blew up at the end: GAN-DL's Spearman and compound-ranking "
             "AP minus those of the same networks untrained (its twin at the same seed), mean over the runs, and "
             "how many runs rank compounds clearly worse than their twin (AP below it by more than 0.05).", "",
             "| runs | count | Spearman − untrained | AP − untrained | AP more than 0.05 below untrained |",
             "|---|---|---|---|---|"]
    for label, group in (("warned", [r for r in rows if r["warned"]]),
                         ("not warned", [r for r in rows if not r["warned"]])):
        if not group:
            continue
        ds = np.array([r["spearman"] - r["untrained_spearman"] for r in group])
        da = np.array([r["rank_ap"] - r["untrained_rank_ap"] for r in group])
        lines.append(f"| {label} | {len(group)} | {ds.mean():+.3f} | {da.mean():+.3f} | {int((da < -0.05).sum())} |")
    lines += ["", "The warned runs:", "", "| screen | run | last / lowest KID | Spearman (untrained) | "
              "rank AP (untrained) |", "|---|---|---|---|---|"]
    lines += [f"| {r['screen']} | {r['tag']} | {r['ratio']:,.0f} | "
              f"{r['spearman']:.3f} ({r['untrained_spearman']:.3f}) | "
              f"{r['rank_ap']:.3f} ({r['untrained_rank_ap']:.3f}) |" for r in rows if r["warned"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = suite_parser(__doc__, screens=False)
    ap.add_argument("--code-recovery", action="store_true",
                    help="the section on the runs trained with --info instead")
    args = ap.parse_args(argv)
    rows = sorted(runs(args.cache), key=lambda r: -r["ratio"])
    if args.code_recovery:
        publish("divergence_info", "Runs with code recovery whose generator blew up (bench_divergence.py "
                "--code-recovery)", code_recovery_section([r for r in rows if r["info"] > 0]),
                write=not args.no_report)
        return 0
    warned = [r for r in rows if r["warned"]]
    kept = [r for r in rows if not r["warned"]]
    lines = [f"Every scored suite run in the cache ({len(rows)}), highest ratio first: the last KID over the "
             f"run's lowest, whether `gandl train` warns (ratio over {rows[0]['threshold']:g}), and GAN-DL's "
             "C+/C- %, Spearman and compound-ranking AP on that run.\n",
             "| screen | run | last / lowest KID | warned | C+/C- % | Spearman | rank AP |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['screen']} | {r['tag']} | {r['ratio']:,.1f} | {'yes' if r['warned'] else ''} | "
              f"{100 * r['acc']:.1f} | {r['spearman']:.3f} | {r['rank_ap']:.3f} |" for r in rows]
    lines.append(f"\n{len(warned)} runs warned (ratios {min(r['ratio'] for r in warned):,.0f} to "
                 f"{max(r['ratio'] for r in warned):,.0f}); the other {len(kept)} ended at most "
                 f"{max(r['ratio'] for r in kept):,.1f} times their lowest KID.\n" if warned and kept else "")
    body = "\n".join(lines) + "\n"
    publish("divergence", "Runs whose generator blew up at the end (bench_divergence.py)",
            body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
