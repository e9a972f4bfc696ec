"""Opening and browsing a whole RxRx19a-sized screen: the reader side.

The screen is ``benchmarks/scale_fixture.py``'s folder: 4 experiments x 50 plates x 384 wells x
4 sites = 307,200 sites (1,536,000 PNG tiles of 1024^2, hard links to the tiles of a 72-site
plate), in the RxRx19a layout with its ``metadata.csv``. Measured in fresh processes, with the
file cache warm and cold (``sync; echo 3 > /proc/sys/vm/drop_caches`` in the measuring process,
after its imports and before the step; needs root):

- ``open_plate``: wall and CPU time, peak memory; then ``Plate.check_files`` (listing the 200
  plate folders) and what it costs;
- napari: ``viewer.open`` until the first site is drawn (``bench_open.py``'s way: a canvas
  screenshot), of which the reader; peak memory above napari's own baseline (the viewer after
  its first paint); the background file check (its duration, and whether the site table and a
  warning get the missing files); slider steps to other sites, while the check runs and after;
- missing files: two tiles' hard links are moved aside (kept as links, put back afterwards) and
  the check must name them, in ``open_plate`` + ``check_files`` and in napari.

    xvfb-run -a python benchmarks/bench_scale.py [--runs 3] [--cold-runs 2] [--no-report]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

WORK = ROOT / ".bench"
SCREEN = WORK / "rxrx19a-scale"  # the 307,200-site folder
SOURCE = WORK / "scale-source"  # the 72-site plate of 1024^2 tiles it links to
ASIDE = WORK / "scale-aside"  # where the two removed links are kept meanwhile
# two tiles removed for the missing-files check (far apart: different experiments and plates)
REMOVED = ("images/HRCE-2/Plate17/C05_s3_w2.png", "images/VERO-1/Plate40/P24_s4_w5.png")
STEP_SITES = (7, 153_611, 61_440, 250_001, 99_999, 307_199, 12_345, 200_000)  # slider targets
MB = 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MB


def drop_caches() -> None:
    """Empty the page cache (and dentries and inodes): the next file reads go to the disk."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def clock():
    return time.perf_counter(), time.process_time()


def since(start) -> dict:
    return {"wall_s": time.perf_counter() - start[0], "cpu_s": time.process_time() - start[1]}


# ---------------------------------------------------------------- children (fresh processes)
def measure_open(screen: str, cold: bool) -> dict:
    """``open_plate`` then ``check_files`` in this process, imports done first."""
    import dask.array  # noqa: F401  (imported by the layers anyway; not part of opening)
    import pyarrow.csv  # noqa: F401

    from napari_gandl.plate import open_plate

    if cold:
        drop_caches()
    base = rss_mb()
    start = clock()
    plate = open_plate(screen)
    opened = since(start)
    open_peak = peak_mb()
    open_rss = rss_mb()
    start = clock()
    steps = list(plate.check_files())
    checked = since(start)
    report = plate.file_report
    return {"open": opened, "check": checked, "sites": plate.n_sites, "channels": plate.n_channels,
            "tile_shape": list(plate.tile_shape), "folders": steps[-1][1], "base_mb": base,
            "open_peak_mb": open_peak, "open_rss_mb": open_rss, "check_peak_mb": peak_mb(),
            "usable": int(len(plate.usable_sites)), "messages": report.messages,
            "problems": [[str(plate.sites["site_id"].iat[s]), str(p)]
                         for s, p in enumerate(report.problems) if p][:10], "load_1min": os.getloadavg()[0]}


def measure_napari(screen: str, cold: bool, defer_check: bool = False) -> dict:
    """``viewer.open`` until the first site is drawn; the background check; slider steps. With
    ``defer_check``, the background check is held back until the first site has been drawn
    (to see what it costs the first paint when it starts before it)."""
    import napari
    from napari.utils.notifications import notification_manager
    from qtpy.QtWidgets import QApplication

    import napari_gandl._reader as reader
    from napari_gandl.plate.model import Plate

    viewer = napari.Viewer(show=False)
    viewer.screenshot(canvas_only=True)  # Qt and GL start-up is not part of opening a plate
    app = QApplication.instance()
    baseline_peak, baseline_rss = peak_mb(), rss_mb()

    timings: dict[str, float] = {}
    read_plate = reader.read_plate

    def timed_read_plate(path):
        start = time.perf_counter()
        try:
            return read_plate(path)
        finally:
            timings["reader_s"] = time.perf_counter() - start

    reader.read_plate = timed_read_plate
    check_files = Plate.check_files

    def timed_check_files(self):
        timings["check_start"] = time.perf_counter()
        done = yield from check_files(self)
        timings["check_end"] = time.perf_counter()
        return done

    Plate.check_files = timed_check_files
    import napari_gandl._viewer as bridge

    held: list = []
    start_check = bridge._check_files
    if defer_check:
        bridge._check_files = held.append
    notes: list[str] = []
    notification_manager.notification_ready.connect(lambda n: notes.append(str(n.message)))

    if cold:
        drop_caches()
    start = time.perf_counter()
    viewer.open(screen, plugin="napari-gandl")
    viewer.screenshot(canvas_only=True)
    first = time.perf_counter() - start
    first_peak, first_rss = peak_mb(), rss_mb()
    if defer_check:
        bridge._check_files = start_check
        for table in held:
            start_check(table)

    def step(site: int) -> float:
        begin = time.perf_counter()
        viewer.dims.set_current_step(0, site)
        viewer.screenshot(canvas_only=True)
        return time.perf_counter() - begin

    app.processEvents()  # the check starts on the next turn of the event loop, after the first paint
    during = []
    for site in STEP_SITES[:3]:
        if "check_end" in timings:
            break
        during.append(step(site))
        app.processEvents()
    from napari_gandl._viewer import site_table

    table = site_table(viewer)
    deadline = time.perf_counter() + 600
    while not (table.plate.files_checked and "check_end" in timings):
        app.processEvents()
        time.sleep(0.01)
        if time.perf_counter() > deadline:
            raise RuntimeError("the file check did not finish in 10 minutes")
    for _ in range(20):  # the worker's returned signal: the table takes the problems, warnings shown
        app.processEvents()
        time.sleep(0.01)
    checked_at = time.perf_counter() - start
    after = [step(site) for site in STEP_SITES[3:]]
    problems = table.frame["problem"].astype(str).to_numpy()
    decode = []  # decoding a site's five tiles alone, serially (sites not shown before)
    for site in (300_001, 150_003, 77_777):
        begin = time.perf_counter()
        for c in range(table.plate.n_channels):
            table.plate.read_tile_lenient(site, c)
        decode.append(1000 * (time.perf_counter() - begin))
    result = {
        "first_site_s": first, "reader_s": timings.get("reader_s"), "baseline_peak_mb": baseline_peak,
        "baseline_rss_mb": baseline_rss, "first_peak_mb": first_peak, "first_rss_mb": first_rss,
        "check_s": timings["check_end"] - timings["check_start"], "check_done_after_open_s": checked_at,
        "check_started_after_open_s": timings["check_start"] - start, "checked_peak_mb": peak_mb(),
        "checked_rss_mb": rss_mb(), "steps_during_check_ms": [1000 * s for s in during],
        "steps_after_check_ms": [1000 * s for s in after], "sites": len(table),
        "table_problems": int((problems != "").sum()), "notes": [n for n in notes if "miss" in n],
        "decode_site_ms": decode, "defer_check": defer_check, "load_1min": os.getloadavg()[0],
    }
    viewer.close()
    return result


def run_child(mode: str, cold: bool, **extra) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "xcb")}
    out = subprocess.run([sys.executable, __file__, "--measure", mode,
                          json.dumps({"screen": str(SCREEN), "cold": cold, **extra})],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{mode} (cold={cold}) failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_read_rate() -> dict:
    """How fast this machine's disk reads after the page cache is dropped: 24 tiles of the source
    plate and 512 MiB of a large file, if there is one (the 'cold' figures mean that disk)."""
    tiles = sorted((SOURCE / "images").rglob("*.png"))[::15][:24]
    big = WORK / "scale" / "released" / "embeddings.csv"
    drop_caches()
    start = time.perf_counter()
    tile_bytes = sum(len(p.read_bytes()) for p in tiles)
    tile_s = time.perf_counter() - start
    out = {"tiles": len(tiles), "tile_mb": tile_bytes / MB, "tile_ms": 1000 * tile_s / len(tiles)}
    if big.is_file():
        start = time.perf_counter()
        read = 0
        with open(big, "rb", buffering=0) as f:
            while read < 512 * 2**20 and (chunk := f.read(8 * 2**20)):
                read += len(chunk)
        out["big_mb_s"] = read / MB / (time.perf_counter() - start)
    return out


# ---------------------------------------------------------------- the removed links
def remove_links() -> None:
    ASIDE.mkdir(exist_ok=True)
    for k, name in enumerate(REMOVED):
        kept = ASIDE / f"{k}.png"
        if not kept.exists():
            os.link(SCREEN / name, kept)
        (SCREEN / name).unlink(missing_ok=True)


def restore_links() -> None:
    """Put back any link moved aside (also after a run that was stopped half-way)."""
    for k, name in enumerate(REMOVED):
        kept = ASIDE / f"{k}.png"
        if kept.exists():
            if not (SCREEN / name).exists():
                os.link(kept, SCREEN / name)
            kept.unlink()


# ---------------------------------------------------------------- the report
def med(runs, key, scale=1.0) -> float:
    return float(np.median([r[key] for r in runs])) * scale


def runs_of(runs, key, fmt="{:.2f}", scale=1.0) -> str:
    return ", ".join(fmt.format(r[key] * scale) for r in runs)


def report(results: dict) -> str:
    ow, oc = results["open_warm"], results["open_cold"]
    nw, nc, nd = results["napari_warm"], results["napari_cold"], results["napari_deferred"]
    disk = results["disk"]
    miss, nmiss = results["open_missing"], results["napari_missing"]
    s = ow[0]
    tiles = s["sites"] * s["channels"]
    first_warm = med(nw, "first_site_s")
    above = [r["first_peak_mb"] - r["baseline_peak_mb"] for r in nw]
    above_checked = [r["checked_peak_mb"] - r["baseline_peak_mb"] for r in nw]
    above_cold = [r["first_peak_mb"] - r["baseline_peak_mb"] for r in nc]
    steps_after = [t for r in nw for t in r["steps_after_check_ms"]]
    steps_during = [t for r in nw for t in r["steps_during_check_ms"]]
    steps_cold = [t for r in nc for t in r["steps_after_check_ms"]]
    steps_cold_during = [t for r in nc for t in r["steps_during_check_ms"]]

    def open_row(label, runs):
        def col(step, key):
            return [r[step][key] for r in runs]

        return (f"| {label} | {np.median(col('open', 'wall_s')):.2f} s "
                f"({', '.join(f'{t:.2f}' for t in col('open', 'wall_s'))}) | "
                f"{np.median(col('open', 'cpu_s')):.2f} s | "
                f"{med(runs, 'open_peak_mb'):.0f} MB (+{np.median([r['open_peak_mb'] - r['base_mb'] for r in runs]):.0f}) | "
                f"{np.median(col('check', 'wall_s')):.1f} s "
                f"({', '.join(f'{t:.1f}' for t in col('check', 'wall_s'))}) | "
                f"{np.median(col('check', 'cpu_s')):.1f} s | {med(runs, 'check_peak_mb'):.0f} MB |")

    def napari_row(label, runs):
        return (f"| {label} | {med(runs, 'first_site_s'):.2f} s ({runs_of(runs, 'first_site_s')}) | "
                f"{med(runs, 'reader_s'):.2f} s | "
                f"{np.median([r['first_peak_mb'] - r['baseline_peak_mb'] for r in runs]):.0f} MB "
                f"(baseline {med(runs, 'baseline_peak_mb'):.0f}) | "
                f"{np.median([r['checked_peak_mb'] - r['baseline_peak_mb'] for r in runs]):.0f} MB | "
                f"{med(runs, 'check_s'):.1f} s ({runs_of(runs, 'check_s', '{:.1f}')}) |")

    def verdict(ok):
        return "**met**" if ok else "**not met**"

    steps_ok = float(np.median(steps_after)) < 100
    lines = [
        f"The screen of `benchmarks/scale_fixture.py`: {s['sites']:,} sites (4 experiments x 50 plates x 384 "
        f"wells x 4 sites) in the RxRx19a layout, {tiles:,} PNG tiles of {s['tile_shape'][0]}x{s['tile_shape'][1]} "
        f"in {s['folders']} plate folders, with a {SCREEN.joinpath('metadata.csv').stat().st_size / MB:.0f} MB "
        "`metadata.csv`; every tile is a hard link to a tile of a 72-site plate of the synthetic screen, so the "
        "folder costs directory entries, not 1.5 TB. RxRx19a itself has 305,520 sites. Each figure comes from a "
        "fresh process (medians, the runs in brackets). *Warm*: the files were read just before, the page "
        "cache holds them. *Cold*: `sync; echo 3 > /proc/sys/vm/drop_caches` in the measuring process, after "
        "its imports and right before the step, so the metadata, the directory entries and the tiles come "
        "from the disk (as do the modules the step imports first). "
        + results.get("suite", "The background GAN training on this machine was paused (SIGSTOP) for the whole run")
        + "; see the load below. "
        f"Measured {results.get('measured', '')} on {results.get('code', 'the working tree of the day')}.",
        "",
        "**`open_plate` and the file check** (Python, no napari; memory: the process's peak, in brackets what "
        "`open_plate` added to the imports' resident memory)",
        "",
        "| file cache | `open_plate`: wall | CPU | peak memory | `check_files` (lists the 200 plate folders): wall | CPU "
        "| peak memory after it |",
        "|---|---|---|---|---|---|---|",
        open_row(f"warm ({len(ow)} runs)", ow),
        open_row(f"cold ({len(oc)} runs)", oc),
        "",
        "**napari** (`viewer.open(folder, plugin='napari-gandl')` until a canvas screenshot shows the first site, "
        "as `bench_open.py` measures it; memory above the baseline: the process's peak minus its peak when the "
        "empty viewer had painted, i.e. what the reader and the five stain layers add to napari's own)",
        "",
        "| file cache | open → first site drawn | of which the reader | memory above napari's baseline at the "
        "first site | … after the file check | background file check (`Plate.check_files`) |",
        "|---|---|---|---|---|---|",
        napari_row(f"warm ({len(nw)} runs)", nw),
        napari_row(f"cold ({len(nc)} runs)", nc),
        napari_row(f"warm, the background check held back until the first site is drawn ({len(nd)} runs)", nd),
        "",
        (f"The background check starts {med(nw, 'check_started_after_open_s'):.2f} s after `viewer.open` was "
         f"called (warm; the reader returned at {med(nw, 'reader_s'):.2f} s), "
         + (f"after the first site is drawn at {first_warm:.2f} s: napari starts it 2 s after the layers arrive, "
            "so that it does not compete with the first paint. "
            if med(nw, 'check_started_after_open_s') > first_warm else
            f"before the first site is drawn at {first_warm:.2f} s, so it competes with the first paint for the "
            "interpreter and the 2 cores. ")
         + f"Held back in the benchmark until the first site is drawn (last row, the same code otherwise) the "
         f"first site takes {med(nd, 'first_site_s'):.2f} s. The whole-screen check is done and the site table "
         f"updated {med(nw, 'check_done_after_open_s'):.1f} s after `viewer.open` was called (cold: "
         f"{med(nc, 'check_done_after_open_s'):.1f} s)."),
        "",
        f"**Slider steps** at {s['sites']:,} sites (set the site, then a canvas screenshot, to sites spread over the "
        "screen; each step decodes five tiles the plate has not cached):",
        "",
        "| file cache | while the background check runs | after it |",
        "|---|---|---|",
        f"| warm | {_stats(steps_during)} | {_stats(steps_after)} |",
        f"| cold | {_stats(steps_cold_during)} | {_stats(steps_cold)} |",
        "",
        "Of a step, decoding the site's five 1024 x 1024 PNG tiles one after the other, outside napari, takes "
        f"{_stats([t for r in nw for t in r['decode_site_ms']])} (warm); the rest is napari slicing and drawing "
        "the five layers and the plugin's slider bridge (site table, the label on the canvas).",
        "",
        f"*The disk.* After the page cache is dropped, {disk['tiles']} tiles of the source plate "
        f"({disk['tile_mb'] / disk['tiles']:.2f} MB each) read at {disk['tile_ms']:.1f} ms a tile"
        + (f" and a large file at {disk['big_mb_s']:.0f} MB/s" if "big_mb_s" in disk else "")
        + ": this virtual disk is fast (the host may cache it too), so the cold figures here are what a "
        "local SSD gives, not a network file system or spinning disks; on those the cold first site and "
        "check grow with the seek time (the check reads 200 directories of 7,680 entries, the first site 20 "
        "tiles of the contrast sample and one `metadata.csv`).",
        "",
        "**Missing files.** Two tiles' hard links were moved aside (`" + "`, `".join(REMOVED) + "`) and put back "
        f"after. `open_plate` + `check_files` (warm): {miss['usable']:,} usable sites of {miss['sites']:,}; problems "
        + "; ".join(f"`{sid}`: {p}" for sid, p in miss["problems"])
        + "; message: \"" + " ".join(" ".join(miss["messages"]).split()) + "\". In napari the background check "
        f"gave the site table {nmiss['table_problems']} site(s) with a problem, and "
        + (f"{len(nmiss['notes'])} warning(s): \"" + " ".join(" ".join(nmiss["notes"]).split()) + "\""
           if nmiss["notes"] else "no warning naming them")
        + f"; the check took {nmiss['check_s']:.1f} s there.",
        "",
        "**Targets**",
        "",
        f"- open → first site drawn under 3 s, warm: {first_warm:.2f} s, {verdict(first_warm < 3)} "
        f"(cold: {med(nc, 'first_site_s'):.2f} s).",
        f"- the reader's memory above napari's baseline under 300 MB (MB = 10^6 bytes here; 300 MB = 286 MiB): "
        f"{np.median(above):.0f} MB at the first site "
        f"({', '.join(f'{a:.0f}' for a in above)}), {verdict(np.median(above) < 300)}; after the background file "
        f"check {np.median(above_checked):.0f} MB = {np.median(above_checked) * MB / 2**20:.0f} MiB "
        f"({verdict(np.median(above_checked) < 300)}); held back until the first site is drawn, "
        f"{np.median([r['first_peak_mb'] - r['baseline_peak_mb'] for r in nd]):.0f} MB at the first site; cold "
        f"{np.median(above_cold):.0f} MB.",
        f"- slider step under 100 ms at {s['sites']:,} sites: median {np.median(steps_after):.0f} ms after the "
        f"check (warm), {verdict(steps_ok)}; while the check runs {_stats(steps_during)}; cold "
        f"{_stats(steps_cold)}.",
        "",
        f"Load (`uptime`) at the start: {results['load_start']}. At the end: {results['load_end']}. 1-minute load at the end of each "
        "run: warm napari " + ", ".join(f"{r['load_1min']:.1f}" for r in nw) + "; cold napari "
        + ", ".join(f"{r['load_1min']:.1f}" for r in nc) + ". Busy processes besides this benchmark at "
        f"the start: {results['busy_start'].split('other busy processes: ')[-1]}; at the end: "
        f"{results['busy_end'].split('other busy processes: ')[-1]}; during the run: "
        f"{results.get('busy_during', 'not sampled')}.",
    ]
    return "\n".join(lines)


def compare(now: dict, before: dict) -> str:
    """The main figures of this run beside those of an earlier run (another version of the code)."""
    def first(r, key):
        return med(r[key], "first_site_s")

    def check(r, key):
        return float(np.median([x["check"]["wall_s"] for x in r[key]]))

    def above(r, key, when):
        return float(np.median([x[f"{when}_peak_mb"] - x["baseline_peak_mb"] for x in r[key]]))

    def steps(r, key, when):
        return float(np.median([t for x in r[key] for t in x[f"steps_{when}_check_ms"]] or [np.nan]))

    rows = [("napari: open → first site drawn, warm", lambda r: f"{first(r, 'napari_warm'):.2f} s"),
            ("… with the check held back until then", lambda r: f"{first(r, 'napari_deferred'):.2f} s"),
            ("… cold", lambda r: f"{first(r, 'napari_cold'):.2f} s"),
            ("`check_files`, warm / cold", lambda r: f"{check(r, 'open_warm'):.1f} / {check(r, 'open_cold'):.1f} s"),
            ("background check in napari, warm", lambda r: f"{med(r['napari_warm'], 'check_s'):.1f} s"),
            ("memory above napari's baseline: first site / after the check",
             lambda r: f"{above(r, 'napari_warm', 'first'):.0f} / {above(r, 'napari_warm', 'checked'):.0f} MB"),
            ("slider step, warm: while the check runs / after", lambda r: f"{steps(r, 'napari_warm', 'during'):.0f} / "
                                                                          f"{steps(r, 'napari_warm', 'after'):.0f} ms")]
    runs = (f"{len(now['napari_warm'])} warm / {len(now['napari_cold'])} cold runs",
            f"{len(before['napari_warm'])} warm / {len(before['napari_cold'])} cold runs")
    suite = before.get("suite", "the background GAN training paused (SIGSTOP)")
    lines = ["", f"**Against an earlier run** ({before.get('measured', '')}, {before.get('code', '')}; "
             f"{suite[0].lower() + suite[1:]}; load at its start: {before['load_start']}). Code and machine load "
             "both differ between the two runs:", "",
             f"| medians | this run ({runs[0]}) | earlier run ({runs[1]}) |", "|---|---|---|"]
    lines += [f"| {label} | {fn(now)} | {fn(before)} |" for label, fn in rows]
    return "\n" + "\n".join(lines)


def _stats(ms: list[float]) -> str:
    if not ms:
        return "– (the check had finished)"
    return f"median {np.median(ms):.0f} ms, max {max(ms):.0f} ms ({len(ms)} steps)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm runs of each measurement (medians)")
    parser.add_argument("--cold-runs", type=int, default=2, help="cold runs of each measurement")
    parser.add_argument("--no-report", action="store_true", help="print the section, do not write it")
    parser.add_argument("--from-json", action="store_true",
                        help="write the section from the last run's results (.bench/scale/bench_scale.json)")
    parser.add_argument("--earlier", help="results of an earlier run (JSON) to show beside this one")
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "ARGS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        mode, kwargs = args.measure
        print(json.dumps({"open": measure_open, "napari": measure_napari}[mode](**json.loads(kwargs))))
        return
    saved = WORK / "scale" / "bench_scale.json"
    earlier = json.loads(Path(args.earlier).read_text()) if args.earlier else None

    def text(results):
        return report(results) + (compare(results, earlier) if earlier else "")

    if args.from_json:
        results = json.loads(saved.read_text())
        return _write(text(results), args.no_report)
    if not (SCREEN / "metadata.csv").is_file():
        import scale_fixture

        scale_fixture.build(SOURCE, SCREEN)
    restore_links()
    from bench_scale_embed import BusyWatch, machine_load, suite_state

    from bench_scale_embed import code_version

    results = {"load_start": uptime(), "busy_start": machine_load(), "disk": cold_read_rate(),
               "code": code_version(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    run_child("open", False)  # fills the page cache for the warm runs
    plan = [("open_warm", "open", False, {}), ("napari_warm", "napari", False, {}),
            ("napari_deferred", "napari", False, {"defer_check": True})]
    cold_plan = [("open_cold", "open", True, {}), ("napari_cold", "napari", True, {})]
    for key, *_ in plan + cold_plan:
        results[key] = []
    with BusyWatch() as watch:
        for i in range(max(args.runs, args.cold_runs)):  # warm and cold runs alternate: they meet the same load
            for key, mode, cold, extra in (plan if i < args.runs else []) + (cold_plan if i < args.cold_runs else []):
                results[key].append(run_child(mode, cold, **extra))
                print(key, json.dumps(results[key][-1])[:600], flush=True)
        remove_links()
        try:
            results["open_missing"] = run_child("open", False)
            results["napari_missing"] = run_child("napari", False)
        finally:
            restore_links()
    results["busy_during"] = watch.summary()
    results["suite"] = suite_state(watch)[0].upper() + suite_state(watch)[1:]
    print("missing", results["open_missing"]["messages"], results["napari_missing"]["notes"], flush=True)
    results["load_end"] = uptime()
    results["busy_end"] = machine_load()
    saved.write_text(json.dumps(results, indent=1))
    _write(text(results), args.no_report)


def _write(body: str, no_report: bool) -> None:
    print(body)
    if not no_report:
        from _report import write_section

        write_section("scale", "A whole RxRx19a-sized screen in the reader and napari (bench_scale.py)", body)


if __name__ == "__main__":
    main()
