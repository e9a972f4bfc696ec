"""Can a screen's own controls tell whether training helped?

A user's screen has no ground truth, but it has controls: C+ (Mock, UV-inactivated) and C- (active
virus), untreated. This asks whether they can pick, screen by screen, between the trained
discriminator and the same network at initialisation (the run's own untrained weights), so that
`gandl embed` would never read a screen worse than the untrained network does.

The criterion is the held-out separation of the controls along the SVM normal: the control wells
are dealt into 4 folds (C+ and C- wells dealt separately), 5 times with different shuffles; in each
fold analyse's SVM (C = 1) is fitted on the other folds' sites after plate centre-scaling, the
held-out sites are projected on its normal, and d' = |mean(C+) - mean(C-)| / sqrt((var(C+) +
var(C-)) / 2). A screen's d' is the mean over the 20 folds; the network with the larger d' is
picked. The picked network is then scored as bench_suite scored it (its cached scores).

    python benchmarks/bench_control_pick.py [--tags 16kimg,16kimg-seed1,16kimg-crops] [--screens texture,medium] [--no-report]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import NETWORK_SUFFIX, cached_embedding, log, paired_se, scored, suite_parser  # noqa: E402

FOLDS, REPEATS = 4, 5


def control_separation(embeddings: Path) -> float:
    """Mean held-out d' of the C+ and C- control sites along the SVM normal (see the module docstring)."""
    from napari_gandl.analysis.classify import LinearModel
    from napari_gandl.analysis.normalise import normalise
    from napari_gandl.tables import control_labels, load_embeddings, well_groups

    table = normalise(load_embeddings(embeddings), "centerscale")
    labels = control_labels(table.meta)
    controls = labels != ""
    X, y, wells = table.X[controls], (labels[controls] == "C+").astype(int), well_groups(table.meta)[controls]
    separations = []
    for repeat in range(REPEATS):
        rng = np.random.default_rng(repeat)
        fold_of = {}
        for label in (0, 1):
            names = np.unique(wells[y == label])
            rng.shuffle(names)
            fold_of.update({name: i % FOLDS for i, name in enumerate(names)})
        fold = np.array([fold_of[w] for w in wells])
        for k in range(FOLDS):
            held = fold == k
            s = LinearModel(C=1.0, seed=repeat).fit(X[~held], y[~held]).decision_function(X[held])
            pos, neg = s[y[held] == 1], s[y[held] == 0]
            separations.append(abs(pos.mean() - neg.mean()) / np.sqrt((pos.var() + neg.var()) / 2))
    return float(np.mean(separations))


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("--tags", default="16kimg,16kimg-seed1,16kimg-crops", help="bench_suite tags whose runs are judged")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    lines = ["Per screen, the held-out separation d' of the C+ and C- controls along the SVM normal, for the "
             "trained discriminator and the same network untrained, and the compound ranking (Spearman / "
             "ranking AP, as bench_suite scores it) of each. **Picked**: the network with the larger d'.", ""]
    for tag in args.tags.split(","):
        rows = []
        for screen in screens:
            folder = args.cache / screen
            row = {"screen": screen}
            for network in NETWORK_SUFFIX:
                path = cached_embedding(args.cache, screen, tag, network)
                row[network] = {"d": control_separation(path), **scored(path, folder / "plate", args.splits)}
            row["picked"] = max(NETWORK_SUFFIX, key=lambda n: row[n]["d"])
            rows.append(row)
            log(f"{screen} {tag}: d' {row['GAN-DL']['d']:.2f} trained, {row['untrained']['d']:.2f} untrained")
        lines += [f"**Runs `{tag}`** (seed {1 if tag.endswith('-seed1') else 0}):", "",
                  "| screen | d' trained / untrained | Spearman trained / untrained | ranking AP trained / untrained "
                  "| picked |", "|---|---|---|---|---|"]
        for r in rows:
            g, u = r["GAN-DL"], r["untrained"]
            lines.append(f"| {r['screen']} | {g['d']:.2f} / {u['d']:.2f} | {g['spearman']:.3f} / {u['spearman']:.3f} "
                         f"| {g['rank_ap']:.3f} / {u['rank_ap']:.3f} | {r['picked']} |")
        summary = []
        for key, name in (("spearman", "Spearman"), ("rank_ap", "ranking AP")):
            trained = np.array([r["GAN-DL"][key] for r in rows])
            picked = np.array([r[r["picked"]][key] for r in rows])
            d = picked - trained
            summary.append(f"{name} {picked.mean():.3f} against {trained.mean():.3f} always trained "
                           f"(difference {d.mean():+.3f} ± {2 * paired_se(d):.3f})")
        agree = sum((r["GAN-DL"]["d"] > r["untrained"]["d"]) == (r["GAN-DL"]["spearman"] > r["untrained"]["spearman"])
                    for r in rows)
        hits = sum(r[r["picked"]]["true_hits"] for r in rows), sum(r[r["picked"]]["false_hits"] for r in rows)
        lines += ["", f"The untrained network is picked on {sum(r['picked'] == 'untrained' for r in rows)} of "
                  f"{len(rows)} screens. The picked network's suite means: " + "; ".join(summary)
                  + f"; true / false hits {hits[0]} / {hits[1]} against "
                  f"{sum(r['GAN-DL']['true_hits'] for r in rows)} / {sum(r['GAN-DL']['false_hits'] for r in rows)}. "
                  f"The larger d' is the better Spearman on {agree} of {len(rows)} screens.", ""]
    body = "\n".join(lines)
    publish("control_pick", "Can the controls tell whether training helped? (bench_control_pick.py)",
            body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
