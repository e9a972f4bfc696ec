"""Opening a plate: lazy napari layers against reading the plate eagerly with numpy.

Builds RxRx19a-layout plates of 384 wells x 4 sites (1,536 sites, 5 stains)
and a quarter-size one, then measures in fresh processes:

- napari: ``viewer.open(plate)`` until the first site is drawn, then one
  slider step to another site; peak RSS of the process, then again after
  browsing 60 more sites;
- dask: what the layers' dask arrays cost (imports, first slice, each slice),
  against other ways of building them;
- numpy: every tile decoded into one array (what a reader without dask does).

Tiles are the synthetic renderer's cells; to keep generation short, 24
distinct sites are rendered and their PNG bytes reused across wells (every
file is still read and decoded on its own).

    xvfb-run -a python benchmarks/bench_open.py [--tile-size 1024]
    xvfb-run -a python benchmarks/bench_open.py --quick --baseline-src OLD/src

``--quick`` measures only the 1,536-site plate, in napari and dask (no eager numpy read);
``--baseline-src`` also measures an earlier version of the package (its ``src``
folder) in alternating fresh processes, so both face the same machine load.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def write_plate(root: Path, n_wells: int, sites_per_well: int, tile_size: int) -> Path:
    import pandas as pd
    from PIL import Image

    from napari_gandl.synthetic import CELL_TYPES, ScreenDesign, render_site

    if (root / "metadata.csv").is_file():
        return root
    rng = np.random.default_rng(0)
    distinct = []
    for k in range(24):
        pixels, _, _ = render_site(rng, ScreenDesign(tile_size=tile_size), CELL_TYPES[k % 2], 0.4, 0.0,
                                   np.ones(5), np.full(5, 5.0), 0.7)
        encoded = []
        for c in range(5):
            buffer = io.BytesIO()
            Image.fromarray(pixels[c]).save(buffer, format="PNG", compress_level=1)
            encoded.append(buffer.getvalue())
        distinct.append(encoded)
    folder = root / "images" / "HRCE-1" / "Plate1"
    folder.mkdir(parents=True)
    wells = [f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOP" for c in range(1, 25)][:n_wells]
    rows = []
    for w, well in enumerate(wells):
        for site in range(1, sites_per_well + 1):
            tiles = distinct[(w * sites_per_well + site) % len(distinct)]
            for c in range(5):
                (folder / f"{well}_s{site}_w{c + 1}.png").write_bytes(tiles[c])
            rows.append({"site_id": f"HRCE-1_1_{well}_{site}", "well_id": f"HRCE-1_1_{well}", "cell_type": "HRCE",
                         "experiment": "HRCE-1", "plate": 1, "well": well, "site": site,
                         "disease_condition": "Mock", "treatment": None, "treatment_conc": None, "SMILES": None})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


BROWSED_SITES = 60  # after the first two sites, to measure memory while browsing (300 tiles)


def measure_napari(plate: str) -> dict:
    import napari

    viewer = napari.Viewer(show=False)
    viewer.screenshot(canvas_only=True)  # Qt and GL start-up is not part of opening a plate
    baseline = peak_rss_mib()
    start = time.perf_counter()
    viewer.open(plate, plugin="napari-gandl")
    viewer.screenshot(canvas_only=True)
    first = time.perf_counter() - start
    start = time.perf_counter()
    viewer.dims.set_current_step(0, 7)
    viewer.screenshot(canvas_only=True)
    step = time.perf_counter() - start
    rss = peak_rss_mib()
    for site in range(100, 100 + BROWSED_SITES):
        viewer.dims.set_current_step(0, site)
    return {"first_site_s": first, "next_site_s": step, "peak_rss_mib": rss, "baseline_rss_mib": baseline,
            "browsed_rss_mib": peak_rss_mib()}


def measure_floor(plate: str, as_dask: bool = False) -> dict:
    """napari's own share: five in-memory image layers of the plate's tile size, as the reader
    adds them (additive, explicit contrast limits, micrometre scale), until the canvas is drawn.
    ``as_dask``: each layer is a dask array of those in-memory tiles, one chunk per tile, with
    ``dask.array`` imported inside the timed span and the scheduler the reader configures: the
    floor under any reader whose layers hold dask arrays."""
    import napari
    from PIL import Image

    from napari_gandl._viewer import stain_colormap
    from napari_gandl.plate.stains import stains_for_channels

    tile = np.asarray(Image.open(next((Path(plate) / "images" / "HRCE-1" / "Plate1").glob("*_w1.png"))))
    data = [np.stack([tile] * 3) for _ in range(5)]
    stains = stains_for_channels(list(range(1, 6)))
    viewer = napari.Viewer(show=False)
    viewer.screenshot(canvas_only=True)
    start = time.perf_counter()
    if as_dask:
        import dask.array as da

        from napari_gandl._viewer import _threaded_scheduler_unless_configured

        _threaded_scheduler_unless_configured()
        data = [da.from_array(stain, chunks=(1, *stain.shape[1:])) for stain in data]
    for c, stain in enumerate(data):
        viewer.add_image(stain, name=f"w{c + 1}", blending="additive", contrast_limits=(0, 255),
                         colormap=stain_colormap(stains[c]), scale=(1, 0.65, 0.65),
                         units=("", "micrometer", "micrometer"))
    viewer.screenshot(canvas_only=True)
    return {"first_site_s": time.perf_counter() - start}


def measure_reader(plate: str) -> dict:
    """The plugin's own share: scan the folder, read the contrast sample, build the layer data
    (with napari's viewer module loaded, as it is when napari calls the reader)."""
    import napari

    napari.current_viewer()  # loads napari.viewer and its Qt imports (1.7 s), there before any reader runs

    from napari_gandl._reader import read_plate

    start = time.perf_counter()
    read_plate(plate)
    return {"reader_s": time.perf_counter() - start}


def measure_dask(plate: str) -> dict:
    """What the stain layers' dask arrays cost a fresh napari process: importing ``dask.array``, the
    first slice (where dask looks for a ``distributed`` client, which imports ``distributed``), and
    each slice after that, as napari computes it, for this version's layers and for the other ways
    of building them that were weighed against it. Every slice is of a site whose tiles are already
    decoded, so no decoding is timed."""
    import functools

    import napari
    from napari.utils import resize_dask_cache

    napari.current_viewer()

    from napari_gandl.plate import open_plate

    opened = open_plate(plate)
    site = (opened.n_sites - 1) // 2
    opened.contrast_limits()  # decodes the tiles of the site napari shows first
    start = time.perf_counter()
    import dask
    import dask.array as da

    imported = time.perf_counter()
    stains = [opened.data[:, c] for c in range(opened.n_channels)]
    np.asarray(stains[0][site])
    first = time.perf_counter()

    tile = functools.lru_cache(maxsize=None)(opened.read_tile_lenient)
    shape, dtype = (opened.n_sites, *opened.tile_shape), opened.dtype
    chunks = ((1,) * opened.n_sites, (shape[1],), (shape[2],))

    class TileReader:  # a lazy (site, y, x) array-like of one stain, for from_array
        def __init__(self, c):
            self.c, self.shape, self.dtype, self.ndim = c, shape, dtype, 3

        def __getitem__(self, index):
            return np.stack([tile(s, self.c) for s in range(*index[0].indices(shape[0]))])[:, index[1], index[2]]

    def per_stain_blocks(c):
        return da.map_blocks(lambda block_id: tile(block_id[0], c)[None].copy(), chunks=chunks, dtype=dtype,
                             meta=np.empty((0, 0, 0), dtype), name=f"bench-stain-{c}")

    builds = {
        "one `map_blocks` for the plate, a layer is `plate.data[:, c]`": lambda: stains,
        "one `map_blocks` per stain (this version: `plate.stain(c)`)": lambda: [opened.stain(c) for c in range(opened.n_channels)],
        "`from_array(inline_array=True)` of a lazy per-stain reader": lambda: [
            da.from_array(TileReader(c), chunks=(1, *shape[1:]), inline_array=True, asarray=False, fancy=False,
                          meta=np.empty((0, 0, 0), dtype), name=f"bench-reader-{c}")
            for c in range(opened.n_channels)],
        "`da.stack` of per-stain arrays, a layer is `[:, c]`": lambda: [
            da.stack([per_stain_blocks(c) for c in range(opened.n_channels)], axis=1)[:, c]
            for c in range(opened.n_channels)],
    }
    cache = resize_dask_cache()  # napari's cache, which napari's slicing also uses
    built = {name: build() for name, build in builds.items()}
    times = {name: [] for name in built}
    for _ in range(21):  # the builds take turns, so that all meet the same machine load
        for name, layers in built.items():
            begin = time.perf_counter()
            for layer in layers:
                with dask.config.set({"optimization.fuse.active": False}), cache:  # as napari slices
                    np.asarray(layer[site])
            times[name].append((time.perf_counter() - begin) / len(layers))
    # the first round fills the caches
    slice_ms = {name: float(np.median(t[1:]) * 1000) for name, t in times.items()}
    return {"import_s": imported - start, "first_slice_s": first - imported, "slice_ms": slice_ms}


def measure_imports(plate: str) -> dict:
    """What the libraries under the plate's site table cost a fresh napari process before anything
    is read: pyarrow building one array (which imports pandas: pyarrow checks every value it
    converts against pandas' types), then ``dask.array``, which the stain layers are."""
    import napari

    napari.current_viewer()
    start = time.perf_counter()
    import pyarrow as pa

    pa.array([0])
    arrow = time.perf_counter()
    importlib.import_module("dask.array")
    return {"pyarrow_s": arrow - start, "pyarrow_imports_pandas": "pandas" in sys.modules,
            "dask_array_s": time.perf_counter() - arrow}


def measure_numpy(plate: str) -> dict:
    from PIL import Image

    baseline = peak_rss_mib()
    start = time.perf_counter()
    folder = Path(plate) / "images" / "HRCE-1" / "Plate1"
    names = sorted(p.name[: -len("_w1.png")] for p in folder.glob("*_w1.png"))
    first = np.asarray(Image.open(folder / f"{names[0]}_w1.png"))
    stack = np.empty((len(names), 5, *first.shape), first.dtype)
    for i, name in enumerate(names):
        for c in range(5):
            stack[i, c] = np.asarray(Image.open(folder / f"{name}_w{c + 1}.png"))
    elapsed = time.perf_counter() - start
    return {"first_site_s": elapsed, "peak_rss_mib": peak_rss_mib(), "baseline_rss_mib": baseline,
            "array_mib": stack.nbytes / 2**20}


def run_child(mode: str, plate: Path, src: str | None = None) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "xcb")}
    if src:
        env["PYTHONPATH"] = src
    out = subprocess.run([sys.executable, __file__, "--measure", mode, str(plate)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--work", default=str(HERE.parent / ".bench"))
    parser.add_argument("--quick", action="store_true", help="only the 1,536-site plate, only napari")
    parser.add_argument("--baseline-src", help="src folder of an earlier version to measure alternately")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per version and figure (medians)")
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "PLATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        mode, plate = args.measure
        measure = {"napari": measure_napari, "reader": measure_reader, "numpy": measure_numpy,
                   "floor": measure_floor, "dask": measure_dask, "imports": measure_imports,
                   "floor_dask": functools.partial(measure_floor, as_dask=True)}[mode]
        print(json.dumps(measure(plate)))
        return

    from _report import write_section

    work = Path(args.work)
    if args.quick:
        print(write_section("open_first_site", "First site against the earlier version (bench_open.py --quick)",
                            quick(args, work)))
        return
    sizes = {"1,536 sites (384 wells x 4)": 384, "384 sites (96 wells x 4)": 96}
    rows = []
    for label, wells in sizes.items():
        plate = write_plate(work / f"open-{wells}w-{args.tile_size}px", wells, 4, args.tile_size)
        # the machine is shared: the median of several fresh processes
        runs = [run_child("napari", plate) for _ in range(args.runs)]
        lazy = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
        lazy["first_site_runs"] = [r["first_site_s"] for r in runs]
        lazy.update(run_child("reader", plate))
        eager = run_child("numpy", plate)
        rows.append((label, lazy, eager))
        print(label, "napari:", lazy, "numpy:", eager, flush=True)

    lines = [
        f"Plates in the RxRx19a layout, {args.tile_size}x{args.tile_size} 8-bit PNG tiles, 5 stains. "
        f"Each figure comes from a fresh process (napari: the median of {args.runs}); RSS is the process's peak "
        "resident memory (napari's includes Qt/OpenGL, shown separately as the baseline before opening).",
        "",
        "| plate | napari-gandl: open → first site drawn | of which the reader | next site (slider step) | "
        "peak RSS (baseline) | numpy eager read: time | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, lazy, eager in rows:
        lines.append(
            f"| {label} | {lazy['first_site_s']:.2f} s | {lazy['reader_s']:.2f} s | {lazy['next_site_s'] * 1000:.0f} ms | "
            f"{lazy['peak_rss_mib']:.0f} MiB ({lazy['baseline_rss_mib']:.0f}) | "
            f"{eager['first_site_s']:.1f} s | {eager['peak_rss_mib']:.0f} MiB |"
        )
    big, small = rows[0][1], rows[1][1]
    lines += [
        "",
        f"Memory is independent of plate size: going from 384 to 1,536 sites changes napari-gandl's "
        f"peak memory by {big['peak_rss_mib'] - small['peak_rss_mib']:+.0f} MiB, while the eager read grows "
        f"with the plate "
        f"({rows[1][2]['array_mib']:.0f} → {rows[0][2]['array_mib']:.0f} MiB of pixels). Browsing "
        f"{BROWSED_SITES} more sites of the larger plate ({5 * BROWSED_SITES} tiles) raises the peak to "
        f"{big['browsed_rss_mib']:.0f} MiB: the decoded tiles kept in memory are bounded.",
        "",
        f"Goal: first site in under 1 s. Measured: {min(r[1]['first_site_s'] for r in rows):.2f}–"
        f"{max(r[1]['first_site_s'] for r in rows):.2f} s end to end (runs: "
        + "; ".join(", ".join(f"{t:.2f}" for t in r[1]["first_site_runs"]) for r in rows) + " s), "
        f"of which the plugin's reader (scanning the folder, decoding the 20-tile contrast sample in "
        f"parallel, building the layer data) takes {min(r[1]['reader_s'] for r in rows):.2f}–"
        f"{max(r[1]['reader_s'] for r in rows):.2f} s.",
        "",
        WHAT_CHANGED,
        "",
        f"Load average (1 min) when the run ended: {os.getloadavg()[0]:.1f}.",
    ]
    print(write_section("open", "Opening a plate (bench_open.py)", "\n".join(lines)))


def quick(args, work: Path) -> str:
    """First site on the 1,536-site plate, this version and optionally a baseline, alternating."""
    plate = write_plate(work / f"open-384w-{args.tile_size}px", 384, 4, args.tile_size)
    versions = {"this version": None}
    if args.baseline_src:
        versions["baseline"] = str(Path(args.baseline_src).resolve())
    runs = {name: [] for name in versions}
    readers = {name: [] for name in versions}
    floor, floor_dask, dask, imports = [], [], [], []
    load = [os.getloadavg()[0]]
    for _ in range(args.runs):
        for name, src in versions.items():
            runs[name].append(run_child("napari", plate, src))
            readers[name].append(run_child("reader", plate, src)["reader_s"])
            print(name, runs[name][-1], readers[name][-1], flush=True)
        floor.append(run_child("floor", plate)["first_site_s"])
        floor_dask.append(run_child("floor_dask", plate)["first_site_s"])
        dask.append(run_child("dask", plate))
        imports.append(run_child("imports", plate))
        load.append(os.getloadavg()[0])
    lines = [
        f"The 1,536-site plate in the RxRx19a layout (384 wells x 4 sites, {args.tile_size}x{args.tile_size} "
        f"8-bit PNG tiles, 5 stains); each figure from a fresh process, {args.runs} per version"
        + (", the versions alternating so that both meet the same machine load" if len(versions) > 1 else "")
        + f". Load average (1 min) during the runs: {min(load):.1f}–{max(load):.1f} on 2 cores. "
        "(The section above, a full run, has memory and the comparison with an eager numpy read.)",
        "",
        "| version | open → first site drawn (median; runs) | of which the reader (median) | next site | peak RSS "
        f"| peak RSS after {BROWSED_SITES} more sites |",
        "|---|---|---|---|---|---|",
    ]
    for name, src in versions.items():
        first = [r["first_site_s"] for r in runs[name]]
        label = name if src is None else f"{name} (`{Path(src).parent.name}`)"
        lines.append(f"| {label} | {np.median(first):.2f} s ({', '.join(f'{t:.2f}' for t in first)}) | "
                     f"{np.median(readers[name]):.2f} s | "
                     f"{np.median([r['next_site_s'] for r in runs[name]]) * 1000:.0f} ms | "
                     f"{np.median([r['peak_rss_mib'] for r in runs[name]]):.0f} MiB | "
                     f"{np.median([r['browsed_rss_mib'] for r in runs[name]]):.0f} MiB |")
    lines.append(f"| napari alone: five in-memory layers of the same size, as the reader adds them | "
                 f"{np.median(floor):.2f} s ({', '.join(f'{t:.2f}' for t in floor)}) | – | – | – | – |")
    lines.append(f"| napari alone: the same five layers as dask arrays of the in-memory tiles, `dask.array` "
                 f"imported | {np.median(floor_dask):.2f} s ({', '.join(f'{t:.2f}' for t in floor_dask)}) "
                 "| – | – | – | – |")
    first_now = float(np.median([r["first_site_s"] for r in runs["this version"]]))
    above_floor = first_now - float(np.median(floor))
    above_dask = first_now - float(np.median(floor_dask))
    lines += ["", f"Goal: first site in under 1 s: {'met' if first_now < 1 else 'not met'}. "
              f"Goal: first site within 0.3 s of napari's floor (five in-memory layers): {above_floor:.2f} s above "
              f"it, {'met' if above_floor <= 0.3 else 'not met'}. Above the floor with dask-array layers (the "
              f"last row): {above_dask:.2f} s."]
    arrow = float(np.median([i["pyarrow_s"] for i in imports]))
    dask_array = float(np.median([i["dask_array_s"] for i in imports]))
    pulled = all(i["pyarrow_imports_pandas"] for i in imports)
    lines += ["", f"What the libraries alone cost, in a fresh napari process before anything is read (medians): "
              f"pyarrow building its first array {arrow:.2f} s"
              + (" (pyarrow imports pandas then: it checks every value it converts against pandas' types, so a "
                 "site table read with pyarrow cannot leave pandas out)" if pulled else "")
              + f", then `dask.array` {dask_array:.2f} s: {arrow + dask_array:.2f} s together, against the 0.3 s "
              "the goal leaves above the floor, before one tile is decoded."]
    if len(versions) > 1:
        now = [r["first_site_s"] for r in runs["this version"]]
        before = [r["first_site_s"] for r in runs["baseline"]]
        overlap = min(now) <= max(before) and min(before) <= max(now)
        lines.append(
            f"Median first site: this version {np.median(now):.2f} s, baseline {np.median(before):.2f} s"
            + ("; the runs overlap, so the difference is within the noise of this shared machine." if overlap
               else ".")
            + " Median next site: this version "
            f"{np.median([r['next_site_s'] for r in runs['this version']]) * 1000:.0f} ms, baseline "
            f"{np.median([r['next_site_s'] for r in runs['baseline']]) * 1000:.0f} ms.")
    lines += ["",
              "What the stain layers' dask arrays cost (fresh processes with napari loaded, medians): importing "
              f"`dask.array` {np.median([d['import_s'] for d in dask]):.2f} s; the first slice "
              f"{np.median([d['first_slice_s'] for d in dask]):.2f} s, most of it dask importing `distributed` "
              "while it looks for a cluster client; then, per slice of an already decoded tile (napari slices "
              "each layer once per slider step, and twice while adding it), by how the layers' arrays are built:",
              "",
              "| a layer's dask array | ms per slice (median) |",
              "|---|---|"]
    lines += [f"| {build} | {np.median([d['slice_ms'][build] for d in dask]):.1f} |" for build in dask[0]["slice_ms"]]
    lines += ["", WHAT_CHANGED]
    return "\n".join(lines)


WHAT_CHANGED = (
    "How the open path got here, each step from a profile of `viewer.open` on this plate. Each stain "
    "layer's data is a dask array of one stain (`plate.stain(c)`) with one chunk per tile, built by "
    "`map_blocks` over block indices, so that slicing it culls to the tiles it covers without building "
    "a task per tile first; slicing `plate.data[:, c]` instead would make a task per site of the screen. "
    "`bench_open.py --quick` measures what other ways of building the layers would cost per slice. "
    "napari's own dask cache is off for these layers: it kept every tile shown (peak RSS 1.7 GB after "
    "browsing 120 sites, against 0.5 GB without it), where the plate keeps its last 64 decoded tiles. "
    "Importing `dask.array` and "
    "`distributed` in a thread while the folder is scanned and the contrast sample decoded was tried: on "
    "2 cores it gained under 0.1 s (imports hold the interpreter lock), so it was left out. What does "
    "overlap is decoding, which releases the lock: the contrast sample is decoded while `dask.array` is "
    "imported. dask looks for a `distributed` client on the first slice napari computes, which imports "
    "`distributed` (the first-slice figure above); while `distributed` is not imported no client can "
    "exist, so the reader then configures dask's threaded scheduler, its default for arrays, and the first "
    "site no longer imports it (a `Client` created later makes itself the scheduler as usual). The contrast "
    "percentiles come from a histogram "
    "(0.02 s instead of 0.12 s per stain); pint's unit registry, which napari builds when it creates its "
    "first layer (0.5–1 s), is built in a thread while the folder is scanned; the site's label on the "
    "canvas, whose glyphs napari renders on the CPU (0.3 s), follows the first paint instead of holding "
    "it back. Beyond that, the time above napari's floor is the plugin's own: importing it (0.35 s with "
    "napari running, nearly all of it pandas, which the plate's site table is built on) and the reader "
    "(reading metadata.csv, decoding the contrast sample, importing `dask.array`). Keeping pandas out of "
    "the open path was tried: pyarrow imports pandas as soon as it builds an array from Python or numpy "
    "values (a filter mask, a scalar, `to_numpy`), and reading metadata.csv with Python's csv module "
    "instead took 1.74 s at RxRx19a's 305,520 rows, against 0.79 s for importing pandas, reading with "
    "pyarrow and sorting, so the site table stays on pandas. The floor rows measure "
    "napari alone adding five layers of the same size, in memory and as dask arrays: the floor under any "
    "reader that shows the five stains as napari layers on this machine."
)


if __name__ == "__main__":
    main()
