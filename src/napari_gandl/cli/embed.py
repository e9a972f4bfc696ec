"""``gandl embed``: any registered method over every site of a plate."""

from __future__ import annotations

import sys

from napari_gandl.cli.common import COMMANDS, ReportedProgress, governed_threads, set_threads, thread_governor
from napari_gandl.embedding.methods.gandl import LAYERS, ORIENTATIONS, SAMPLINGS
from napari_gandl.embedding.pipeline import embed_plate
from napari_gandl.embedding.registry import METHODS, load_embedder, method_names
from napari_gandl.plate import open_plate
from napari_gandl.torch_utils.device import DEVICES


def cmd_embed(args) -> int:
    set_threads(args.threads)
    governor = None if args.scheduler else thread_governor(args.threads, args.device)
    plate = open_plate(args.plate)
    options = {k: getattr(args, k) for k in ("layer", "sampling", "orientations") if getattr(args, k) is not None}
    if options and args.method != "gandl":
        raise ValueError(f"--{next(iter(options))} is an option of --method gandl, not of {args.method}")
    embedder = load_embedder(args.method, args.checkpoint, plate, args.device, **options)
    with ReportedProgress(f"embed {args.method}", "site") as report:

        def progress(done, total):
            if report.bar is None and done:
                print(f"resuming: {done} of {total} sites already embedded by an interrupted run", file=sys.stderr)
            report(done, total, governed_threads(governor) if governor is not None else None)

        out = embed_plate(plate, embedder, out_path=args.out, batch_size=args.batch,
                          scheduler=args.scheduler, stain_map=args.stain_map, progress=progress)
    print(out)
    return 0


def register(subparsers) -> None:
    """Add ``embed`` to the ``gandl`` argparse subparsers."""
    names = method_names()
    e = subparsers.add_parser(
        "embed", help=COMMANDS["embed"][1],
        description="Write one row per site: site_id, every metadata column, then f000.. . Resumes: "
                    "rerunning the same command after an interruption keeps the batches already written. "
                    "Methods: " + "; ".join(f"{n}: {METHODS[n].help}" for n in names),
    )
    e.add_argument("plate", metavar="PLATE", help="plate folder")
    e.add_argument("--method", default="gandl", choices=names, help="embedding method (default gandl)")
    e.add_argument("--checkpoint", metavar="RUN_OR_WEIGHTS", action="append",
                   help="run folder or weights file of the method (gandl: the folder of gandl train); "
                        "given more than once, the runs are read together: each site's row holds every "
                        "run's features side by side (e.g. two runs trained with different --seed)")
    e.add_argument("--out", required=True, help="output parquet file")
    e.add_argument("--stain-map", metavar="auto|FILE",
                   help="map the plate's stains onto the model's by name (auto) or by a CSV with columns "
                        "model_stain,plate_stain (e.g. RxRx1 into an RxRx19a model)")
    e.add_argument("--batch", type=int, default=32, help="sites per batch (default 32)")
    e.add_argument("--device", default="auto", choices=DEVICES)
    e.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask.distributed scheduler address, e.g. tcp://127.0.0.1:8786")
    e.add_argument("--layer", default=None, choices=LAYERS,
                   help="gandl only: stats: mean/std over positions of D's mid-level activations (default "
                        "when D is wide enough); pool: D's last conv averaged over positions; "
                        "fc: D's penultimate fully connected layer (as in the GAN-DL paper)")
    e.add_argument("--sampling", default=None, choices=SAMPLINGS,
                   help="gandl only: tiles covering the site, or crops centred on its cells (profile: "
                        "the cells' mean); default: the run's training")
    e.add_argument("--orientations", type=int, default=None, choices=ORIENTATIONS,
                   help="gandl only: 8 averages each square's (or crop's) features over its 8 orientations "
                        "(turned by 90 degrees, mirrored; 8 times D's work); default 1")
    e.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: the cores other processes leave free, measured every 10 s)")
    e.set_defaults(func=cmd_embed)
