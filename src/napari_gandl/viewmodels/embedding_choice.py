"""Which embedding an analysis dock analyses, read and normalised for a plate's site table.

Three sources: the embedding attached to the :class:`SiteTable` (the Embed
dock), handcrafted features computed from the plate's images (cached in the
table's session), or an embedding table file. :func:`resolve_embedding`
returns an :class:`Embedding` row-aligned with a subset of the site table.
An analysis record remembers which embedding it used, and :func:`stale_reason`
says when that embedding has changed since. Qt-free; runs in a worker thread
(it reads the table's immutable ``frame`` snapshot).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from napari_gandl import columns as cols
from napari_gandl.tables import EmbeddingTable
from napari_gandl.analysis import normalise
from napari_gandl.tables import TableError, drop_constant

from napari_gandl.viewmodels.site_table import SiteTable

SITE_TABLE = "site table: attached embedding"
HANDCRAFTED = "handcrafted features (computed from the images)"
FILE = "embedding table file"
SOURCES = (SITE_TABLE, HANDCRAFTED, FILE)
NORMALISATIONS = ("centerscale", "tvn", "none")
NORMALISATION_HELP = (
    "centerscale: per plate, subtract the untreated controls' mean and divide by their sd, feature by feature. "
    "tvn: centerscale, then whiten with the controls' covariance (typical variation normalisation). "
    "none: the raw features."
)


class NoEmbedding(ValueError):
    """There is no embedding to analyse (yet)."""


@dataclass
class Embedding:
    """An embedding row-aligned with the site-table rows ``rows``."""

    table: EmbeddingTable        # normalised
    rows: np.ndarray             # site-table position of each embedding row
    label: str                   # e.g. "site table: 512 columns f000…f511"
    normalisation: str
    notes: str = ""


def _meta_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in cols.META if c in frame.columns]]


def _from_site_table(table: SiteTable) -> tuple:
    feats = table.embedding_columns
    if not feats:
        raise NoEmbedding("no embedding yet: embed the plate (Embed dock) or load a table there, "
                          "choose an embedding table file, or use handcrafted features")
    frame = table.frame
    X = frame[feats].to_numpy(np.float32)
    ok = np.isfinite(X).all(axis=1)
    if not ok.any():
        raise NoEmbedding(f"the {len(feats)} embedding columns of the site table are empty (NaN) for every site")
    rows = np.flatnonzero(ok)
    label = f"site table: {len(feats)} columns {feats[0]}…{feats[-1]}"
    notes = f"{int((~ok).sum())} site(s) without features skipped" if (~ok).any() else ""
    return _meta_of(frame).iloc[rows].reset_index(drop=True), X[rows], feats, rows, label, notes


def _handcrafted(table: SiteTable, progress=None) -> tuple:
    from napari_gandl.embedding.methods.handcrafted import handcrafted_features

    frame = table.session.get("handcrafted")
    if frame is None:
        frame = handcrafted_features(table.plate, progress=progress)
        table.session["handcrafted"] = frame
    feats = [c for c in frame.columns if c not in table.plate.sites.columns]
    return _align(table, frame, feats, f"handcrafted: {len(feats)} features")


def _align(table: SiteTable, frame: pd.DataFrame, feats, label) -> tuple:
    sites = table.frame
    position = pd.Series(np.arange(len(sites)), index=sites[cols.SITE_ID].astype(str))
    ids = frame[cols.SITE_ID].astype(str)
    known = ids.isin(position.index).to_numpy()
    if not known.any():
        raise NoEmbedding(f"{label}: none of its {len(frame)} site ids belong to the open plate "
                          f"(e.g. {ids.iloc[0]!r} vs {sites[cols.SITE_ID].iloc[0]!r})")
    X = frame.loc[known, feats].to_numpy(np.float32)
    rows = position.loc[ids[known]].to_numpy()
    ok = np.isfinite(X).all(axis=1)
    rows, X = rows[ok], X[ok]
    notes = []
    if (~known).sum():
        notes.append(f"{int((~known).sum())} row(s) of other plates ignored")
    if (~ok).sum():
        notes.append(f"{int((~ok).sum())} site(s) with NaN features skipped")
    return _meta_of(sites).iloc[rows].reset_index(drop=True), X, list(feats), rows, label, "; ".join(notes)


def _from_file(table: SiteTable, path) -> tuple:
    from napari_gandl.tables import load_embeddings

    if path is None or not str(path) or not Path(path).is_file():
        raise NoEmbedding(f"embedding table file not found: {path!s}; choose a .parquet or .csv file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = load_embeddings(Path(path), on_nonfinite="drop", drop_constant_columns=False)
    return _align(table, loaded.to_frame(), loaded.features, f"file {Path(path).name}: {len(loaded.features)} features")


def resolve_embedding(table: SiteTable, source: str, path=None, normalisation: str = "centerscale",
                      progress: Callable | None = None) -> Embedding:
    """Read the chosen embedding for the plate of ``table`` and normalise it."""
    if source == SITE_TABLE:
        meta, X, feats, rows, label, notes = _from_site_table(table)
    elif source == HANDCRAFTED:
        meta, X, feats, rows, label, notes = _handcrafted(table, progress)
    elif source == FILE:
        meta, X, feats, rows, label, notes = _from_file(table, path)
    else:
        raise ValueError(f"unknown embedding source {source!r} (choose one of {', '.join(SOURCES)})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # a constant column carries nothing and breaks per-feature scaling
            embedded = drop_constant(EmbeddingTable(meta, X, [str(f) for f in feats], label))
        except TableError as exc:
            raise NoEmbedding(str(exc)) from None
        embedded = normalise(embedded, normalisation)
    return Embedding(embedded, np.asarray(rows, np.int64), label, normalisation, notes)


def precheck(table: SiteTable | None, source: str, path=None) -> str | None:
    """Why an analysis cannot start with this choice (None when it can); cheap, for the GUI thread."""
    if table is None:
        return "no plate is open: open a plate folder (or File ▸ Open Sample ▸ napari-gandl) first"
    if source == SITE_TABLE and not table.embedding_columns:
        return ("no embedding yet: embed the plate with the Embed dock (or load a table there), choose an "
                "embedding table file, or use handcrafted features")
    if source == FILE and not (path and Path(path).is_file()):
        return f"choose an embedding table file (.parquet or .csv); {path!s} is not a file"
    return None


# ---------------------------------------------------------------- analysis records and staleness

def file_fingerprint(path) -> str:
    p = Path(path)
    st = p.stat()
    return hashlib.blake2b(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode(), digest_size=8).hexdigest()


def record(table: SiteTable, choice: dict, emb: Embedding, **results) -> dict:
    """An analysis result with what it was computed from (``choice``: source, path, normalisation)."""
    rec = {"embedding": dict(choice), "label": emb.label, "embedding_version": table.embedding_version}
    if choice["source"] == FILE:
        rec["file_fingerprint"] = file_fingerprint(choice["path"])
    rec.update(results)
    return rec


def stale_reason(table: SiteTable, rec: dict) -> str | None:
    """Why ``rec`` no longer matches its embedding (None when it still does)."""
    choice = rec["embedding"]
    if choice["source"] == SITE_TABLE:
        if not table.embedding_columns:
            return "the embedding it used is no longer attached"
        return None if table.embedding_version == rec["embedding_version"] else "the embedding changed"
    if choice["source"] == FILE:
        try:
            now = file_fingerprint(choice["path"])
        except OSError:
            return f"the embedding file {choice['path']} is gone"
        return None if now == rec.get("file_fingerprint") else f"the embedding file {Path(choice['path']).name} changed"
    return None  # handcrafted features of the plate's own images do not change
