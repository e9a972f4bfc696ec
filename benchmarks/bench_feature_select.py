"""Whether dropping redundant features before ``gandl analyse`` ranks compounds better: correlation-threshold
feature selection, as profiling pipelines do it (pycytominer's ``correlation_threshold``, 0.9).

Per screen and read-out, the embedding is centre-scaled on the untreated controls of each plate (as ``gandl
analyse`` does), the features' correlations are taken over the control sites, and features are visited in order
of how many others they are correlated with beyond |r| = 0.9 (fewest first): one is kept when its |r| with every
feature kept so far is at most 0.9. The kept columns of the raw embedding are then scored exactly as today
(bench_suite.scored). Every read-out is filtered the same way: the default pair (bench_suite tags
``8kimg-info``, ``8kimg-info-seed1`` read together), the same two networks untrained, and handcrafted features.
Analysis only, on the suite's cached embeddings; the held-out screens are never used. A rule written before any
filtered embedding was scored decides (``RULE``, in the section); it is bench_deep_taps' rule.

    python benchmarks/bench_feature_select.py [--no-report]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_deep_taps import RULE, against_today, todays_embeddings  # noqa: E402
from bench_suite import log, scored, suite_parser  # noqa: E402

THRESHOLD = 0.9


def uncorrelated_columns(X: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Indices of the columns kept by greedy correlation-threshold selection (fewest high correlations
    first), in their original order."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(np.corrcoef(X, rowvar=False))
    r = np.nan_to_num(r, nan=0.0)
    np.fill_diagonal(r, 0.0)
    high = r > threshold
    kept: list[int] = []
    for j in np.argsort(high.sum(axis=0), kind="stable"):
        if not high[j, kept].any():
            kept.append(int(j))
    return np.sort(np.array(kept, dtype=int))


def filtered(embedding: Path) -> Path:
    """``embedding`` with only the columns :func:`uncorrelated_columns` keeps (over the centre-scaled control
    sites), written once beside it as ``emb-fs90-NAME.parquet``."""
    from napari_gandl.analysis.normalise import centerscale_on_controls, control_mask
    from napari_gandl.tables import load_embeddings, write_table

    out = embedding.parent / f"emb-fs90-{embedding.stem[4:]}.parquet"
    if not out.is_file():
        table = load_embeddings(embedding)
        Z = centerscale_on_controls(table.X, table.meta)
        keep = uncorrelated_columns(Z[control_mask(table.meta)])
        write_table(table.with_features(table.X[:, keep], [table.features[i] for i in keep]), out)
        log(f"{embedding.parent.name}: {embedding.name}: kept {len(keep)} of {table.X.shape[1]} features")
    return out


def main(argv=None) -> int:
    from napari_gandl.tables import load_embeddings

    ap = suite_parser(__doc__, splits=True)
    args = ap.parse_args(argv)
    screens = args.screens.split(",")
    res, kept = {}, {}
    for screen in screens:
        folder = args.cache / screen
        plate = folder / "plate"
        res[screen] = {way: {} for way in ("today", "filtered")}
        for who, path in todays_embeddings(folder).items():
            res[screen]["today"][who] = scored(path, plate, args.splits)
            out = filtered(path)
            res[screen]["filtered"][who] = scored(out, plate, args.splits)
            widths = (load_embeddings(out).X.shape[1], load_embeddings(path).X.shape[1])
            kept.setdefault(who, []).append(widths)  # (kept, of)
    intro = (
        "Every read-out of the suite's default comparison (two 8-kimg `--info 10` runs read together, the same "
        "two networks untrained read together, handcrafted features) scored by `gandl analyse` as today and "
        f"after correlation-threshold feature selection (|r| > {THRESHOLD} over the centre-scaled control "
        "sites; features with the fewest such correlations kept first). Features kept, mean over the screens: "
        + ", ".join(f"{who} {np.mean([k for k, _ in n]):.0f} of {np.mean([t for _, t in n]):.0f}"
                    for who, n in kept.items())
        + ". Analysis only, on cached embeddings, nothing else running.")
    lines = against_today(res, screens, "filtered", "features", intro,
                          f"written before any filtered embedding was scored ({RULE})",
                          "`gandl analyse` keeps every feature")
    publish("feature_select", "Dropping correlated features before the analysis (bench_feature_select.py)",
            "\n".join(lines), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
