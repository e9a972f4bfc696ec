"""Whether reading each site at two scales ranks compounds better: the read-out of today and a second read of
the site downsampled twice as much, side by side.

``gandl embed`` reads a site at its run's training scale (full resolution on every suite screen) in
training-resolution squares, each holding a cell or a few. The variant also reads the site downsampled by a
further 2, so that each square covers twice the width (a cell's neighbourhood), and a site's row is both reads
side by side: the default pair's 1,024 columns plus 1,024 more. The untrained pair is read the same two ways;
handcrafted features are the stored ones. Read-out only: bench_suite's cached 8-kimg ``--info 10`` runs at
seeds 0 and 1 of every suite screen (tags ``8kimg-info``, ``8kimg-info-seed1``), the coarser read a patch of
the loaded runs' scale in this process, not an option of ``gandl embed``. A rule written before any coarser
embedding was computed decides (bench_deep_taps' six lines). The held-out screens are never used.

Embed in two lanes, then score and write the section:

    python benchmarks/bench_two_scales.py --screens texture,...,plate-background-density --no-report
    python benchmarks/bench_two_scales.py --screens mixed-weak,...,large-rare --no-report
    python benchmarks/bench_two_scales.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_deep_taps import PAIR, RULE, UNTRAINED, against_today, todays_embeddings, todays_scores  # noqa: E402
from bench_suite import embed, log, scored, suite_parser  # noqa: E402

FACTOR = 2  # the second read's downsampling, on top of the run's own


def coarser_reads() -> None:
    """Patch the loaded runs, in this process, to read sites downsampled ``FACTOR`` times more than they
    were trained on."""
    from napari_gandl.gan.checkpoint import GANModel

    init = GANModel.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.scale *= FACTOR

    GANModel.__init__ = patched


def two_scales(folder: Path, tags: tuple[str, str], today: Path) -> Path:
    """The runs ``tags`` read together at the coarser scale, beside ``today``'s read of them (its columns
    first), written once as ``emb-twoscales-...parquet``."""
    from napari_gandl.tables import load_embeddings, write_table

    out = folder / f"emb-twoscales-{'+'.join(tags)}.parquet"
    if not out.is_file():
        coarse = load_embeddings(embed(folder / "plate", "gandl", [folder / f"gandl-{t}" for t in tags],
                                       folder / f"emb-coarse-{'+'.join(tags)}.parquet"))
        fine = load_embeddings(today)
        if not np.array_equal(fine.meta["site_id"].to_numpy(), coarse.meta["site_id"].to_numpy()):
            raise ValueError(f"{folder}: the two reads list the sites in different orders")
        write_table(fine.with_features(np.hstack([fine.X, coarse.X]),
                                       list(fine.features) + [f"coarse_{f}" for f in coarse.features]), out)
    return out


def main(argv=None) -> int:
    import torch

    ap = suite_parser(__doc__, splits=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    screens = args.screens.split(",")
    today = {s: todays_scores(args.cache / s, args.splits) for s in screens}  # before the runs' scale is patched
    coarser_reads()
    res = {}
    for screen in screens:
        folder, plate = args.cache / screen, args.cache / screen / "plate"
        fine = todays_embeddings(folder)
        both = {who: scored(two_scales(folder, tags, fine[who]), plate, args.splits)
                for who, tags in (("pair", PAIR), ("untrained", UNTRAINED))}
        res[screen] = {"today": today[screen], "two scales": {**both, "hand": today[screen]["hand"]}}
        log(f"{screen}: " + "; ".join(f"{way} pair {r['pair']['spearman']:.3f} / {r['pair']['rank_ap']:.3f}, "
                                      f"untrained {r['untrained']['spearman']:.3f} / {r['untrained']['rank_ap']:.3f}"
                                      for way, r in res[screen].items()))
    intro = (
        "Two 8-kimg `--info 10` runs (seeds 0 and 1; bench_suite tags `8kimg-info`, `8kimg-info-seed1`) read "
        "together as the default reads them, and the same two networks untrained read together: today's read of "
        "each site (at the runs' training scale, full resolution on every suite screen), and **two scales**: that "
        f"read beside a second one of the site downsampled {FACTOR}x more, so each training-resolution square "
        "covers twice the width (2,048 columns instead of 1,024). Handcrafted features: the stored scores. "
        "Read-out only (a patch of the loaded runs' scale in the benchmark's process), every screen of the suite, "
        "embedded two screens side by side on the 2 cores with nothing else running.")
    lines = against_today(res, screens, "two scales", "read-out", intro,
                          f"written before any coarser embedding was computed ({RULE})",
                          "`gandl embed` reads each site once, at the run's training scale")
    publish("two_scales", "Reading each site at two scales (bench_two_scales.py)", "\n".join(lines),
            write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
