"""The embedding pipeline: any :class:`Embedder` over every site of a plate.

Sites are read in batches, the plate's stains are mapped onto the ones the
model expects (:mod:`.stains`), each batch goes through
``embedder.embed_sites`` and its rows (``site_id``, the plate's metadata
columns, then float32 ``f000..``) are kept or streamed to parquet, so memory
does not grow with the plate.  Reader threads decode the next batch while the
model embeds this one.

Streaming to ``out_path`` holds a lock on it (:func:`napari_gandl.files.output_lock`):
a second process writing the same file is refused, naming the first.  It resumes:
every finished batch is written, atomically,
to ``.NAME.parts/`` beside the output, together with a manifest of what is
being computed (method, weights, sites, batch size, stain map).  Rerunning the
same command after a crash or ``kill -9`` keeps the batches already written
and computes the rest; the final file appears (atomic rename) only when every
batch is there, and the parts folder is then removed.

With ``scheduler`` the batches run on a dask.distributed cluster.  The
embedder is sent to the workers once; each worker opens the exact folder that
was opened here, once, and refuses it if it holds other sites (the plate's
fingerprint), so a ``Plate{n}`` folder embeds that plate's sites, never
another's.  The result equals a local run.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Generator, Iterable, Sequence

import numpy as np
import pandas as pd

from napari_gandl.embedding.base import Embedder, feature_columns
from napari_gandl.embedding.stains import resolve_stain_map
from napari_gandl.files import atomic_path, output_lock, write_text
from napari_gandl.plate import open_plate
from napari_gandl.preprocessing.normaliser import check_bit_depth

__all__ = ["embed_plate", "iterate_embedding", "embed_batch", "site_metadata", "read_embedding_table"]

MANIFEST = "manifest.json"
ROW_GROUP = 16_384  # rows per row group of the output parquet file


def site_metadata(plate) -> pd.DataFrame:
    """The plate's site table as embedding metadata: ``site_id`` first, no ``problem`` column."""
    meta = plate.sites.drop(columns=["problem"], errors="ignore").reset_index(drop=True)
    return meta[["site_id"] + [c for c in meta.columns if c != "site_id"]]


def _frame(meta: pd.DataFrame, feats: np.ndarray) -> pd.DataFrame:
    fdf = pd.DataFrame(feats.astype(np.float32), columns=feature_columns(feats.shape[1]), index=meta.index)
    return pd.concat([meta, fdf], axis=1)


#: threads that read a batch's sites: decoding PNG (and TIFF) tiles releases the GIL, so the next
#: batch is decoded while the model embeds this one. On 1024^2 five-stain tiles that takes
#: decoding, a quarter of the CPU time, off the model's thread at no extra CPU time
#: (bench_scale_embed.py; the model thread's CPU time per site 0.20 s -> 0.14 s)
READ_THREADS = min(8, os.cpu_count() or 1)


def _read_site(plate, site: int, stain_index) -> np.ndarray | str:
    """A site's image in the model's stain order, or why it cannot be read (the TileError, which
    names the file)."""
    try:
        img = plate.read_site(int(site))
    except ValueError as exc:
        return str(exc)
    return img if stain_index is None else img[stain_index]


def _embed_images(embedder: Embedder, sites: Sequence[int], images: list) -> np.ndarray:
    """Features ``(len(sites), dim)`` of the sites' images; a site that could not be read (its
    image is the reason, a str) gets a NaN row and a warning."""
    ok = np.array([not isinstance(img, str) for img in images], bool)
    for site, img in zip(sites, images):
        if isinstance(img, str):
            warnings.warn(f"site {int(site)} not embedded: {img}", stacklevel=3)
    out = np.full((len(images), embedder.dim), np.nan, np.float32)
    if ok.any():
        read = [img for img, k in zip(images, ok) if k]
        feats = np.asarray(embedder.embed_sites(np.stack(read)), np.float32)
        if feats.shape != (len(read), embedder.dim):
            raise RuntimeError(f"embedder {embedder.name!r} returned shape {feats.shape} for "
                               f"{len(read)} sites; expected ({len(read)}, {embedder.dim})")
        out[ok] = feats
    return out


def embed_batch(plate, embedder: Embedder, sites: Sequence[int], stain_index=None) -> np.ndarray:
    """Features ``(len(sites), dim)`` of the given site indices; an unreadable site gives a NaN row."""
    return _embed_images(embedder, sites, [_read_site(plate, s, stain_index) for s in sites])


def _embed_read_ahead(plate, embedder: Embedder, batches: list[tuple[int, Sequence[int]]], stain_index):
    """Yield ``(batch number, features)`` of ``batches`` (number, site indices) in order, the
    sites of the next batch decoded by :data:`READ_THREADS` threads while the model embeds this one."""
    pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="gandl-read")

    def read(k: int) -> list:
        return [pool.submit(_read_site, plate, s, stain_index) for s in batches[k][1]] if k < len(batches) else []

    try:
        ahead = read(0)
        for k, (i, sites) in enumerate(batches):
            current, ahead = ahead, read(k + 1)
            yield i, _embed_images(embedder, sites, [future.result() for future in current])
    finally:  # stopped early (a cancelled dock): drop the reads not started, wait for the others
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- resumable output
def _source_stamp(source) -> dict:
    if source is None:
        return {}
    p = Path(source)
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    stat = [(x.name, x.stat().st_size, x.stat().st_mtime_ns) for x in files if x.exists()
            and x.suffix in (".pt", ".pth", ".safetensors", ".json", ".npz")]
    return {"source": str(p.resolve()), "files": stat}


def _sources_stamp(parts: list[Embedder]) -> dict:
    """What a partial output must match of the weights its rows come from: one run's stamp, or
    every run's when several are read together."""
    if len(parts) == 1:
        return _source_stamp(parts[0].source)
    return {"sources": [_source_stamp(part.source) for part in parts]}


def _manifest(embedder: Embedder, meta: pd.DataFrame, idx: np.ndarray, batch_size: int, stain_index) -> dict:
    ids = "\n".join(meta["site_id"].iloc[idx].astype(str))
    return {
        "method": embedder.name, "dim": int(embedder.dim), "options": dict(embedder.options),
        **_sources_stamp(embedder.parts),
        "stain_index": stain_index, "batch_size": int(batch_size), "n_sites": int(len(idx)),
        "sites_sha1": hashlib.sha1(ids.encode()).hexdigest(),
    }


class _Parts:
    """Finished batches of one output file, kept in ``.NAME.parts/`` until all are there."""

    def __init__(self, out_path: Path, manifest: dict):
        self.out = out_path
        self.dir = out_path.with_name(f".{out_path.name}.parts")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        for stale in out_path.parent.glob(f".{glob.escape(out_path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)  # half-written final files of killed runs
        previous = None
        try:
            previous = json.loads((self.dir / MANIFEST).read_text())
        except (OSError, ValueError):
            pass
        if previous != json.loads(json.dumps(manifest)):
            if self.dir.exists():
                if previous is not None:
                    warnings.warn(f"{self.dir}: partial output of a different embedding (method, its "
                                  f"options, weights, sites or batch size changed); starting again", stacklevel=3)
                shutil.rmtree(self.dir)
            self.dir.mkdir()
            write_text(self.dir / MANIFEST, json.dumps(manifest, indent=1))
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink(missing_ok=True)

    def path(self, i: int) -> Path:
        return self.dir / f"{i:06d}.parquet"

    def done(self, n_batches: int) -> set[int]:
        return {i for i in range(n_batches) if self.path(i).is_file()}

    def write(self, i: int, frame: pd.DataFrame) -> None:
        with atomic_path(self.path(i)) as tmp:
            frame.to_parquet(tmp, index=False)

    def finish(self, n_batches: int, schema) -> Path:
        """Concatenate the parts, in order, into the output file (streamed, atomic rename), in row
        groups of :data:`ROW_GROUP` rows: one per batch of 32 sites made a 30,560-site file's
        footer 46 MB and reading it 23 CPU s, against 0.3 MB and 0.8 s (measured)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_path(self.out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            pending, rows = [], 0
            for i in range(n_batches):
                pending.append(pq.read_table(self.path(i)).cast(schema))
                rows += pending[-1].num_rows
                if rows >= ROW_GROUP or i == n_batches - 1:
                    writer.write_table(pa.concat_tables(pending))
                    pending, rows = [], 0
            if n_batches == 0:
                writer.write_table(pa.Table.from_pylist([], schema=schema))
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.out


def _schema(meta: pd.DataFrame, dim: int):
    """Output schema from the whole metadata table, so a batch whose optional columns are all null still fits."""
    import pyarrow as pa

    schema = pa.Schema.from_pandas(meta, preserve_index=False)
    for c in feature_columns(dim):
        schema = schema.append(pa.field(c, pa.float32()))
    return schema


# ---------------------------------------------------------------- the pipeline
def iterate_embedding(plate_or_path, embedder: Embedder, out_path=None, batch_size: int = 32,
                      scheduler=None, stain_map=None, sites: Iterable[int] | None = None,
                      ) -> Generator[tuple[int, int], None, pd.DataFrame | Path]:
    """Embed a plate batch by batch, yielding ``(done_sites, total_sites)``.

    A generator for GUI workers: ``result = yield from iterate_embedding(...)``;
    its return value is what :func:`embed_plate` returns.  Closing it stops
    after the current batch (the batches written so far are kept for resuming).
    """
    plate = open_plate(plate_or_path)
    return (yield from _iterate(plate, embedder, out_path, batch_size, scheduler, stain_map, sites))


def _iterate(plate, embedder: Embedder, out_path, batch_size, scheduler, stain_map, sites):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"the batch size (--batch) must be an integer >= 1, got {batch_size!r}")
    stain_index = resolve_stain_map(plate.channel_names, embedder.stains, stain_map)
    for part in embedder.parts:
        if part.normalizer is not None:
            check_bit_depth(part.normalizer, plate, part.source or part.name)
    with output_lock(out_path) if out_path is not None else nullcontext() as out_path:
        return (yield from _embed(plate, embedder, out_path, int(batch_size), scheduler, stain_index, sites))


def _embed(plate, embedder: Embedder, out_path, step, scheduler, stain_index, sites):
    meta = site_metadata(plate)
    idx = np.arange(plate.n_sites) if sites is None else np.asarray(list(sites), dtype=np.int64)
    batches = [idx[i:i + step] for i in range(0, len(idx), step)]
    parts = None
    if out_path is not None:
        parts = _Parts(Path(out_path), _manifest(embedder, meta, idx, step, stain_index))
    finished = set() if parts is None else parts.done(len(batches))
    todo = [i for i in range(len(batches)) if i not in finished]
    done = sum(len(batches[i]) for i in finished)
    frames = {}
    yield done, len(idx)
    if scheduler is None:
        results = _embed_read_ahead(plate, embedder, [(i, batches[i]) for i in todo], stain_index)
    else:
        results = _run_distributed(scheduler, plate, embedder, stain_index, [(i, batches[i]) for i in todo])
    for i, feats in results:
        frame = _frame(meta.iloc[batches[i]].reset_index(drop=True), feats)
        if parts is None:
            frames[i] = frame
        else:
            parts.write(i, frame)
        done += len(batches[i])
        yield done, len(idx)
    if parts is not None:
        return parts.finish(len(batches), _schema(meta, embedder.dim))
    if not frames:
        return _frame(meta.iloc[[]], np.zeros((0, embedder.dim), np.float32))
    return pd.concat([frames[i] for i in sorted(frames)], ignore_index=True)


def embed_plate(plate_or_path, embedder: Embedder | str, out_path=None, batch_size: int = 32,
                device: str = "auto", scheduler=None, stain_map=None,
                progress: Callable[[int, int], None] | None = None,
                sites: Iterable[int] | None = None, source=None, **options) -> pd.DataFrame | Path:
    """Embed every site (or ``sites``) of a plate.

    Parameters
    ----------
    plate_or_path : Plate or folder accepted by ``open_plate`` (a dataset root,
        experiment or ``Plate{n}`` folder, or a TIFF folder).
    embedder : an :class:`Embedder`, or a registered method name, loaded with
        ``source`` (run folder or weights file, or a list of several read together),
        ``device`` and ``options``
        (see :func:`napari_gandl.embedding.load_embedder`).
    out_path : parquet file to stream rows to (resumable); ``None`` returns a DataFrame.
    batch_size : sites per batch (bounds memory; also the unit of resuming).
    scheduler : ``None`` (local), a dask.distributed scheduler address or Client.
    stain_map : None (the plate's stains as they are), ``"auto"`` (by name), a
        stain-map CSV, a ``{model stain: plate stain}`` dict or channel indices
        (see :func:`napari_gandl.embedding.stains.resolve_stain_map`).
    progress : optional callable ``(done_sites, total_sites)``.
    sites : optional site indices (default: every site, in order).

    Returns the DataFrame (``out_path=None``) or the parquet Path: one row per
    site with ``site_id``, every metadata column, then float32 ``f000..``.
    """
    plate = open_plate(plate_or_path)
    if isinstance(embedder, str):
        from napari_gandl.embedding.registry import load_embedder

        embedder = load_embedder(embedder, source, plate, device, **options)
    elif source is not None or options:
        raise TypeError("source and options are for loading a method by name; the embedder is already loaded")
    run = _iterate(plate, embedder, out_path, batch_size, scheduler, stain_map, sites)
    while True:
        try:
            done, total = next(run)
        except StopIteration as stop:
            return stop.value
        if progress:
            progress(done, total)


def read_embedding_table(path) -> pd.DataFrame:
    """An embedding table file (ours, or RxRx19a's ``embeddings.csv``) as ``site_id`` + ``f000..``.

    RxRx19a's numeric feature columns ``0``..``1023`` are renamed ``f000``..
    like ours; rows with non-finite features are dropped (with a warning).
    """
    from napari_gandl.tables import load_embeddings

    # a feature's values together in memory, as a DataFrame holds them: the matrix (1.2 GB at
    # RxRx19a's size) becomes the frame without a copy
    table = load_embeddings(Path(path), on_nonfinite="drop", drop_constant_columns=False, order="F")
    columns = [f"f{int(c):03d}" if re.fullmatch(r"\d+", str(c)) else str(c) for c in table.features]
    frame = pd.DataFrame(table.X, columns=columns, copy=False)
    frame.insert(0, "site_id", table.meta["site_id"].astype(str).to_numpy())
    return frame


# ---------------------------------------------------------------- dask.distributed
def _run_distributed(scheduler, plate, embedder: Embedder, stain_index, batches):
    """Yield ``(batch number, features)`` in order, keeping a bounded number of batches in flight.
    The plate travels as its folder and fingerprint: each worker opens it once (``Plate.__reduce__``)."""
    from distributed import Client

    own = not hasattr(scheduler, "submit")
    client = Client(scheduler) if own else scheduler
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        max_inflight = 2 * n_workers
        remote = client.scatter(embedder, broadcast=True, hash=False)
        futures, nxt = {}, 0
        for k, (i, _) in enumerate(batches):
            while len(futures) < max_inflight and nxt < len(batches):
                futures[nxt] = client.submit(embed_batch, plate, remote, batches[nxt][1], stain_index, pure=False)
                nxt += 1
            yield i, futures.pop(k).result()
    finally:
        if own:
            client.close()
