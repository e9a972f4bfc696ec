"""GAN-DL embeddings: discriminator features per site, streamed to parquet.

A site's feature vector is computed over the whole tile: the tile is
normalised and downsampled exactly as for training, cut into
training-resolution squares covering it, each square goes through the
discriminator (eval mode: the minibatch-stddev statistic is the running
average, so an image never depends on its batch mates) and the square
features are averaged.  Sites are processed in batches and appended to the
parquet file as they finish, so memory does not grow with the plate.  With
``scheduler`` the batches run on a dask.distributed cluster; results are
written in site order and are identical to a local run.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .checkpoint import GANModel, load_model, resolve_checkpoint
from .dataset import downsample, site_tiles

__all__ = ["embed_plate", "embed_sites", "site_features", "feature_columns", "FEATURE_PREFIX"]

FEATURE_PREFIX = "f"
# Which D activations form the embedding (see Discriminator.features and docs/gan.md):
# "stats" when the discriminator is wide enough for it, else "pool".
DEFAULT_LAYER = None


def resolve_layer(model: GANModel, layer=None) -> str:
    if layer is None:
        return "stats" if model.D.stats_available else "pool"
    if layer not in ("stats", "pool", "fc"):
        raise ValueError(f"layer must be 'stats', 'pool' or 'fc', got {layer!r}")
    return layer


def feature_columns(n: int = 512) -> list[str]:
    return [f"{FEATURE_PREFIX}{i:03d}" for i in range(n)]


def _device(device) -> torch.device:
    from .training import resolve_device

    return resolve_device(device)


def site_features(model: GANModel, images: list[np.ndarray], tile_batch: int = 64,
                  layer: str = DEFAULT_LAYER) -> np.ndarray:
    """Features ``(len(images), feature_dim)`` float32 of raw ``(C, H, W)`` sites."""
    layer = resolve_layer(model, layer)
    tiles, owner = [], []
    for i, img in enumerate(images):
        t = site_tiles(model.normalizer(downsample(img, model.scale)), model.resolution)
        tiles.append(t)
        owner.extend([i] * len(t))
    if not tiles:
        return np.zeros((0, model.net_config.feature_dim), np.float32)
    x = torch.from_numpy(np.concatenate(tiles))
    owner_t = torch.tensor(owner)
    feats = []
    with torch.no_grad():
        for s in range(0, len(x), tile_batch):
            xb = x[s : s + tile_batch].to(model.device)
            feats.append(model.D.features(xb, layer).float().cpu())
    f = torch.cat(feats).double()
    out = torch.zeros(len(images), f.shape[1], dtype=torch.float64)
    out.index_add_(0, owner_t, f)
    counts = torch.bincount(owner_t, minlength=len(images)).clamp(min=1).double()
    return (out / counts[:, None]).float().numpy()


def embed_sites(plate, model: GANModel, sites, layer: str = DEFAULT_LAYER) -> np.ndarray:
    """Features of the given site indices; an unreadable site gives a NaN row."""
    images, ok = [], []
    for s in sites:
        try:
            images.append(plate.read_site(int(s)))
            ok.append(True)
        except ValueError as exc:  # TileError names the file
            warnings.warn(f"site {int(s)} not embedded: {exc}", stacklevel=2)
            ok.append(False)
    feats = site_features(model, images, layer=layer)
    out = np.full((len(ok), model.net_config.feature_dim), np.nan, np.float32)
    out[np.asarray(ok, bool)] = feats
    return out


# Per-process cache for dask workers: (checkpoint, plate) loaded once per worker.
_WORKER_CACHE: dict = {}
_WORKER_LOCK = threading.Lock()


def _worker_embed(plate_root: str, ckpt_path: str, ckpt_mtime: float, device: str,
                  sites: list[int], layer: str = DEFAULT_LAYER, threads=None) -> np.ndarray:
    key = (plate_root, ckpt_path, ckpt_mtime, device)
    with _WORKER_LOCK:
        if key not in _WORKER_CACHE:
            from napari_gandl.plate import open_plate

            _WORKER_CACHE.clear()
            _WORKER_CACHE[key] = (open_plate(plate_root), load_model(ckpt_path, _device(device)))
        plate, model = _WORKER_CACHE[key]
    if threads:
        torch.set_num_threads(int(threads))
    return embed_sites(plate, model, sites, layer)


def _metadata(plate) -> pd.DataFrame:
    meta = plate.sites.drop(columns=["problem"], errors="ignore").reset_index(drop=True)
    cols = ["site_id"] + [c for c in meta.columns if c != "site_id"]
    return meta[cols]


def _frame(meta: pd.DataFrame, feats: np.ndarray) -> pd.DataFrame:
    fdf = pd.DataFrame(feats.astype(np.float32), columns=feature_columns(feats.shape[1]),
                       index=meta.index)
    return pd.concat([meta, fdf], axis=1)


def embed_plate(plate_or_path, checkpoint_dir, out_path=None, batch_size: int = 32,
                device: str = "auto", scheduler=None, sites=None, progress=None,
                layer: str = DEFAULT_LAYER, threads: int | None = None):
    """Embed every site of a plate with a trained GAN-DL discriminator.

    Parameters
    ----------
    plate_or_path : Plate or folder accepted by ``open_plate``.
    checkpoint_dir : run directory (or checkpoint file) written by training.
    out_path : parquet file to stream rows to; ``None`` returns a DataFrame.
    batch_size : sites per batch (bounds memory).
    scheduler : ``None`` (local), a dask.distributed scheduler address or Client.
    sites : optional subset of site indices (default: all sites, in order).
    progress : optional callable ``(done_sites, total_sites)``.
    layer : ``"stats"`` (mean and std over positions of D's mid-level
        activations; the default when D is wide enough), ``"pool"`` (D's last
        conv averaged over positions; the default otherwise) or ``"fc"``
        (D's penultimate fully connected layer, as in the GAN-DL paper).
    threads : torch CPU threads (None: torch's default).

    Returns the DataFrame (``out_path=None``) or the parquet Path: one row per
    site with ``site_id``, every metadata column, then float32 ``f000..f511``.
    """
    from napari_gandl.plate import open_plate

    plate = open_plate(plate_or_path) if isinstance(plate_or_path, (str, os.PathLike)) else plate_or_path
    ckpt_path = resolve_checkpoint(checkpoint_dir)
    meta_all = _metadata(plate)
    idx = np.arange(plate.n_sites) if sites is None else np.asarray(sites, dtype=np.int64)
    batches = [idx[i : i + batch_size] for i in range(0, len(idx), max(1, int(batch_size)))]

    if layer not in (None, "stats", "pool", "fc"):
        raise ValueError(f"layer must be 'stats', 'pool' or 'fc', got {layer!r}")
    if threads:
        torch.set_num_threads(int(threads))
    model = None
    if scheduler is None:
        model = load_model(ckpt_path, _device(device))
        if model.img_channels != plate.n_channels:
            raise ValueError(
                f"{ckpt_path} was trained on {model.img_channels} stains but {plate.root} has "
                f"{plate.n_channels}"
            )

    writer = None
    frames = []
    out_path = Path(out_path) if out_path is not None else None
    tmp_path = None
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")

    def emit(batch_sites, feats):
        nonlocal writer
        df = _frame(meta_all.iloc[batch_sites].reset_index(drop=True), feats)
        if out_path is None:
            frames.append(df)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if writer is None:
            # schema from the whole metadata table, so batches whose optional
            # columns happen to be all-null still match
            schema = pa.Schema.from_pandas(meta_all, preserve_index=False)
            for c in feature_columns(feats.shape[1]):
                schema = schema.append(pa.field(c, pa.float32()))
            writer = pq.ParquetWriter(tmp_path, schema)
        table = pa.Table.from_pandas(df, preserve_index=False).cast(writer.schema)
        writer.write_table(table)

    done = 0
    try:
        if scheduler is None:
            for b in batches:
                emit(b, embed_sites(plate, model, b, layer))
                done += len(b)
                if progress:
                    progress(done, len(idx))
        else:
            for b, feats in _run_distributed(scheduler, plate, ckpt_path, device, batches, layer, threads):
                emit(b, feats)
                done += len(b)
                if progress:
                    progress(done, len(idx))
        if out_path is None:
            if not frames:
                return _frame(meta_all.iloc[[]], np.zeros((0, 512), np.float32))
            return pd.concat(frames, ignore_index=True)
        if writer is None:  # no sites: still write a valid, empty table
            _frame(meta_all.iloc[[]], np.zeros((0, 512), np.float32)).to_parquet(tmp_path, index=False)
        else:
            writer.close()
            writer = None
        os.replace(tmp_path, out_path)
        return out_path
    finally:
        if writer is not None:
            writer.close()
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def _run_distributed(scheduler, plate, ckpt_path: Path, device, batches, layer, threads):
    """Yield ``(sites, features)`` in order, keeping a bounded number in flight."""
    from distributed import Client

    own = not hasattr(scheduler, "submit")
    client = Client(scheduler) if own else scheduler
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        max_inflight = 2 * n_workers
        root = str(plate.root)
        mtime = ckpt_path.stat().st_mtime
        futures = {}
        nxt = 0
        for i, b in enumerate(batches):
            while len(futures) < max_inflight and nxt < len(batches):
                futures[nxt] = client.submit(
                    _worker_embed, root, str(ckpt_path), mtime, device,
                    [int(s) for s in batches[nxt]], layer, threads, pure=False,
                )
                nxt += 1
            feats = futures.pop(i).result()
            yield b, feats
    finally:
        if own:
            client.close()
