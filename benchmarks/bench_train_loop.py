"""How many images a CPU minute of GAN-DL training sees: threads, load, and the site cache.

Each variant is ``gandl train`` as a user runs it (the ``quick`` preset) on a suite screen for a
fixed time, in its own process; the rate is read from the run's ``losses.csv`` (images over the
seconds the steps took, the first 20 steps, or fifth of them, left out as warm-up), with the longest step, which is
where a stalled thread shows:

* the site contrast (``--contrastive 1``) with the default threads: a second crop of each site through D;
* threads: the default (torch's threads kept to the cores other processes leave free,
  ``ThreadGovernor``), as many as cores (torch's own default), or one thread;
* load: alone, or beside one other busy process (a Python loop burning a core), as when two runs
  or a run and a test suite share a 2-core machine;
* the decoded-site cache: 256 MB (the earlier default, smaller than a 512-site screen of 256^2
  tiles, 336 MB as float16) or 1 GB (the default now).

    python benchmarks/bench_train_loop.py [--seconds 120] [--screen texture]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import screen_plate, suite_parser  # noqa: E402

BURNER = "import time\nt = time.time()\nwhile time.time() - t < 1e6: pass\n"
LOADS = ("alone", "beside a busy process")


@contextmanager
def machine_load(load: str):
    """The machine as ``load`` says: alone, or with one other process burning a core throughout."""
    burner = subprocess.Popen([sys.executable, "-c", BURNER]) if load != "alone" else None
    try:
        yield
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()

CORES = os.cpu_count() or 1
#: name -> (extra gandl train options, environment, cache MB)
VARIANTS = {
    "default: threads follow the free cores": ([], {}, None),
    f"{CORES} threads, one per core": (["--threads", str(CORES)], {}, None),
    "1 thread": (["--threads", "1"], {}, None),
    "default threads, `--contrastive 1`": (["--contrastive", "1"], {}, None),
}


def train_for(plate: Path, seconds: float, options: list[str], env: dict, cache_mb: float | None) -> dict:
    """One timed run in a fresh process; its rate and longest step from losses.csv."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        code = ("import sys; from napari_gandl.cli import main; from napari_gandl.gan import config;"
                + (f"config.PRESETS['quick']['data']['cache_mb'] = {cache_mb};" if cache_mb else "")
                + "sys.exit(main(sys.argv[1:]))")
        cmd = [sys.executable, "-c", code, "train", str(plate), "--out", str(run), "--device", "cpu",
               "--minutes", f"{seconds / 60:.3f}", "--runs", "1", *options]
        t0 = time.time()
        out = subprocess.run(cmd, check=True, env={**os.environ, **env}, capture_output=True, text=True)
        wall = time.time() - t0
        said = re.findall(r"(\d+) threads?\b", out.stderr)  # the default says its threads on the progress line
        log = pd.read_csv(run / "losses.csv")
        steps = log.iloc[min(20, len(log) // 5):]  # warm-up left out
        step_s = 16 / steps["img_per_s"]
        return {"img_per_s": len(steps) * 16 / step_s.sum(), "max_step_s": float(step_s.max()),
                "kimg": float(log["kimg"].iloc[-1]), "wall_s": wall,
                "threads_at_end": int(said[-1]) if said else int(options[1]) if options[:1] == ["--threads"] else None}


def main(argv=None) -> int:
    ap = suite_parser(__doc__, screens=False)
    ap.add_argument("--screen", default="texture")
    ap.add_argument("--seconds", type=float, default=120.0, help="training time of each run")
    args = ap.parse_args(argv)
    plate = screen_plate(args.cache, args.screen)
    load_start = os.getloadavg()[0]
    rows = []
    for load in LOADS:
        with machine_load(load):
            for name, (options, env, cache) in VARIANTS.items():
                r = train_for(plate, args.seconds, options, env, cache)
                rows.append({"load": load, "variant": name, **r})
                print(rows[-1], flush=True)
    for cache in (256, 1024):
        r = train_for(plate, 2 * args.seconds, ["--threads", "1"], {}, cache)
        rows.append({"load": "alone", "variant": f"1 thread, {cache} MB site cache, {2 * args.seconds:.0f} s", **r})
        print(rows[-1], flush=True)
    table = ["| load | variant | img/s | longest step (s) | kimg in the run | threads at the end |",
             "|---|---|---|---|---|---|"]
    table += [f"| {r['load']} | {r['variant']} | {r['img_per_s']:.1f} | {r['max_step_s']:.2f} | {r['kimg']:.1f} | "
              f"{r['threads_at_end'] or ''} |" for r in rows]
    kimg = {(r["load"], r["variant"]): r["kimg"] for r in rows}
    busy, alone = "beside a busy process", "alone"
    default, every, one, contrast = VARIANTS
    reading = (f"Images seen in {args.seconds:.0f} s (start-up and warm-up included): alone, the default "
               f"{kimg[alone, default]:.2f} kimg, one thread per core {kimg[alone, every]:.2f}, one thread "
               f"{kimg[alone, one]:.2f}; beside one busy process, the default {kimg[busy, default]:.2f}, one thread per "
               f"core {kimg[busy, every]:.2f}, one thread {kimg[busy, one]:.2f}. The default measures the other "
               "processes every 10 s, so under load its first seconds run with every core's thread. The site "
               f"contrast (`--contrastive 1`) sees {kimg[alone, contrast]:.2f} kimg alone and "
               f"{kimg[busy, contrast]:.2f} beside a busy process: each real crop gets a second crop through D.")
    body = (f"`gandl train` with the `quick` preset on the `{args.screen}` suite screen, {args.seconds:.0f} s of "
            f"training per run unless stated, each run in its own process; img/s over the steps after the first "
            f"20. \"Beside a busy process\": one other process burning a core for the whole run.\n\n"
            + "\n".join(table) + "\n\n" + reading + f"\n\n1-minute load average at the start {load_start:.1f}, at the "
            f"end {os.getloadavg()[0]:.1f} (the runs' own, on {os.cpu_count()} cores; other jobs would show above it).\n")
    publish("train_loop", "Training throughput: threads, load and the site cache", body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
