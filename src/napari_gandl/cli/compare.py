"""``gandl compare``: every method trained and embedded with the same budget, then Table 1."""

from __future__ import annotations

import sys
from pathlib import Path

from napari_gandl.analysis.compare import compare, md_table, tables
from napari_gandl.cli.common import (COMMANDS, StopRequest, advance, governed_threads, progress_bar, set_threads,
                                     thread_governor)
from napari_gandl.cli.gan_options import add_gan_options, gan_options
from napari_gandl.torch_utils.device import DEVICES


def cmd_compare(args) -> int:
    set_threads(args.threads)
    governor = thread_governor(args.threads, args.device)  # every method's training and embedding
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    bars: dict = {}

    def progress(method, stage, fraction, message):
        if governor is not None:
            message += f", {governed_threads(governor)}"
        if args.quiet:
            return
        key = (method, stage)
        if key not in bars:
            for bar in bars.values():
                bar.close()
            bars.clear()
            bars[key] = progress_bar(100, desc=f"{method} {stage}", unit="%")
        advance(bars[key], round(100 * fraction, 1), message)

    with StopRequest("gandl compare", "stopping after this training step or embedding batch") as stop:
        try:
            report = compare(args.plate, args.out, methods=methods, minutes=args.minutes, metadata=args.metadata,
                             weights=args.weights, zero_shot=args.zero_shot, device=args.device,
                             n_splits=args.splits, seed=args.seed, progress=progress, runs=args.runs,
                             gan_options=gan_options(args), should_stop=stop)
        finally:
            for bar in bars.values():
                bar.close()
    if report is None:
        print(f"gandl compare: stopped by {stop.name}; what was finished is kept (checkpoints, embedded batches): "
              f"the same command goes on from it", file=sys.stderr)
        return 128 + stop.signum
    for title, header, rows in tables(report):
        print(f"\n{title}\n" + md_table(header, rows))
    print(f"\nComparison: {Path(args.out) / 'compare.html'}")
    return 0


def register(subparsers) -> None:
    """Add ``compare`` to the ``gandl`` argparse subparsers."""
    p = subparsers.add_parser(
        "compare", help=COMMANDS["compare"][1],
        description="For each method: train it on PLATE for --minutes (if it trains), embed every site, "
                    "then score linear-SVM control tasks under well-grouped and leave-one-plate-out "
                    "splits. GAN-DL takes gandl train's GAN options (--info, --scale...), and gandl-untrained "
                    "the same, so it stays GAN-DL's networks untrained. Writes OUT/compare.md, compare.html, "
                    "compare.json and one folder per method. "
                    "Rerunning continues interrupted methods and skips finished ones.")
    p.add_argument("plate", metavar="PLATE", help="plate folder")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--methods", metavar="A,B,...",
                   help="comma-separated methods (default: every registered method that needs no weights "
                        "file, plus those that do when --weights is given)")
    p.add_argument("--minutes", type=float, default=2.0,
                   help="training budget of each trainable method, in minutes, shared by its runs (default 2)")
    p.add_argument("--runs", type=int, metavar="N",
                   help="train each trainable method N times, at seeds --seed, --seed + 1..., each for its share "
                        "of --minutes, and read its runs together (each site's features side by side, as gandl "
                        "embed reads a run folder of gandl train); default: as gandl train, two runs for GAN-DL "
                        "and its untrained control with the quick preset, one for the other methods")
    p.add_argument("--metadata", help="metadata.csv joined on site_id (default: the plate's own)")
    p.add_argument("--weights", metavar="FILE",
                   help="weights file for the methods that need one (densenet-*: densenet121-a639ec97.pth)")
    p.add_argument("--zero-shot", metavar="PLATE2",
                   help="also embed PLATE2 (another stain set, mapped by name) and classify its cell types")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--splits", type=int, default=10, help="repeated well-grouped splits per task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: the cores other processes leave free, measured every 10 s)")
    p.add_argument("--quiet", action="store_true")
    add_gan_options(p)  # GAN-DL's and gandl-untrained's networks, as gandl train takes them
    p.set_defaults(func=cmd_compare)
