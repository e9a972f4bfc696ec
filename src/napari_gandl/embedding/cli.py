"""The ``gandl embed`` subcommand: any registered method over every site of a plate."""

from __future__ import annotations

import sys
import time


def cmd_embed(args) -> int:
    from napari_gandl.gan.cli import _progress_bar
    from napari_gandl.plate import open_plate

    from .pipeline import embed_plate
    from .registry import load_embedder

    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    plate = open_plate(args.plate)
    options = {k: getattr(args, k) for k in ("layer", "sampling") if getattr(args, k) is not None}
    if options and args.method != "gandl":
        raise ValueError(f"--{next(iter(options))} is an option of --method gandl, not of {args.method}")
    embedder = load_embedder(args.method, args.checkpoint, plate, args.device, **options)
    tty = sys.stderr.isatty()
    last = [0.0]

    def progress(done, total):
        if last[0] == 0.0 and done:
            print(f"resuming: {done} of {total} sites already embedded by an interrupted run", file=sys.stderr)
        now = time.time()
        if done < total and now - last[0] < (0.5 if tty else 10.0):
            return
        last[0] = now
        print(("\r" if tty else "") + _progress_bar(done / max(total, 1), f"{done}/{total} sites"),
              end="" if tty else "\n", file=sys.stderr, flush=True)

    out = embed_plate(args.plate, embedder, out_path=args.out, batch_size=args.batch,
                      scheduler=args.scheduler, stain_map=args.stain_map, progress=progress)
    if tty:
        print(file=sys.stderr)
    print(out)
    return 0


def register(subparsers) -> None:
    """Add ``embed`` to the ``gandl`` argparse subparsers."""
    from .registry import METHODS, method_names

    names = method_names()
    e = subparsers.add_parser(
        "embed", help="embed every site of a plate with a registered method (GAN-DL, handcrafted, ...)",
        description="Write one row per site: site_id, every metadata column, then f000.. . Resumes: "
                    "rerunning the same command after an interruption keeps the batches already written. "
                    "Methods: " + "; ".join(f"{n}: {METHODS[n].help}" for n in names),
    )
    e.add_argument("plate", metavar="PLATE", help="plate folder")
    e.add_argument("--method", default="gandl", choices=names, help="embedding method (default gandl)")
    e.add_argument("--checkpoint", metavar="RUN_OR_WEIGHTS",
                   help="run folder or weights file of the method (gandl: the folder of gandl train)")
    e.add_argument("--out", required=True, help="output parquet file")
    e.add_argument("--stain-map", metavar="auto|FILE",
                   help="map the plate's stains onto the model's by name (auto) or by a CSV with columns "
                        "model_stain,plate_stain (e.g. RxRx1 into an RxRx19a model)")
    e.add_argument("--batch", type=int, default=32, help="sites per batch (default 32)")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    e.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask.distributed scheduler address, e.g. tcp://127.0.0.1:8786")
    e.add_argument("--layer", default=None, choices=["stats", "pool", "fc"],
                   help="gandl only: stats: mean/std over positions of D's mid-level activations (default "
                        "when D is wide enough); pool: D's last conv averaged over positions; "
                        "fc: D's penultimate fully connected layer (as in the GAN-DL paper)")
    e.add_argument("--sampling", default=None, choices=["tiles", "crops"],
                   help="gandl only: tiles covering the site, or crops centred on its cells (profile: "
                        "the cells' mean, std and fraction of outlying cells); default: the run's training")
    e.add_argument("--threads", type=int, help="CPU threads for torch")
    e.set_defaults(func=cmd_embed)
