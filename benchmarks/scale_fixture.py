"""Build a screen of RxRx19a's size from a small plate, without copying a pixel.

RxRx19a has 305,520 sites (1.5 M PNG tiles, 445 GB). This script writes a folder in the same
layout, ``metadata.csv`` + ``images/{experiment}/Plate{n}/{well}_s{site}_w{channel}.png``, whose
tiles are hard links to the tiles of any small plate in the RxRx layout: by default 4 experiments
(HRCE-1, HRCE-2, VERO-1, VERO-2) x 50 plates x 384 wells x 4 sites = 307,200 sites. A hard link
costs a directory entry, not a copy, so the folder takes a few tens of MB next to its source, and
every file is a real PNG that a reader opens and decodes like any other.

Each well of the new screen takes the tiles and metadata (cell type, condition, compound, dose)
of one well of the source, chosen among the source wells of the experiment's cell type (the part
of its name before ``-``) when the source has such wells, in an order that shifts from plate to
plate so that no two plates look alike. ``metadata.csv`` is written last: a folder that has one is
complete, and running the script again on it does nothing.

    python benchmarks/scale_fixture.py SOURCE DEST [--experiments HRCE-1,HRCE-2,VERO-1,VERO-2]
                                       [--plates 50] [--wells 384] [--sites 4]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

RXRX19A_EXPERIMENTS = ("HRCE-1", "HRCE-2", "VERO-1", "VERO-2")
WELLS_384 = [f"{row}{col:02d}" for row in "ABCDEFGHIJKLMNOP" for col in range(1, 25)]
KEY = ["experiment", "plate", "well", "site"]


def source_wells(source: Path) -> tuple[pd.DataFrame, list[int]]:
    """The source's sites (its metadata.csv, one row per site, grouped by well) and its channels."""
    meta = pd.read_csv(source / "metadata.csv", dtype={"experiment": str, "well": str})
    meta = meta.sort_values(KEY).reset_index(drop=True)
    first = meta.iloc[0]
    folder = source / "images" / first["experiment"] / f"Plate{first['plate']}"
    prefix = f"{first['well']}_s{first['site']}_w"
    channels = sorted(int(p.name[len(prefix):-4]) for p in folder.glob(f"{prefix}*.png"))
    if not channels:
        raise SystemExit(f"{folder}: no {prefix}<channel>.png tiles; the source must be in the RxRx layout")
    return meta, channels


def scale_metadata(meta: pd.DataFrame, experiments, plates: int, wells: int, sites: int) -> pd.DataFrame:
    """One row per site of the new screen, with the source site whose tiles and metadata it takes
    (``source_row``, a row of ``meta``)."""
    if wells > len(WELLS_384):
        raise SystemExit(f"--wells {wells}: at most {len(WELLS_384)} wells per plate")
    meta = meta.assign(_well_key=meta["experiment"] + "|" + meta["plate"].astype(str) + "|" + meta["well"])
    by_well = meta.groupby("_well_key", sort=False).indices       # source well -> its rows, in site order
    well_keys = list(by_well)
    cell_type = meta.groupby("_well_key", sort=False)["cell_type"].first() if "cell_type" in meta else None
    parts = []
    for e, experiment in enumerate(experiments):
        pool = [k for k in well_keys if cell_type is not None and cell_type[k] == experiment.split("-")[0]]
        pool = np.array(pool or well_keys, dtype=object)
        plate = np.repeat(np.arange(1, plates + 1), wells * sites)
        well = np.tile(np.repeat(np.arange(wells), sites), plates)
        site = np.tile(np.arange(1, sites + 1), plates * wells)
        # a shift of 7 wells (and of the experiment) per plate: neighbouring plates differ
        source_well = pool[(well + 7 * (plate - 1) + 3 * e) % len(pool)]
        rows = np.array([by_well[k][(s - 1) % len(by_well[k])] for k, s in zip(source_well, site)])
        parts.append(pd.DataFrame({"experiment": experiment, "plate": plate, "well": np.asarray(WELLS_384)[well],
                                   "site": site, "source_row": rows}))
    sites_table = pd.concat(parts, ignore_index=True)
    described = meta.drop(columns=[*KEY, "_well_key", "site_id", "well_id"], errors="ignore")
    sites_table = pd.concat([sites_table, described.iloc[sites_table["source_row"]].reset_index(drop=True)], axis=1)
    sites_table["well_id"] = (sites_table["experiment"] + "_" + sites_table["plate"].astype(str) + "_"
                              + sites_table["well"])
    sites_table["site_id"] = sites_table["well_id"] + "_" + sites_table["site"].astype(str)
    order = [c for c in meta.columns if c != "_well_key"]
    order += [c for c in ("site_id", "well_id") if c not in order]
    return sites_table[[*order, "source_row"]]


def build(source: Path, dest: Path, experiments=RXRX19A_EXPERIMENTS, plates: int = 50, wells: int = 384,
          sites: int = 4, progress: bool = True) -> Path:
    """Write the hard-linked screen under ``dest`` (nothing to do when it is already complete)."""
    source, dest = Path(source).resolve(), Path(dest)
    if (dest / "metadata.csv").is_file():
        return dest
    meta, channels = source_wells(source)
    table = scale_metadata(meta, experiments, plates, wells, sites)
    src = meta.iloc[table["source_row"]]
    source_stems = (str(source / "images") + "/" + src["experiment"] + "/Plate" + src["plate"].astype(str) + "/"
                    + src["well"] + "_s" + src["site"].astype(str) + "_w").to_numpy()
    stems = ("images/" + table["experiment"] + "/Plate" + table["plate"].astype(str) + "/" + table["well"] + "_s"
             + table["site"].astype(str) + "_w").to_numpy()
    for folder in pd.unique("images/" + table["experiment"] + "/Plate" + table["plate"].astype(str)):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    folder = os.open(dest, os.O_RDONLY)  # new files are named relative to dest
    try:
        for from_stem, to_stem in tqdm(zip(source_stems, stems), total=len(stems), desc="linking sites",
                                       unit="site", disable=not progress, mininterval=2):
            for c in channels:
                try:
                    os.link(f"{from_stem}{c}.png", f"{to_stem}{c}.png", dst_dir_fd=folder)
                except FileExistsError:  # a run that was stopped half-way
                    pass
    finally:
        os.close(folder)
    written = dest / "metadata.csv.part"
    table.drop(columns="source_row").to_csv(written, index=False)
    written.replace(dest / "metadata.csv")
    return dest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a small plate in the RxRx layout (with metadata.csv)")
    parser.add_argument("dest", type=Path, help="the folder to write (on the same file system as the source)")
    parser.add_argument("--experiments", default=",".join(RXRX19A_EXPERIMENTS))
    parser.add_argument("--plates", type=int, default=50, help="plates per experiment")
    parser.add_argument("--wells", type=int, default=384, help="wells per plate (the first of A01..P24)")
    parser.add_argument("--sites", type=int, default=4, help="sites per well")
    args = parser.parse_args(argv)
    dest = build(args.source, args.dest.resolve(), args.experiments.split(","), args.plates, args.wells,
                 args.sites)
    print(dest)


if __name__ == "__main__":
    sys.exit(main())
