"""Whether robust plate normalisation ranks compounds better: pycytominer's ``mad_robustize`` instead of
``gandl analyse``'s mean / sd centre-scaling.

Per plate and feature, today's ``centerscale`` subtracts the untreated controls' mean and divides by their
standard deviation. The variant subtracts the controls' median and divides by 1.4826 times their median
absolute deviation (the standard deviation of a normal sample, estimated so that a few outlying control
sites do not set it), with today's floor on the scale (1 % of the feature's standard deviation over all
controls). Everything else in the analysis is unchanged: the variant is a patch of the normalisation in
this process, not an option of ``gandl analyse``. Every read-out is normalised the same way: the default
pair (bench_suite tags ``8kimg-info``, ``8kimg-info-seed1`` read together), the same two networks untrained,
and handcrafted features. Analysis only, on the suite's cached embeddings; the held-out screens are never
used. A rule written before any embedding was scored this way decides (bench_deep_taps' six lines).

    python benchmarks/bench_robust_scale.py [--no-report]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_deep_taps import RULE, against_today, todays_embeddings  # noqa: E402
from bench_suite import scored, suite_parser  # noqa: E402

MAD_TO_SD = 1.4826  # 1 / the normal distribution's 0.75 quantile


def mad_robustize_on_controls(X, meta, pert_col="treatment", control_key=None, batch_col=None, eps=1e-6,
                              min_controls=2):
    """Per batch: (x - median of the controls) / (1.4826 * their MAD), feature-wise; the scale floored as
    ``centerscale_on_controls`` floors it."""
    from napari_gandl.analysis.normalise import _batch_controls, control_mask
    from napari_gandl.tables import batch_labels

    X = np.asarray(X)
    controls = control_mask(meta, pert_col, control_key)
    out = np.empty(X.shape, dtype=np.float32)
    floor = np.maximum(0.01 * X[controls].std(axis=0, dtype=np.float64), eps) if controls.sum() > 1 else eps
    for _, rows, ctrl in _batch_controls(batch_labels(meta, batch_col), controls, min_controls):
        ref = X[ctrl].astype(np.float64)
        median = np.median(ref, axis=0)
        scale = MAD_TO_SD * np.median(np.abs(ref - median), axis=0)
        out[rows] = (X[rows] - median) / np.maximum(scale, floor)
    return out


def robust(embedding: Path) -> Path:
    """A link ``emb-mad-NAME.parquet`` to ``embedding``, so that its scores are cached apart from today's."""
    link = embedding.parent / f"emb-mad-{embedding.stem[4:]}.parquet"
    if not link.exists():
        link.symlink_to(embedding.name)
    return link


def main(argv=None) -> int:
    import importlib

    normalisation = importlib.import_module("napari_gandl.analysis.normalise")  # the module, not its function
    ap = suite_parser(__doc__, splits=True)
    args = ap.parse_args(argv)
    screens = args.screens.split(",")

    def scores(read=Path):  # screen -> read-out -> the scores of ``read`` of its embedding
        return {s: {who: scored(read(path), args.cache / s / "plate", args.splits)
                    for who, path in todays_embeddings(args.cache / s).items()} for s in screens}

    today = scores()
    centerscale = normalisation.centerscale_on_controls
    normalisation.centerscale_on_controls = mad_robustize_on_controls
    try:
        robustly = scores(robust)
    finally:
        normalisation.centerscale_on_controls = centerscale
    res = {s: {"today": today[s], "robust": robustly[s]} for s in screens}
    intro = (
        "Every read-out of the suite's default comparison (two 8-kimg `--info 10` runs read together, the same "
        "two networks untrained read together, handcrafted features) scored by `gandl analyse` as today (per "
        "plate, the untreated controls' mean and standard deviation) and with **robust** plate normalisation "
        "(the controls' median and 1.4826 times their median absolute deviation: pycytominer's `mad_robustize`). "
        "Analysis only, on cached embeddings, two halves of the suite scored side by side with nothing else "
        "running.")
    lines = against_today(res, screens, "robust", "normalisation", intro,
                          f"written before any embedding was scored this way ({RULE})",
                          "`gandl analyse` keeps centre-scaling on the controls' mean and standard deviation")
    publish("robust_scale", "Robust plate normalisation (median and MAD) before the analysis (bench_robust_scale.py)",
            "\n".join(lines), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
