"""``gandl demo``: the synthetic screen (or a plate) through train, embed and analyse."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_gandl.cli.common import COMMANDS
from napari_gandl.plate import open_plate
from napari_gandl.synthetic import PRESETS, write_sample_plate
from napari_gandl.torch_utils.device import DEVICES
from napari_gandl.torch_utils.runs import missing_runs, planned_runs


def demo(args: argparse.Namespace) -> int:
    """Synthetic screen (or PLATE) -> train the quick preset -> embed -> analyse.

    Each step is the ``gandl`` subcommand printed before it runs, so the demo
    doubles as a worked example of the command line.
    """
    out = Path(args.out)
    if args.plate is None:
        plate_root = out / "plate"
        if not (plate_root / "metadata.csv").is_file():
            print(f"Writing the synthetic sample screen ({args.preset} preset) to {plate_root} ...")
            write_sample_plate(plate_root, preset=args.preset, seed=args.seed)
    else:
        plate_root = Path(args.plate)
    plate = open_plate(plate_root)
    print(f"Plate: {plate.root}: {plate.n_sites} sites, {plate.n_channels} stains "
          f"({', '.join(plate.channel_names)}), tiles {plate.tile_shape[0]}x{plate.tile_shape[1]}")

    run_dir, embeddings, report = out / "run", out / "embeddings.parquet", out / "report"
    steps = []
    started = planned_runs(run_dir)
    if started and not missing_runs(run_dir):
        print(f"Using the model already trained in {run_dir} (delete that folder to train again).")
    else:
        steps.append(["train", str(plate_root), "--out", str(run_dir), "--preset", "quick",
                      "--minutes", str(args.minutes), "--device", args.device, "--seed", str(args.seed)]
                     + (["--resume"] if started else []))
    steps.append(["embed", str(plate_root), "--checkpoint", str(run_dir), "--out", str(embeddings),
                  "--device", args.device])
    analyse = ["analyse", str(embeddings), "--out", str(report)]
    if plate.metadata_path is not None:
        analyse += ["--metadata", str(plate.metadata_path)]
    steps.append(analyse)
    for step in steps:
        print("\n$ gandl " + " ".join(step), flush=True)
        from napari_gandl.cli import main

        code = main(step)
        if code > 128:  # stopped by a signal: the step said what it kept
            print("gandl demo: stopped; the same gandl demo command goes on from what was finished", file=sys.stderr)
        if code:
            return code
    print(f"\nDone. Report: {report / 'report.html'}")
    print(f"Open the plate in napari, with the embedding and the analysis docks:  {_gandl()} view {out}")
    return 0


def _gandl() -> str:
    """How the user called ``gandl`` (``.venv/bin/gandl`` from the README), to print commands that work."""
    called = Path(sys.argv[0])
    return str(called) if called.name == "gandl" else "gandl"


def register(sub) -> None:
    p = sub.add_parser("demo", help=COMMANDS["demo"][1])
    p.add_argument("plate", nargs="?", help="plate folder to use instead of the synthetic screen")
    p.add_argument("--out", default="gandl-demo", help="folder for everything the demo writes")
    p.add_argument("--preset", default="demo", choices=list(PRESETS),
                   help="which synthetic screen (docs/synthetic.md)")
    p.add_argument("--minutes", type=float, default=5.0,
                   help="training time of the quick preset (split into its two runs, as gandl train does)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="auto (GPU when there is one), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=demo)
