"""The Embed dock's view-model (Qt-free): its worker jobs and how their results reach the site table.

:func:`embed_job` embeds every site of a plate with a registered method (a
generator yielding ``(done, total)`` sites; closing it stops after the
current batch), :func:`load_table_job` reads an embedding table file (ours,
or RxRx19a's ``embeddings.csv``), :func:`export_job` writes the site table
with its embedding to parquet. :func:`attach` puts features into the plate's
:class:`~napari_gandl.viewmodels.SiteTable` as its embedding, where every
other dock finds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Generator

import pandas as pd

from napari_gandl import columns as cols

from napari_gandl.viewmodels.site_table import SiteTable

#: how the plate's stains feed the model's: in order, matched by name, or as a CSV file says
STAIN_MAPS = ("as they are", "by stain name (zero-shot)", "stain-map file")


def stain_map_argument(choice: str, path) -> str | Path | None:
    """The pipeline's ``stain_map`` for a choice of :data:`STAIN_MAPS` (ValueError when the file is missing)."""
    if choice == STAIN_MAPS[1]:
        return "auto"
    if choice == STAIN_MAPS[2]:
        if path is None or not str(path).strip():
            raise ValueError("choose the stain-map file (CSV with columns model_stain,plate_stain)")
        return Path(path)
    return None


def embed_job(plate, method: str, run_dir, batch_size: int, device: str,
              stain_map=None) -> Generator[tuple[int, int], None, tuple[pd.DataFrame, str]]:
    """Worker: yields ``(done, total)`` sites per batch; returns the features (``site_id``,
    ``f000``..) and where they come from (``"gandl: RUN"``). ``run_dir`` may be a list of runs
    read together (their features side by side)."""
    from napari_gandl.embedding import feature_columns, iterate_embedding, load_embedder

    embedder = load_embedder(method, run_dir, plate, device)
    frame = yield from iterate_embedding(plate, embedder, batch_size=batch_size, stain_map=stain_map)
    frame = frame[[cols.SITE_ID, *feature_columns(embedder.dim)]].assign(
        **{cols.SITE_ID: frame[cols.SITE_ID].astype(str)})
    sources = [str(part.source) for part in embedder.parts if part.source is not None]
    return frame, f"{method}: {' + '.join(sources)}" if sources else method


def load_table_job(path, site_ids) -> tuple[pd.DataFrame, str]:
    """Worker: an embedding table file's features in the order of ``site_ids`` (the open plate's
    sites; NaN rows for sites the file lacks), one row per site and no ``site_id``, so that
    :func:`attach` on the GUI thread only puts them beside the metadata (aligning 305,520 x 1,024
    features there took 3 s); all of the file's rows, with their ``site_id``, when none of them is a
    site of the plate, so that :func:`attach` names the mismatch."""
    from napari_gandl.embedding import read_embedding_table

    frame = read_embedding_table(path)
    ids, sites = pd.Index(frame[cols.SITE_ID]), pd.Index(site_ids).astype(str)
    if not ids.isin(sites).any():
        return frame, str(path)
    features = frame.drop(columns=[cols.SITE_ID])
    if not ids.equals(sites):  # another order, other sites: one copy, here
        features = features.set_axis(ids).reindex(sites).reset_index(drop=True)
    return features, str(path)


def export_job(table: SiteTable, path) -> Path:
    """Worker: write the site metadata with the attached embedding to parquet at ``path``
    (``.parquet`` added when missing); returns the path written."""
    from napari_gandl.tables import write_table

    features = table.embedding_columns
    if not features:
        raise ValueError("no embedding attached yet; embed the plate or load a table first")
    meta = [c for c in table.frame.columns if c not in set(features) and c != cols.PROBLEM]
    frame = table.frame[meta + features].copy()
    for c in meta:  # parquet wants one type per column
        if frame[c].dtype == object:
            frame[c] = frame[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".pq"):
        path = path.with_suffix(".parquet")
    return write_table(frame, path)


def source_lines(source: str, width: int = 48) -> str:
    """Where an embedding comes from, as the dock's status shows it: one line per run read
    (``gandl: A``, ``+ B``), each path longer than the line allows cut from the left, so that every
    run's folder stays in sight and a long path does not widen the dock."""
    method, sep, paths = source.partition(": ")
    if not sep or "/" in method or "\\" in method:  # a table file's path, not "method: runs"
        method, sep, paths = "", "", source
    lines = []
    for prefix, path in zip([method + sep] + ["+ "] * paths.count(" + "), paths.split(" + ")):
        room = max(8, width - len(prefix))
        lines.append(prefix + (path if len(path) <= room else f"…{path[1 - room:]}"))
    return "\n".join(lines)


def attach(table: SiteTable, frame: pd.DataFrame, source: str) -> int:
    """Attach ``frame``'s features as the site table's embedding; returns how many sites have all
    of them (ValueError, from the site table, when the frame does not fit the plate)."""
    table.set_columns(frame, embedding=True, source=source)
    return int(table.frame[table.embedding_columns].notna().all(axis=1).sum())
