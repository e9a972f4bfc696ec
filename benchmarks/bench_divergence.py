"""Which runs end with a blown-up generator, and how they embed: the evidence for ``gandl train``'s warning.

For every trained run of the benchmark suite's cache that bench_suite scored (``<screen>/gandl-<tag>``
with ``results-<tag>.json``; untrained networks, bench_d_average's copies of runs and bench_recover's
runs that went on from others left out), the
ratio of the last KID in its ``metrics.csv`` to its lowest (the 0-kimg measurement left out, a lowest
value under 1 counted as 1), whether :func:`napari_gandl.gan.metrics.divergence_note` warns, and the
run's GAN-DL scores. Nothing is trained: it reads what bench_suite left.

    python benchmarks/bench_divergence.py [--no-report]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
        scores = json.loads(results.read_text())["results"]["GAN-DL"]
        rows.append({"screen": results.parent.name, "tag": tag, "ratio": ratio,
                     "warned": divergence_note(history["kimg"], history["kid"]) is not None,
                     "threshold": DIVERGED_KID_RATIO, **{k: scores[k] for k in ("acc", "spearman", "rank_ap")}})
    return rows


def main(argv=None) -> int:
    ap = suite_parser(__doc__, screens=False)
    args = ap.parse_args(argv)
    rows = sorted(runs(args.cache), key=lambda r: -r["ratio"])
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
