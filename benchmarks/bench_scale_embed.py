"""A whole screen: embedding with decoding included, Recursion's released embeddings at full
size, and training start-up against the number of sites.

Three parts, each writing its own section of docs/benchmarks.md:

``--part embed``
    ``gandl embed`` on a plate of full-size 1024^2 five-stain PNG tiles (the synthetic screen,
    RxRx19a-sized cells): what decoding and the model each cost per core (CPU seconds, which
    the machine's other jobs distort far less than wall time), the pipeline with tiles decoded
    in the main thread against decoded by reader threads one batch ahead, dask.distributed on
    a LocalCluster of 1 and 2 worker processes, peak memory, and the hours RxRx19a's 305,520
    sites take on N cores.
``--part released``
    a synthetic file of the shape of RxRx19a's ``embeddings.csv`` (305,520 sites x 1,024
    features, ``site_id`` then columns ``0``..``1023``) with its ``metadata.csv``: the first
    load (pyarrow's CSV reader, converted once to parquet beside it), the next loads, the
    Embed dock attaching it in napari to a 305,520-site site table, and ``gandl analyse`` end to
    end; each in a fresh process, with its peak memory.
``--part startup``
    GAN-DL training start-up (the normaliser's sample, ``--scale auto``, the sampler's site
    list, the first step) and its memory on plates of 36 to 307,200 sites.

    python benchmarks/bench_scale_embed.py --part embed|released|startup|all   (released: under xvfb-run -a)

All parts go into one section of docs/benchmarks.md (``scale_embed``); each part keeps its body in
``.bench/scale/section-PART.md``, so a part can be measured again on its own.
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

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
sys.path.insert(0, str(HERE))
WORK = ROOT / ".bench" / "scale"

# RxRx19a: 305,520 sites; the released embeddings have 1,024 features per site
RXRX19A_SITES = 305_520
RELEASED_DIM = 1024
DOSES = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


# ---------------------------------------------------------------- the released embeddings' shape
def released_metadata(seed: int = 0, n_compounds: int = 1672):
    """An RxRx19a-shaped site table (305,520 sites): HRCE and VERO, two experiments each of 50
    plates of up to 384 wells, 4 sites per well; per cell type 1,500 Mock, 1,500 UV-inactivated,
    5,094 active-virus wells and 1,672 compounds x 6 doses x 3 wells, 10 % of them rescuing.
    Returns (sites, rescue per site, ground truth)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOP" for c in range(1, 25)]
    active = rng.random(n_compounds) < 0.1
    ec50 = 10 ** rng.uniform(-1.5, 1, n_compounds)
    wells = []
    for cell_type in ("HRCE", "VERO"):
        conditions = ([("Mock", None, np.nan, 1.0)] * 1500 + [("UV Inactivated SARS-CoV-2", None, np.nan, 1.0)] * 1500
                      + [("Active SARS-CoV-2", None, np.nan, 0.0)] * 5094)
        for c in range(n_compounds):
            for dose in DOSES:
                rescue = 0.9 / (1 + (ec50[c] / dose) ** 1.5) if active[c] else 0.0
                conditions += [("Active SARS-CoV-2", f"cpd{c:04d}", dose, rescue)] * 3
        half = len(conditions) // 2
        for k, i in enumerate(rng.permutation(len(conditions))):
            experiment = f"{cell_type}-{1 + (k >= half)}"
            j = k - half * (k >= half)
            wells.append((cell_type, experiment, j // 384 + 1, rows[j % 384], *conditions[i]))
    wells = pd.DataFrame(wells, columns=["cell_type", "experiment", "plate", "well", "disease_condition",
                                         "treatment", "treatment_conc", "rescue"])
    wells["well_id"] = wells["experiment"] + "_" + wells["plate"].astype(str) + "_" + wells["well"]
    sites = wells.loc[wells.index.repeat(4)].reset_index(drop=True)
    sites["site"] = np.tile(np.arange(1, 5), len(wells))
    sites["site_id"] = sites["well_id"] + "_" + sites["site"].astype(str)
    sites["SMILES"] = None
    truth = pd.DataFrame({"compound": [f"cpd{c:04d}" for c in range(n_compounds)], "active": active})
    rescue = sites.pop("rescue").to_numpy(np.float32)
    columns = ["site_id", "well_id", "cell_type", "experiment", "plate", "well", "site",
               "disease_condition", "treatment", "treatment_conc", "SMILES"]
    return sites[columns], rescue, truth


def write_released(folder: Path, dim: int = RELEASED_DIM, chunk: int = 16_384) -> Path:
    """``folder/embeddings.csv`` (``site_id``, then ``0``..``dim-1``, two decimals as a CSV
    export of float features prints them) and ``folder/metadata.csv``, ``folder/ground_truth/
    compounds.csv``; written in chunks, so memory stays small. Features: low-rank structure and
    noise, a rescue direction, a cell-type offset and per-plate offsets."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = folder / "embeddings.csv"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    sites, rescue, truth = released_metadata()
    assert len(sites) == RXRX19A_SITES
    sites.to_csv(folder / "metadata.csv", index=False)
    (folder / "ground_truth").mkdir(exist_ok=True)
    truth.to_csv(folder / "ground_truth" / "compounds.csv", index=False)
    rng = np.random.default_rng(1)
    low_rank = (rng.normal(size=(16, dim)) / 4).astype(np.float32)
    direction = rng.normal(size=dim).astype(np.float32)
    direction /= np.linalg.norm(direction)
    plate_index = (sites["experiment"] + "_" + sites["plate"].astype(str)).astype("category").cat.codes.to_numpy()
    plate_offsets = rng.normal(0, 0.5, (plate_index.max() + 1, dim)).astype(np.float32)
    hrce = (sites["cell_type"] == "HRCE").to_numpy()
    names = ["site_id"] + [str(i) for i in range(dim)]
    tmp = path.with_name(path.name + ".tmp")
    options = pcsv.WriteOptions(quoting_style="needed", include_header=False)
    schema = pa.schema([(n, pa.string() if n == "site_id" else pa.float64()) for n in names])
    with open(tmp, "wb") as out, pcsv.CSVWriter(out, schema, write_options=options) as writer:
        out.write((",".join(names) + "\n").encode())  # a plain header, as pandas writes it
        for s in range(0, len(sites), chunk):
            e = min(s + chunk, len(sites))
            x = (rng.normal(size=(e - s, 16)).astype(np.float32) * 2) @ low_rank
            x += rng.normal(size=(e - s, dim)).astype(np.float32)
            x += (2 * rescue[s:e] - 1)[:, None] * direction
            x[:, 1] += np.where(hrce[s:e], 2.0, -2.0)
            x += plate_offsets[plate_index[s:e]]
            values = np.round(0.6 + 0.12 * x.astype(np.float64), 2)
            columns = [pa.array(sites["site_id"].to_numpy()[s:e])] + [values[:, j] for j in range(dim)]
            writer.write_table(pa.Table.from_arrays(columns, names=names))
    tmp.rename(path)
    return path


# ---------------------------------------------------------------- embedding a screen
def full_size_plate(folder: Path) -> Path:
    """72 sites of 1024^2 five-stain 8-bit PNG tiles (the synthetic screen at RxRx19a's size:
    cells 40-60 px across, nuclei about 20 px), two plates of one cell type each."""
    from napari_gandl.synthetic import write_sample_plate
    from napari_gandl.synthetic.design import DEMO_COMPOUNDS

    if not (folder / "metadata.csv").is_file():
        write_sample_plate(folder, "demo", tile_size=1024, cell_scale=2.0, plates_per_cell_type=1,
                           sites_per_well=2, mock_wells=2, uv_wells=2, active_wells=2,
                           compounds=DEMO_COMPOUNDS[:2])
    return folder


def model_run(plate: Path, folder: Path) -> Path:
    """A GAN-DL run of the ``quick`` preset on ``plate`` (a few steps: the embedding's cost does
    not depend on how long the networks trained); ``--scale auto`` chooses the downsampling."""
    if not (folder / "checkpoint.pt").is_file():
        subprocess.run([sys.executable, "-m", "napari_gandl.cli", "train", str(plate), "--out", str(folder),
                        "--kimg", "0.032", "--runs", "1", "--device", "cpu", "--threads", "1"], check=True)
    return folder


def machine_load() -> str:
    """The 1-minute load average and the other processes busy on the machine, in words."""
    import psutil

    me = os.getpid()
    procs = list(psutil.process_iter())
    for proc in procs:
        try:
            proc.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(2.0)
    busy = []
    for proc in procs:
        try:
            if proc.pid != me and proc.ppid() != me and proc.cpu_percent(None) > 20:
                cmd = proc.cmdline() or []
                busy.append(" ".join(Path(c).name if i < 2 else c for i, c in enumerate(cmd[:4])))
        except psutil.Error:
            pass
    return (f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; other busy processes: "
            + ("; ".join(f"`{b}`" for b in busy) if busy else "none"))


class BusyWatch:
    """Samples, every ``every`` seconds in a thread, the processes outside this benchmark (not it,
    nor its children) that use more than ``threshold`` % of a core: what else loaded the machine
    while it measured."""

    def __init__(self, every: float = 5.0, threshold: float = 20.0):
        import threading

        self.every, self.threshold = every, threshold
        self.samples = 0
        self.seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="busy-watch", daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        for proc in psutil.process_iter():
            try:
                proc.cpu_percent(None)
            except psutil.Error:
                pass
        while not self._stop.wait(self.every):
            try:
                mine = {me.pid, *(c.pid for c in me.children(recursive=True))}
            except psutil.Error:
                mine = {me.pid}
            self.samples += 1
            for proc in psutil.process_iter():  # psutil keeps the instances between calls
                try:
                    if proc.pid in mine or proc.name() in ("Xvfb", "xvfb-run"):
                        continue
                    if proc.cpu_percent(None) > self.threshold:
                        cmd = proc.cmdline() or [proc.name() or "?"]
                        name = " ".join(Path(c).name if i < 2 else c for i, c in enumerate(cmd[:4]))[:80]
                        self.seen[name] = self.seen.get(name, 0) + 1
                except psutil.Error:
                    pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.seen:
            return f"none in {self.samples} samples, {self.every:.0f} s apart"
        return ("; ".join(f"`{cmd}` in {n} of {self.samples} samples" for cmd, n in
                          sorted(self.seen.items(), key=lambda item: -item[1]))
                + f" (samples {self.every:.0f} s apart, over {self.threshold:.0f} % of a core)")


def measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; its wall time, CPU time (user + system) and peak RSS (MiB), from ``wait4``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {out[-2000:]}")
    return {"wall_s": time.perf_counter() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mib": usage.ru_maxrss / 1024, "stdout": out}


def child(name: str, **kwargs) -> dict:
    """One measurement in a fresh process of this script (its JSON result, and its peak memory)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, json.dumps(kwargs)]
    run = measured(cmd, env={"OMP_NUM_THREADS": "1"})
    return {**json.loads(run["stdout"].strip().splitlines()[-1]), "process_peak_mib": run["peak_mib"]}


def cpu_clock():
    return time.perf_counter(), time.process_time(), time.thread_time()


def since(clock) -> dict:
    """Wall time, the process's CPU time and the calling thread's CPU time since ``clock``."""
    return {"wall_s": time.perf_counter() - clock[0], "cpu_s": time.process_time() - clock[1],
            "thread_cpu_s": time.thread_time() - clock[2]}


def child_embed_parts(plate: str, run: str, batch: int, rounds: int = 3) -> dict:
    """Decoding and the model apart, then the pipeline with the sites decoded in the calling
    thread (``embed_batch`` after ``embed_batch``) against the pipeline as it is (``embed_plate``:
    reader threads decode the next batch while the model embeds this one), alternating."""
    import torch

    from napari_gandl.embedding import embed_batch, embed_plate, load_embedder
    from napari_gandl.embedding.pipeline import READ_THREADS
    from napari_gandl.plate import open_plate
    from napari_gandl.preprocessing.sampling import tile_positions

    torch.set_num_threads(1)
    opened = open_plate(plate)
    embedder = load_embedder("gandl", run, opened, "cpu")
    sites = list(range(opened.n_sites))
    clock = cpu_clock()
    images = [opened.read_site(s) for s in sites]
    decode = since(clock)
    clock = cpu_clock()
    for s in range(0, len(images), batch):
        embedder.embed_sites(np.stack(images[s:s + batch]))
    model = since(clock)
    del images
    batches = [sites[s:s + batch] for s in range(0, len(sites), batch)]
    calling, ahead = [], []
    for _ in range(rounds):
        clock = cpu_clock()
        for b in batches:
            embed_batch(opened, embedder, b)
        calling.append(since(clock))
        clock = cpu_clock()
        embed_plate(opened, embedder, batch_size=batch)
        ahead.append(since(clock))
    model_cfg = embedder.model
    return {"sites": len(sites), "decode": decode, "model": model, "calling_thread": calling,
            "read_ahead": ahead, "read_threads": READ_THREADS, "scale": int(model_cfg.scale),
            "resolution": int(model_cfg.resolution),
            "tiles_per_site": len(tile_positions(opened.tile_shape[0] // model_cfg.scale, model_cfg.resolution)) ** 2}


def child_embed_dask(plate: str, run: str, batch: int, workers: int, mmap_threshold: int | None = None) -> dict:
    """``embed_plate`` with a dask.distributed LocalCluster of ``workers`` single-threaded
    worker processes: wall time, the workers' CPU time and peak memory. ``mmap_threshold`` sets
    ``MALLOC_MMAP_THRESHOLD_`` in the workers' environment before they start."""
    import tempfile

    import dask
    from distributed import Client, LocalCluster

    from napari_gandl.embedding import embed_plate, load_embedder
    from napari_gandl.plate import open_plate

    def usage():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024

    environ = {"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": mmap_threshold} if mmap_threshold else {}
    env = {"PYTHONPATH": os.pathsep.join(sys.path)}
    with dask.config.set(environ), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None, env=env) as cluster, \
            Client(cluster) as client, tempfile.TemporaryDirectory() as tmp:
        embedder = load_embedder("gandl", run, open_plate(plate), "cpu")
        before = client.run(usage)
        clock = cpu_clock()
        embed_plate(plate, embedder, out_path=Path(tmp) / "e.parquet", batch_size=batch, scheduler=client)
        wall = since(clock)
        after = client.run(usage)
    return {"workers": workers, "mmap_threshold": mmap_threshold, "wall_s": wall["wall_s"],
            "client_cpu_s": wall["cpu_s"], "workers_cpu_s": sum(after[w][0] - before[w][0] for w in after),
            "worker_peak_mib": max(after[w][1] for w in after), "client_peak_mib": usage()[1]}


def hours(sites_per_core_s: float, cores: int) -> str:
    return f"{RXRX19A_SITES / (sites_per_core_s * cores) / 3600:.1f} h"


#: glibc's threshold above which an allocation is mapped afresh, set for the workers in one variant
MMAP_THRESHOLD = 64 * 2**20


def part_embed(batch: int = 8) -> str:
    from napari_gandl.plate import open_plate

    plate = full_size_plate(WORK / "plate1024")
    run = model_run(plate, WORK / "run-quick")
    load_before = machine_load()
    parts = child("embed_parts", plate=str(plate), run=str(run), batch=batch)
    with_cli = WORK / "cli.parquet"
    with_cli.unlink(missing_ok=True)
    cli = measured([sys.executable, "-m", "napari_gandl.cli", "embed", str(plate), "--checkpoint", str(run),
                    "--out", str(with_cli), "--batch", str(batch), "--threads", "1", "--device", "cpu"],
                   env={"OMP_NUM_THREADS": "1"})
    dask = [child("embed_dask", plate=str(plate), run=str(run), batch=batch, workers=k, mmap_threshold=m)
            for m in (None, MMAP_THRESHOLD) for k in (1, 2)]
    load_after = machine_load()
    cli.pop("stdout", None)
    results = {"batch": batch, "parts": parts, "cli": cli, "dask": dask, "load_before": load_before,
               "load_after": load_after, "tile_mib": open_plate(plate).tile_shape[0] ** 2 * 5 / 2**20}
    (WORK / "embed.json").write_text(json.dumps(results, indent=1))
    return render_embed(results)


def render_embed(results: dict) -> str:
    """The embed part's text from its measurements (``.bench/scale/embed.json``)."""
    batch, parts, cli, dask = results["batch"], results["parts"], results["cli"], results["dask"]
    load_before, load_after, tile_mib = results["load_before"], results["load_after"], results["tile_mib"]
    n = parts["sites"]

    def mean(runs, key):
        return float(np.mean([r[key] for r in runs]))

    calling, ahead = parts["calling_thread"], parts["read_ahead"]
    per_site = {"decoding the five PNG tiles (PIL)": parts["decode"]["cpu_s"] / n,
                "the model (downsampling, normalisation, tiles, discriminator)": parts["model"]["cpu_s"] / n,
                f"the pipeline (`embed_plate`: both, {parts['read_threads']} reader threads, the rows)":
                    mean(ahead, "cpu_s") / n}
    for d in dask:
        if d["workers"] == 1:
            setting = (f"`MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}`" if d["mmap_threshold"]
                       else "dask's default `MALLOC_TRIM_THRESHOLD_=65536`")
            per_site[f"one dask worker, {setting}"] = d["workers_cpu_s"] / n
    per_core = n / mean(ahead, "cpu_s")
    decode = parts["decode"]["cpu_s"] / n
    model = parts["model"]["cpu_s"] / n
    lines = [
        f"`gandl embed` (GAN-DL, `quick` preset) on {n} sites of 1024 x 1024 five-stain 8-bit PNG tiles "
        f"({tile_mib:.0f} MiB of pixels per site; the synthetic screen with RxRx19a-sized cells, nuclei "
        f"about 20 px across), decoding included. `--scale auto` chose {parts['scale']}x downsampling: "
        f"{parts['tiles_per_site']} tiles of {parts['resolution']} px per site go through the "
        f"discriminator. One torch thread per process, batch {batch}. Per-core rates come from CPU time, "
        "which the machine's other jobs distort far less than wall time.",
        "",
        "| step | CPU s per site | sites per CPU second |",
        "|---|---|---|",
        *[f"| {k} | {v:.3f} | {1 / v:.2f} |" for k, v in per_site.items()],
        "",
        "| run | wall time | sites/s | CPU s | peak memory |",
        "|---|---|---|---|---|",
        f"| `gandl embed --threads 1` (one process) | {cli['wall_s']:.1f} s | {n / cli['wall_s']:.2f} | "
        f"{cli['cpu_s']:.1f} | {cli['peak_mib']:.0f} MiB |",
    ]
    for d in dask:
        setting = "`MALLOC_MMAP_THRESHOLD_` set" if d["mmap_threshold"] else "dask's defaults"
        lines.append(f"| dask.distributed, LocalCluster of {d['workers']} worker process(es), {setting} | "
                     f"{d['wall_s']:.1f} s | {n / d['wall_s']:.2f} | {d['workers_cpu_s']:.1f} in the workers "
                     f"+ {d['client_cpu_s']:.1f} in the client | {d['worker_peak_mib']:.0f} MiB per worker, "
                     f"{d['client_peak_mib']:.0f} MiB the client |")
    one, two = dask[2], dask[3]
    lines += [
        "",
        f"The `gandl embed` row includes starting Python, loading torch and the model and opening the plate; "
        "the dask rows start timing once the cluster is up. "
        f"Two workers against one (`MALLOC_MMAP_THRESHOLD_` set): {one['wall_s'] / two['wall_s']:.2f}x the "
        f"speed on this 2-core machine, {two['workers_cpu_s'] / one['workers_cpu_s']:.2f}x the CPU time in all "
        "(the client process, which sends the batches and writes the rows, and the other processes listed "
        f"above share the two cores; each run embeds only {n} sites, so shipping the model to the workers "
        "and scheduling weigh in). "
        "dask's nanny starts its workers with `MALLOC_TRIM_THRESHOLD_=65536`, which makes glibc map "
        "every array above 128 KiB afresh (and fault its pages in again): the embedding's per-site "
        "arrays then cost "
        f"{dask[0]['workers_cpu_s'] / dask[2]['workers_cpu_s']:.2f}x the CPU time of a worker started "
        "with `MALLOC_MMAP_THRESHOLD_` set (docs/embedding.md says how).",
        "",
        f"**Reader threads.** The pipeline decodes the next batch in {parts['read_threads']} threads (PIL "
        "releases the GIL) while the model embeds this one. Against decoding in the calling thread "
        "(`embed_batch` after `embed_batch`), alternating in one process, per pass over the "
        f"{n} sites:",
        "",
        "| | calling thread | read ahead |",
        "|---|---|---|",
        f"| the model thread's CPU time (the critical path with a free core) | "
        f"{mean(calling, 'thread_cpu_s'):.1f} s | {mean(ahead, 'thread_cpu_s'):.1f} s |",
        f"| the process's CPU time | {mean(calling, 'cpu_s'):.1f} s | {mean(ahead, 'cpu_s'):.1f} s |",
        f"| wall time on this machine (best of {len(calling)}) | {min(c['wall_s'] for c in calling):.1f} s | "
        f"{min(a['wall_s'] for a in ahead):.1f} s |",
        "",
        f"Reading ahead takes decoding off the model's thread for "
        f"{mean(ahead, 'cpu_s') / mean(calling, 'cpu_s') - 1:+.0%} CPU time: with a core to spare, "
        f"{mean(calling, 'thread_cpu_s') / mean(ahead, 'thread_cpu_s'):.2f}x the speed by the model thread's "
        f"CPU time; the best wall times here give "
        f"{min(c['wall_s'] for c in calling) / min(a['wall_s'] for a in ahead):.2f}x.",
        "",
        "**RxRx19a (305,520 sites), projected** from the per-core rates above (CPU time, decoding "
        "included), assuming the linear scaling of independent worker processes, each reading its own "
        "sites from a disk that keeps up (on this machine two dask workers gave "
        f"{one['wall_s'] / two['wall_s']:.2f}x, not 2x, on {n} sites):",
        "",
        "| cores | `gandl embed` pipeline, one process per core | dask workers, `MALLOC_MMAP_THRESHOLD_` set |",
        "|---|---|---|",
        *[f"| {c} | {hours(per_core, c)} | {hours(n / one['workers_cpu_s'], c)} |" for c in (1, 2, 16, 64, 256)],
        "",
        f"Decoding alone is {decode * RXRX19A_SITES / 3600:.1f} core-hours of that "
        f"({100 * decode / (decode + model):.0f} % of decoding and model): on a GPU, where the model costs "
        "little, decoding bounds the speed, so a GPU process wants the reader threads of as many cores "
        "as it has.",
        "",
        f"Machine at the start: {load_before}. At the end: {load_after}.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- the released embeddings
def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_released_load(csv: str, metadata: str | None) -> dict:
    """``load_embeddings`` (what ``gandl analyse`` and the analysis docks call) on the CSV."""
    from napari_gandl.tables import load_embeddings

    base = rss_mib()
    clock = cpu_clock()
    table = load_embeddings(Path(csv), Path(metadata) if metadata else None)
    return {**since(clock), "rows": len(table), "features": len(table.features), "base_mib": base,
            "peak_mib": peak_mib(), "matrix_mib": table.X.nbytes / 2**20}


def child_pandas_load(csv: str) -> dict:
    """The same file read by pandas (``read_csv``, then the float32 matrix): how tables were read before."""
    import pandas as pd

    base = rss_mib()
    clock = cpu_clock()
    frame = pd.read_csv(csv, low_memory=False)
    X = frame.drop(columns=["site_id"]).to_numpy(np.float32)
    return {**since(clock), "rows": len(X), "base_mib": base, "peak_mib": peak_mib()}


def whole_screen_plate(metadata: Path, pixels: Path):
    """A Plate whose site table is ``metadata`` (RxRx19a's 305,520 sites) and whose tiles are those
    of the small plate ``pixels``, site after site: what napari shows of a screen that size."""
    import pandas as pd

    from napari_gandl.plate import open_plate
    from napari_gandl.plate.model import Plate

    small = open_plate(pixels)
    sites = pd.read_csv(metadata).assign(problem="")
    m = small.n_sites
    return Plate(root=metadata.parent, kind="rxrx", sites=sites, stains=small.stains, tile_shape=small.tile_shape,
                 dtype=small.dtype, read_tile_strict=lambda s, c: small.read_tile_strict(s % m, c),
                 read_tile_lenient=lambda s, c: small.read_tile_lenient(s % m, c))


def child_napari_attach(csv: str, metadata: str, pixels: str) -> dict:
    """napari with a 305,520-site plate: the Embed dock loads the CSV (its worker) and attaches it
    to the site table (on the GUI thread), as a user does with *Load table*."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_gandl._viewer import plate_layer_data, site_table
    from napari_gandl.viewmodels import embed as model
    from napari_gandl.viewmodels.site_table import SiteTable

    viewer = napari.Viewer(show=False)
    plate = whole_screen_plate(Path(metadata), Path(pixels))
    for data, kwargs, _ in plate_layer_data(plate):
        viewer.add_image(data, **kwargs)
    _, dock = viewer.window.add_plugin_dock_widget("napari-gandl", "GAN-DL embeddings")
    table = site_table(viewer)
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()
    base = rss_mib()
    clock = cpu_clock()
    dock.table_path.value = csv
    worker = dock.load_table()
    while not table.embedding_columns:
        app.processEvents()
        time.sleep(0.01)
        if worker is not None and not worker.is_running and not table.embedding_columns:
            app.processEvents()
            if not table.embedding_columns:
                raise RuntimeError(f"the Embed dock did not attach {csv}: {dock.status.value}")
    total = since(clock)
    peak = peak_mib()
    status = dock.status.value
    frame, source = model.load_table_job(Path(csv), table.frame["site_id"])  # the worker's part, again
    again = SiteTable(plate)
    clock = cpu_clock()
    model.attach(again, frame, source)  # the GUI thread's part
    gui = since(clock)
    viewer.close()
    return {**total, "gui_s": gui["wall_s"], "sites": len(table), "features": len(table.embedding_columns),
            "base_mib": base, "peak_mib": peak, "status": status}


#: --reuse-loads: the released part measures only `gandl analyse` again (the loads from released.json)
REUSE_LOADS = False

#: how long `gandl analyse` may run before it is stopped and reported as unfinished
ANALYSE_LIMIT_S = 1200


def bounded(cmd: list[str], limit_s: float, log: Path) -> dict:
    """Run ``cmd`` (stdout and stderr into ``log``) for at most ``limit_s``; its wall and CPU time,
    peak memory (from ``wait4``), whether it finished, and the last lines it printed."""
    import signal

    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        finished = True
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > limit_s:
                finished = False
                proc.send_signal(signal.SIGTERM)
                deadline = time.perf_counter() + 10
                while not (pid := os.wait4(proc.pid, os.WNOHANG))[0]:
                    if time.perf_counter() > deadline:
                        proc.kill()
                        pid = os.wait4(proc.pid, 0)
                        break
                    time.sleep(0.2)
                _, status, usage = pid
                break
            time.sleep(1)
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here, by wait4
    if finished and code:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}): {log.read_text()[-2000:]}")
    text = log.read_text().replace("\r", "\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return {"wall_s": time.perf_counter() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mib": usage.ru_maxrss / 1024, "finished": finished, "last_lines": lines[-3:]}


def part_released(splits: int = 3) -> str:
    folder = WORK / "released"
    csv = write_released(folder)
    metadata = folder / "metadata.csv"
    copy = csv.with_name(csv.name + ".parquet")
    saved = WORK / "released.json"
    if REUSE_LOADS:  # measure `gandl analyse` again, keep the loads of the last run
        results = json.loads(saved.read_text())
        results["analyse_measured"] = f"{time.strftime('%H:%M UTC', time.gmtime())} ({machine_load()})"
    else:
        results = {"splits": splits, "load_before": machine_load(), "csv_gb": csv.stat().st_size / 1e9,
                   "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "code": code_version()}

    def keep(key, value):  # each step's result is kept as it comes, for a run that fails later
        results[key] = value
        saved.write_text(json.dumps(results, indent=1))

    if not REUSE_LOADS:
        copy.unlink(missing_ok=True)
        keep("first", child("released_load", csv=str(csv), metadata=str(metadata)))
        keep("parquet_mb", copy.stat().st_size / 1e6)
        keep("later", child("released_load", csv=str(csv), metadata=str(metadata)))
        keep("pandas", child("pandas_load", csv=str(csv)))
        plate = full_size_plate(WORK / "plate1024")
        keep("attach", child("napari_attach", csv=str(csv), metadata=str(metadata), pixels=str(plate)))
    report = WORK / "released-report"
    analyse = bounded([sys.executable, "-m", "napari_gandl.cli", "analyse", str(csv), "--metadata", str(metadata),
                       "--out", str(report), "--splits", str(splits)], ANALYSE_LIMIT_S, WORK / "released-analyse.log")
    if analyse["finished"]:
        analyse["summary"] = json.loads((report / "report.json").read_text())
    keep("analyse", analyse)
    keep("load_after", machine_load())
    return render_released(results)


def render_released(results: dict) -> str:
    """The released part's text from its measurements (``.bench/scale/released.json``)."""
    first, later, pandas, attach, analyse = (results[k] for k in ("first", "later", "pandas", "attach", "analyse"))
    splits = results["splits"]

    def row(name, r):
        return (f"| {name} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | {r['peak_mib']:.0f} MiB "
                f"(+{r['peak_mib'] - r['base_mib']:.0f}) |")

    command = f"`gandl analyse embeddings.csv --metadata metadata.csv --splits {splits}`"
    if analyse["finished"]:
        analyse_row = (f"| {command} | {analyse['wall_s']:.0f} s | {analyse['cpu_s']:.0f} s | "
                       f"{analyse['peak_mib']:.0f} MiB |")
        summary = analyse["summary"]
        tasks = "; ".join(f"{k} {100 * v['accuracy_mean']:.1f} %" for k, v in summary["tasks"].items())
        gt = summary.get("ground_truth") or {}
        analyse_text = (
            f"`gandl analyse` ({summary['n_sites']:,} sites, {summary['n_features']:,} features, {splits} "
            f"well-grouped splits per task instead of the default 10): {tasks}"
            + (f"; ground truth: AUC {gt['auc']:.3f} over the compound curves" if gt.get("auc") is not None else "")
            + f". The report's own timing: {summary['seconds']:.0f} s.")
    else:
        analyse_row = (f"| {command} | **not finished**, stopped after {analyse['wall_s']:.0f} s | "
                       f"{analyse['cpu_s']:.0f} s until then | {analyse['peak_mib']:.0f} MiB until then |")
        analyse_text = (
            f"`gandl analyse` did not finish within the benchmark's limit of {ANALYSE_LIMIT_S / 60:.0f} minutes "
            f"and was stopped; its last progress lines: "
            + " / ".join(f"`{line[:160]}`" for line in analyse["last_lines"])
            + ". It was still scoring the control tasks: each with the `--splits` well-grouped splits and "
            "10 groups of held-out plates (one fold per plate before, some 400 fits on 200 plates), a linear SVM "
            "(`LinearSVC`, primal, for tasks under 100,000 sites, as the control tasks are) per fold on up to "
            "~65,000 sites x 1,024 features.")
    return "\n".join([
        f"A synthetic file of the shape of RxRx19a's released `embeddings.csv`: {first['rows']:,} sites x "
        f"{first['features']:,} features (`site_id`, then columns `0`..`1023`, two decimals), "
        f"{results['csv_gb']:.2f} GB, with its `metadata.csv` (2 cell types, 4 experiments of 50 "
        "plates, Mock / UV-inactivated / active-virus controls, 1,672 compounds x 6 doses, 10 % of "
        "them rescuing). Each row is a fresh process; peak memory is the process's, with in brackets "
        "what it grew by from before the step.",
        "",
        "| step | wall time | CPU time | peak memory |",
        "|---|---|---|---|",
        row("first load: pyarrow converts the CSV to parquet beside it, then reads it", first),
        row("every later load (the parquet)", later),
        row("for comparison: `pandas.read_csv` and the float32 matrix (how tables were read before)", pandas),
        f"| napari: the Embed dock loads the table and attaches it to a {attach['sites']:,}-site plate | "
        f"{attach['wall_s']:.1f} s (of which {attach['gui_s']:.1f} s on the GUI thread) | {attach['cpu_s']:.1f} s | "
        f"{attach['peak_mib']:.0f} MiB (+{attach['peak_mib'] - attach['base_mib']:.0f}) |",
        analyse_row,
        "",
        f"The float32 matrix alone is {first['matrix_mib']:.0f} MiB. The parquet copy "
        f"(`embeddings.csv.parquet`) is {results['parquet_mb']:.0f} MB; it is made once, and again "
        "only when the CSV changes. The napari plate is the site table of those "
        f"{attach['sites']:,} sites over the tiles of the 72-site plate (the dock said: "
        f"\"{' '.join(attach['status'].split())}\").",
        "",
        analyse_text,
        "",
        f"Machine at the start: {results['load_before']}. At the end: {results.get('load_after', 'not recorded')}."
        + (f" The loads were measured at {results.get('measured', '?')}, `gandl analyse` again at "
           f"{results['analyse_measured']}." if "analyse_measured" in results else ""),
    ])


# ---------------------------------------------------------------- training start-up
def startup_plates() -> list[tuple[str, Path]]:
    """Plates of growing size with the same tiles: one plate folder of the 72-site source (36
    sites), then one plate, one experiment and the whole of the 307,200-site scale screen."""
    screen = ROOT / ".bench" / "rxrx19a-scale"
    source = ROOT / ".bench" / "scale-source"
    if not (screen / "metadata.csv").is_file():
        import scale_fixture

        scale_fixture.build(source, screen)
    return [("one plate folder of the 72-site source plate", source / "images" / "HRCE-1" / "Plate1"),
            ("one plate of the scale screen", screen / "images" / "HRCE-1" / "Plate1"),
            ("one experiment (50 plates)", screen / "images" / "HRCE-1"),
            ("the whole scale screen (4 experiments)", screen)]


def child_startup(plate: str) -> dict:
    """GAN-DL training start-up on ``plate`` (``quick`` preset, ``--scale auto``, one CPU thread):
    opening the plate, then the Trainer (the normaliser's sample, ``--scale auto``'s nuclei, the
    held-out and training site lists, the sampler, the networks), then the first two steps."""
    import tempfile

    import torch

    import napari_gandl.gan.config as gan_config
    import napari_gandl.gan.trainer as trainer
    from napari_gandl.gan.config import make_config
    from napari_gandl.plate import open_plate

    torch.set_num_threads(1)
    timings: dict[str, float] = {}

    def timed(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

        setattr(module, name, wrapper)

    timed(trainer, "fit_normalizer")
    timed(gan_config, "measure_scale")
    timed(trainer, "held_out_sites")
    timed(trainer, "TileSampler")
    base = rss_mib()
    clock = cpu_clock()
    opened = open_plate(plate)
    open_s = since(clock)
    with tempfile.TemporaryDirectory() as tmp:
        clock = cpu_clock()
        tr = trainer.Trainer(opened, Path(tmp) / "run", make_config("quick", device="cpu", threads=1, kimg=1))
        built = since(clock)
        built_peak = peak_mib()
        steps = []
        for _ in range(2):
            clock = cpu_clock()
            tr.step()
            steps.append(since(clock)["wall_s"])
    return {"sites": opened.n_sites, "open": open_s, "trainer": built, "parts": timings, "steps_s": steps,
            "scale": tr.data_cfg.scale, "train_sites": int(len(tr.sampler.sites)), "base_mib": base,
            "trainer_peak_mib": built_peak, "peak_mib": peak_mib()}


def part_startup() -> str:
    plates = startup_plates()
    load_before = machine_load()
    runs = [(label, child("startup", plate=str(path))) for label, path in plates]
    load_after = machine_load()
    lines = [
        "GAN-DL training start-up (`quick` preset, `--scale auto`, one torch thread) on plates of growing "
        "size made of the same 1024 x 1024 five-stain tiles: the 72-site plate's first plate folder, and one "
        "plate, one experiment and the whole of `scale_fixture.py`'s 307,200-site screen (hard links to those "
        "tiles). Each row is a fresh process; the file cache is warm. The Trainer's columns: fitting the "
        "normaliser (percentiles over a spread-out sample of sites), `--scale auto` (nuclei of 24 sites), "
        "the training and held-out site lists, the tile sampler; the total also builds the networks.",
        "",
        "| plate | sites | `open_plate` | normaliser | `--scale auto` | site lists | sampler | Trainer in all "
        "| first step | second step | peak memory (Trainer built / after 2 steps) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in runs:
        p = r["parts"]
        lines.append(
            f"| {label} | {r['sites']:,} | {r['open']['wall_s']:.2f} s | {p.get('fit_normalizer', 0):.2f} s | "
            f"{p.get('measure_scale', 0):.2f} s | {p.get('held_out_sites', 0) * 1000:.0f} ms | "
            f"{p.get('TileSampler', 0) * 1000:.0f} ms | {r['trainer']['wall_s']:.2f} s | {r['steps_s'][0]:.2f} s | "
            f"{r['steps_s'][1]:.2f} s | {r['trainer_peak_mib']:.0f} / {r['peak_mib']:.0f} MiB |")
    small, big = runs[0][1], runs[-1][1]
    start_small = small["open"]["wall_s"] + small["trainer"]["wall_s"] + small["steps_s"][0]
    start_big = big["open"]["wall_s"] + big["trainer"]["wall_s"] + big["steps_s"][0]
    lines += [
        "",
        f"From {small['sites']:,} to {big['sites']:,} sites ({big['sites'] / small['sites']:,.0f}x), start-up "
        f"(open + Trainer + first step) goes from {start_small:.1f} s to {start_big:.1f} s "
        f"({start_big / start_small:.2f}x) and peak memory from {small['peak_mib']:.0f} to {big['peak_mib']:.0f} MiB "
        f"(+{big['peak_mib'] - small['peak_mib']:.0f} MiB); `--scale auto` chose {big['scale']}x on every plate"
        + ("" if len({r['scale'] for _, r in runs}) == 1 else f" (it chose {[r['scale'] for _, r in runs]})")
        + f". The sampler trains on {big['train_sites']:,} sites of the whole screen.",
        "",
        f"Machine at the start: {load_before}. At the end: {load_after}.",
    ]
    return "\n".join(lines)


PARTS = {"embed": ("Embedding a whole screen: decoding included, 1 and 2 dask workers", part_embed),
         "released": ("RxRx19a's released embeddings at full size (305,520 x 1,024)", part_released),
         "startup": ("Training start-up against the number of sites", part_startup)}
SECTION = ("scale_embed", "A whole screen: embedding, the released embeddings, training start-up "
                          "(bench_scale_embed.py)")
CHILDREN = {"embed_parts": child_embed_parts, "embed_dask": child_embed_dask, "released_load": child_released_load,
            "pandas_load": child_pandas_load, "napari_attach": child_napari_attach,
            "startup": child_startup}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="all", choices=[*PARTS, "all"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--no-report", action="store_true", help="print the sections, do not write them")
    parser.add_argument("--reuse-loads", action="store_true",
                        help="released: measure only `gandl analyse` again, keep the loads of the last run")
    parser.add_argument("--render-released", action="store_true",
                        help="write the released part's text again from its last measurements (released.json)")
    parser.add_argument("--render-embed", action="store_true",
                        help="write the embed part's text again from its last measurements (.bench/scale/embed.json)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](**json.loads(args.args))), flush=True)
        return
    from _report import write_section

    global REUSE_LOADS
    REUSE_LOADS = args.reuse_loads
    if args.render_embed:
        path = WORK / "section-embed.md"
        head = path.read_text().split("\n\n", 1)[0]  # when it was measured, the load
        path.write_text(head + "\n\n" + render_embed(json.loads((WORK / "embed.json").read_text())))
        args.part = "none"
    if args.render_released:  # the text again from released.json, e.g. after a run that failed at its end
        results = json.loads((WORK / "released.json").read_text())
        head = (f"*Measured:* {results.get('measured', '?')} on {results.get('code', code_version())}; "
                f"{results.get('suite', 'see the load below')}.")
        (WORK / "section-released.md").write_text(head + "\n\n" + render_released(results))
        args.part = "none"

    for name in PARTS if args.part == "all" else [] if args.part == "none" else [args.part]:
        title, fn = PARTS[name]
        started = uptime()
        with BusyWatch() as watch:
            measured_body = fn()
        body = (f"*Measured:* {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {code_version()}, `uptime` "
                f"at the start: {started}, at the end: {uptime()}; {suite_state(watch)}. "
                f"Other processes busy while it ran: {watch.summary()}.\n\n{measured_body}")
        print(f"### {title}\n\n{body}\n", flush=True)
        if not args.no_report:
            (WORK / f"section-{name}.md").write_text(body)
    if not args.no_report:
        # one section, the parts measured so far (each part is run on its own and keeps its body)
        parts = [(title, WORK / f"section-{name}.md") for name, (title, _) in PARTS.items()]
        write_section(*SECTION, "\n\n".join(f"### {title}\n\n{path.read_text().strip()}"
                                             for title, path in parts if path.is_file()))


def suite_state(watch: BusyWatch) -> str:
    """Whether the background GAN training (bench_suite.py, `gandl train`) ran beside the part."""
    seen = max((n for cmd, n in watch.seen.items() if "cli train" in cmd or "bench_suite" in cmd), default=0)
    if not seen:
        return "the background GAN training was paused (SIGSTOP) and not seen running"
    return (f"the background GAN training ran beside it (seen in {seen} of {watch.samples} samples, "
            "a core's worth): wall times are inflated, CPU times much less so")


def code_version() -> str:
    """The commit measured, and whether src/ had uncommitted changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True).stdout
    return f"`{head.strip()}`" + (" with uncommitted changes in src/" if dirty.strip() else "")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

if __name__ == "__main__":
    main()
