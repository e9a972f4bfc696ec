"""How long ``gandl embed`` takes with each choice of torch threads, alone and beside a busy process.

The same thread choices as ``bench_train_loop.py`` (the default, which follows the free cores;
one thread per core; one thread), each ``gandl embed --method gandl`` of a whole suite screen in
a fresh process, with the suite's cached 16-kimg GAN-DL run of the screen (``bench_suite.py``
trains it). Wall time from the command's start to its end, median of ``--repeats`` runs.

    python benchmarks/bench_embed_threads.py [--screen texture] [--repeats 3]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import screen_plate, suite_parser  # noqa: E402
from bench_train_loop import LOADS, VARIANTS, machine_load  # noqa: E402


def embed_for(plate: Path, run: Path, options: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "napari_gandl.cli", "embed", str(plate), "--method", "gandl",
               "--checkpoint", str(run), "--out", str(Path(tmp) / "embedding.parquet"), "--device", "cpu", *options]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - start


def main(argv=None) -> int:
    ap = suite_parser(__doc__, screens=False)
    ap.add_argument("--screen", default="texture")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    plate = screen_plate(args.cache, args.screen)
    run = args.cache / args.screen / "gandl-16kimg"
    if not (run / "checkpoint.pt").is_file():
        raise SystemExit(f"{run}: no GAN-DL run; train it with bench_suite.py --screens {args.screen} --kimg 16")
    load_start = os.getloadavg()[0]
    seconds = {}
    for load in LOADS:
        with machine_load(load):
            for _ in range(args.repeats):  # the variants take turns, so that all meet the same machine
                for name, (options, _, _) in VARIANTS.items():
                    seconds.setdefault((load, name), []).append(embed_for(plate, run, options))
                    print(load, name, seconds[load, name][-1], flush=True)
    table = ["| load | threads | seconds (median) | runs |", "|---|---|---|---|"]
    table += [f"| {load} | {name} | {np.median(t):.1f} | {', '.join(f'{v:.1f}' for v in t)} |"
              for (load, name), t in seconds.items()]
    body = (f"`gandl embed --method gandl --device cpu` of the whole `{args.screen}` suite screen with its 16-kimg "
            f"GAN-DL run, each run a fresh process (start-up included), {args.repeats} runs per row. \"Beside a busy "
            "process\": one other process burning a core for the whole run. The default measures the other "
            "processes every 10 s, so under load its first seconds run with every core's thread.\n\n"
            + "\n".join(table) + f"\n\n1-minute load average at the start {load_start:.1f}, at the end "
            f"{os.getloadavg()[0]:.1f} (the runs' own, on {os.cpu_count()} cores).\n")
    publish("embed_threads", "Embedding throughput: threads and load (bench_embed_threads.py)",
            body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
