"""Embedding tables: read, join with metadata, validate, write.

An embedding table has one row per imaged site: a ``site_id`` column,
metadata columns (well, plate, cell type, condition, treatment, dose, ...)
and numeric feature columns.  Our GAN-DL embeddings (``f000``..``f511``),
the RxRx19a ``embeddings.csv`` released with the dataset (columns ``0``..
``1023``) and CellProfiler-style tables all fit this shape.

Feature columns are the numeric columns that are not metadata, unless an
explicit list is given.  A column counts as metadata when it is one of the
RxRx19a metadata names (:data:`METADATA_COLUMNS`), when it comes from the
joined ``metadata.csv``, or when it is not numeric.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from napari_gandl.columns import ACTIVE, MOCK, UV
from napari_gandl.files import atomic_path

METADATA_COLUMNS = (
    "site_id", "well_id", "cell_type", "experiment", "plate", "well", "site",
    "disease_condition", "treatment", "treatment_conc", "SMILES", "problem",
    "split", "dataset", "sirna", "sirna_id", "stain", "x", "y",
)

# Names of the RxRx19a control conditions.
POSITIVE_CONTROLS = (MOCK, UV)   # C+ : uninfected-like
NEGATIVE_CONTROLS = (ACTIVE,)    # C- : infected, untreated
# RxRx1's well_type values of its control wells (siRNA 'EMPTY' and the control siRNAs).
RXRX1_CONTROL_WELLS = ("negative_control", "positive_control")


class TableError(ValueError):
    """Raised for malformed embedding or metadata tables."""


@dataclass
class EmbeddingTable:
    """Metadata (one row per site) and a float32 feature matrix, row-aligned."""

    meta: pd.DataFrame
    X: np.ndarray
    features: list[str]
    source: str = "<memory>"
    dropped_columns: list[str] = field(default_factory=list)
    dropped_rows: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.meta) != self.X.shape[0]:
            raise TableError(
                f"{self.source}: metadata has {len(self.meta)} rows but features have "
                f"{self.X.shape[0]}"
            )
        if self.X.ndim != 2 or self.X.shape[1] != len(self.features):
            raise TableError(f"{self.source}: feature matrix shape {self.X.shape} "
                             f"does not match {len(self.features)} feature names")

    def __len__(self) -> int:
        return self.X.shape[0]

    def subset(self, mask: np.ndarray) -> "EmbeddingTable":
        mask = np.asarray(mask)
        return EmbeddingTable(self.meta.loc[mask].reset_index(drop=True) if mask.dtype == bool
                              else self.meta.iloc[mask].reset_index(drop=True),
                              self.X[mask], list(self.features), self.source)

    def with_features(self, X: np.ndarray, features: Sequence[str] | None = None,
                      ) -> "EmbeddingTable":
        """Same metadata, new feature matrix (e.g. after normalisation)."""
        if features is None:
            features = (self.features if X.shape[1] == len(self.features)
                        else [f"c{i:03d}" for i in range(X.shape[1])])
        return EmbeddingTable(self.meta, np.ascontiguousarray(X, dtype=np.float32),
                              list(features), self.source)

    def to_frame(self) -> pd.DataFrame:
        feats = pd.DataFrame(self.X, columns=self.features, index=self.meta.index)
        return pd.concat([self.meta, feats], axis=1)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a parquet or CSV (optionally gzipped) table."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table not found: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            sep = "\t" if ".tsv" in name else ","
            return pd.read_csv(path, sep=sep, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise TableError(f"{path}: cannot be read as a table: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # pyarrow's errors for a damaged parquet file
        if type(exc).__module__.startswith("pyarrow"):
            raise TableError(f"{path}: cannot be read as a parquet table: {exc}") from None
        raise
    raise TableError(f"{path}: unknown table format (use .parquet or .csv)")


def write_table(frame: pd.DataFrame | EmbeddingTable, path: str | Path) -> Path:
    """Write a table as parquet or CSV, chosen by the file suffix."""
    if isinstance(frame, EmbeddingTable):
        frame = frame.to_frame()
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, compression="gzip" if path.suffix.lower() == ".gz" else None)
    return path


def numeric_feature_columns(frame: pd.DataFrame, metadata_columns: Iterable[str] = ()) -> list[str]:
    """Numeric columns that are not metadata."""
    meta = set(METADATA_COLUMNS) | set(metadata_columns)
    cols = []
    for c in frame.columns:
        if c in meta or str(c) in meta:
            continue
        if pd.api.types.is_bool_dtype(frame[c]):
            continue
        if pd.api.types.is_numeric_dtype(frame[c]):
            cols.append(c)
    return cols


def categorical_columns(frame: pd.DataFrame, max_values: int = 60) -> list[str]:
    """Columns with 2..``max_values`` distinct values (what a task or a colouring can group by),
    ``site_id``, ``problem`` and ``SMILES`` excepted.

    Float columns with many values in their first rows are skipped without
    counting them all, so this stays fast on a 300,000 x 512 table."""
    out = []
    for c in frame.columns:
        if c in ("site_id", "problem", "SMILES") or not isinstance(c, str):
            continue
        col = frame[c]
        if pd.api.types.is_float_dtype(col) and col.iloc[:2000].nunique() > max_values:
            continue
        if 2 <= col.nunique(dropna=True) <= max_values:
            out.append(c)
    return out


def _describe_rows(meta: pd.DataFrame, rows: np.ndarray, limit: int = 8) -> str:
    ids = (meta["site_id"].iloc[rows] if "site_id" in meta.columns
           else pd.Series(rows)).astype(str).tolist()
    more = f" (and {len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def check_finite(table: EmbeddingTable, on_nonfinite: str = "raise") -> EmbeddingTable:
    """Raise (naming the rows) or drop rows with NaN/inf features."""
    bad_rows = ~np.isfinite(table.X).all(axis=1)
    if not bad_rows.any():
        return table
    idx = np.flatnonzero(bad_rows)
    bad_cols = [table.features[j] for j in np.flatnonzero(~np.isfinite(table.X[idx]).all(axis=0))]
    msg = (f"{table.source}: {len(idx)} row(s) have NaN or infinite features "
           f"(sites {_describe_rows(table.meta, idx)}; columns "
           f"{', '.join(map(str, bad_cols[:8]))}{' ...' if len(bad_cols) > 8 else ''})")
    if on_nonfinite == "raise":
        raise TableError(msg + "; pass on_nonfinite='drop' (CLI: --drop-nonfinite) to drop them")
    if on_nonfinite != "drop":
        raise ValueError("on_nonfinite must be 'raise' or 'drop'")
    warnings.warn(msg + "; dropped", stacklevel=2)
    dropped = table.meta["site_id"].iloc[idx].astype(str).tolist() if "site_id" in table.meta else []
    out = table.subset(~bad_rows)
    out.dropped_rows = table.dropped_rows + dropped
    out.dropped_columns = list(table.dropped_columns)
    return out


def drop_constant(table: EmbeddingTable, rtol: float = 1e-7) -> EmbeddingTable:
    """Drop feature columns that are constant (they carry no information and
    make per-feature scaling divide by zero); warns naming them."""
    if len(table) == 0:
        return table
    X = table.X
    span = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
    scale = np.maximum(np.nanmax(np.abs(X), axis=0), 1e-30)
    const = span <= rtol * scale
    if not const.any():
        return table
    names = [str(table.features[j]) for j in np.flatnonzero(const)]
    if const.all():
        raise TableError(f"{table.source}: every feature column is constant "
                         f"({len(names)} columns); nothing to analyse")
    warnings.warn(f"{table.source}: dropped {len(names)} constant feature column(s): "
                  f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}", stacklevel=2)
    keep = ~const
    out = EmbeddingTable(table.meta, np.ascontiguousarray(X[:, keep]),
                         [f for f, k in zip(table.features, keep) if k], table.source)
    out.dropped_columns = table.dropped_columns + names
    out.dropped_rows = list(table.dropped_rows)
    return out


def require_columns(meta: pd.DataFrame, columns: Iterable[str], what: str,
                    source: str = "metadata") -> None:
    """Raise a clear error when metadata columns needed for ``what`` are absent."""
    missing = [c for c in columns if c not in meta.columns]
    if missing:
        raise TableError(f"{source}: {what} needs metadata column(s) {', '.join(missing)}, "
                         f"which are missing (available: {', '.join(map(str, meta.columns))})")


def load_embeddings(
    embeddings: str | Path | pd.DataFrame | EmbeddingTable,
    metadata: str | Path | pd.DataFrame | None = None,
    features: Sequence[str] | None = None,
    on_nonfinite: str = "raise",
    drop_constant_columns: bool = True,
) -> EmbeddingTable:
    """Load an embedding table and (optionally) join metadata by ``site_id``.

    Parameters
    ----------
    embeddings : path to .parquet/.csv, a DataFrame, or an EmbeddingTable
    metadata : optional path/DataFrame with a ``site_id`` column; its columns
        are joined onto the embeddings (columns already present in the
        embeddings are taken from the metadata file).
    features : explicit feature column names; default: numeric non-metadata columns.
    on_nonfinite : 'raise' (error naming rows) or 'drop' (drop rows with a warning).
    drop_constant_columns : drop constant feature columns with a warning.
    """
    if isinstance(embeddings, EmbeddingTable):
        table = embeddings
    else:
        source = str(embeddings) if isinstance(embeddings, (str, Path)) else "<embeddings>"
        frame = read_table(embeddings) if isinstance(embeddings, (str, Path)) else embeddings.copy()
        if "site_id" not in frame.columns:
            # RxRx19a's embeddings.csv may carry the id in an unnamed first column
            first = frame.columns[0]
            if str(first).startswith("Unnamed") or not pd.api.types.is_numeric_dtype(frame[first]):
                frame = frame.rename(columns={first: "site_id"})
            else:
                raise TableError(f"{source}: no 'site_id' column")
        frame["site_id"] = frame["site_id"].astype(str)
        if frame["site_id"].duplicated().any():
            dup = frame.loc[frame["site_id"].duplicated(), "site_id"].head(5).tolist()
            raise TableError(f"{source}: duplicated site_id values, e.g. {', '.join(dup)}")
        meta_cols: set[str] = set()
        if metadata is not None:
            msource = str(metadata) if isinstance(metadata, (str, Path)) else "<metadata>"
            mframe = read_table(metadata) if isinstance(metadata, (str, Path)) else metadata.copy()
            if "site_id" not in mframe.columns:
                raise TableError(f"{msource}: no 'site_id' column to join on "
                                 f"(columns: {', '.join(map(str, mframe.columns[:12]))})")
            mframe["site_id"] = mframe["site_id"].astype(str)
            if mframe["site_id"].duplicated().any():
                dup = mframe.loc[mframe["site_id"].duplicated(), "site_id"].unique()
                raise TableError(f"{msource}: duplicated site_id values, e.g. {', '.join(dup[:5])}")
            meta_cols = set(mframe.columns)
            overlap = [c for c in mframe.columns if c in frame.columns and c != "site_id"]
            frame = frame.drop(columns=overlap)
            known = frame["site_id"].isin(mframe["site_id"])
            if not known.any():
                raise TableError(f"{source}: none of the {len(frame)} site_ids appear in "
                                 f"{msource} (e.g. {frame['site_id'].iloc[0]!r})")
            if not known.all():
                lost = frame.loc[~known, "site_id"]
                warnings.warn(f"{source}: {len(lost)} site(s) have no metadata in {msource} "
                              f"and are dropped (e.g. {', '.join(lost.head(5))})", stacklevel=2)
                frame = frame.loc[known]
            frame = frame.merge(mframe, on="site_id", how="left", validate="one_to_one")
        if features is None:
            features = numeric_feature_columns(frame, meta_cols)
            if not features:
                raise TableError(f"{source}: no numeric feature columns found "
                                 f"(columns: {', '.join(map(str, frame.columns[:12]))})")
        else:
            features = list(features)
            missing = [f for f in features if f not in frame.columns]
            if missing:
                raise TableError(f"{source}: feature column(s) not found: {', '.join(map(str, missing[:10]))}")
            nonnum = [f for f in features if not pd.api.types.is_numeric_dtype(frame[f])]
            if nonnum:
                raise TableError(f"{source}: feature column(s) are not numeric: {', '.join(map(str, nonnum[:10]))}")
        fset = set(features)
        meta = with_rxrx1_treatment(frame[[c for c in frame.columns if c not in fset]].reset_index(drop=True))
        X = np.ascontiguousarray(frame[list(features)].to_numpy(dtype=np.float32))
        table = EmbeddingTable(meta, X, [str(f) for f in features], source)
    table = check_finite(table, on_nonfinite)
    if len(table) == 0:
        raise TableError(f"{table.source}: no rows to analyse" + (
            f" (all {len(table.dropped_rows)} had NaN or infinite features)" if table.dropped_rows else ""))
    if drop_constant_columns:
        table = drop_constant(table)
    return table


# ---------------------------------------------------------------- metadata helpers

def with_rxrx1_treatment(meta: pd.DataFrame) -> pd.DataFrame:
    """RxRx1 metadata (``well_type`` and ``sirna``, no ``treatment``): the siRNA is the treatment,
    empty in ``negative_control`` wells, so those are the untreated controls everywhere."""
    if "treatment" in meta.columns or not {"well_type", "sirna"} <= set(meta.columns):
        return meta
    return meta.assign(treatment=meta["sirna"].where(as_str(meta, "well_type") != "negative_control", None))


def is_untreated(meta: pd.DataFrame, column: str = "treatment") -> np.ndarray:
    """True where no compound was added (empty/NaN treatment)."""
    if column not in meta.columns:
        return np.ones(len(meta), dtype=bool)
    col = meta[column]
    txt = col.astype(object).where(col.notna(), "").astype(str).str.strip().str.lower()
    return txt.isin(["", "nan", "untreated"]).to_numpy()


def as_str(meta: pd.DataFrame, column: str) -> np.ndarray:
    col = meta[column]
    return col.astype(object).where(col.notna(), "").astype(str).to_numpy()


def control_labels(meta: pd.DataFrame) -> np.ndarray:
    """'C+' / 'C-' / '' for RxRx19a sites (controls are untreated)."""
    require_columns(meta, ["disease_condition"], "C+/C- controls")
    cond = as_str(meta, "disease_condition")
    untreated = is_untreated(meta)
    out = np.full(len(meta), "", dtype=object)
    out[untreated & np.isin(cond, POSITIVE_CONTROLS)] = "C+"
    out[untreated & np.isin(cond, NEGATIVE_CONTROLS)] = "C-"
    return out


def well_groups(meta: pd.DataFrame) -> np.ndarray:
    """Group ids for splitting: ``well_id`` or (experiment, plate, well)."""
    if "well_id" in meta.columns:
        return as_str(meta, "well_id")
    cols = [c for c in ("experiment", "plate", "well") if c in meta.columns]
    if "well" not in cols:
        raise TableError("metadata: splitting by well needs 'well_id' or 'well' columns")
    return _join_columns(meta, cols)


def batch_labels(meta: pd.DataFrame, batch: str | Sequence[str] | None = None) -> np.ndarray:
    """Batch ids: default (experiment, plate) when present."""
    if batch is None:
        batch = [c for c in ("experiment", "plate") if c in meta.columns]
        if not batch:
            raise TableError("metadata: no batch column (expected 'experiment'/'plate'); "
                             "name one with batch_col=")
    if isinstance(batch, str):
        batch = [batch]
    require_columns(meta, batch, "batch normalisation")
    return _join_columns(meta, list(batch))


def _join_columns(meta: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """Row-wise 'a_b_c' of several columns, vectorised (no per-row Python)."""
    out = pd.Series(as_str(meta, cols[0]), index=meta.index, dtype=object)
    for c in cols[1:]:
        out = out + "_" + pd.Series(as_str(meta, c), index=meta.index, dtype=object)
    return out.to_numpy(dtype=object)
