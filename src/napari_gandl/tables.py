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

import errno
import json
import re
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
    """Read a parquet or CSV (optionally gzipped) table, with pyarrow; a CSV of at least
    :data:`CONVERT_CSV_BYTES` is converted once to parquet beside it (:func:`csv_as_parquet`)."""
    return _Columns(Path(path)).frame()


# ---------------------------------------------------------------- files read with pyarrow
#: A CSV table at least this large is converted once to parquet beside it and read from there:
#: parsing a 1.5 GB, 305,520 x 1,025 embeddings.csv costs 15 CPU seconds, reading its parquet 2
#: (bench_scale_embed.py). Smaller ones are parsed each time (a 40 MB metadata.csv in 0.5 s).
CONVERT_CSV_BYTES = 64 * 2**20
#: CSV bytes parsed at a time while converting: 4 MiB keeps the conversion of that file at
#: 350 MB peak memory (32 MiB blocks: 1.4 GB) at the same speed (measured).
CSV_BLOCK_BYTES = 4 * 2**20
#: rows per parquet row group of a converted CSV, and per batch when a feature matrix is filled
ROWS_PER_BATCH = 16_384
_CSV_STAMP = b"napari_gandl.csv"  # the parquet's key-value metadata: which CSV it was made from
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def _csv_options(path: Path, column_types=None) -> dict:
    """pyarrow's CSV options, read as pandas reads a CSV: empty fields are missing values, a
    quoted value may hold a line break."""
    import pyarrow.csv as pcsv

    return dict(parse_options=pcsv.ParseOptions(delimiter="\t" if ".tsv" in path.name.lower() else ",",
                                                newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(strings_can_be_null=True, column_types=column_types or {}))


def _read_error(path: Path, exc: Exception) -> TableError:
    """A pyarrow (or OS) error reading ``path`` as a one-line TableError naming the file."""
    detail = " ".join(str(exc).split())
    row = re.search(r"Row #(\d+): Expected (\d+) columns, got (\d+)", detail)  # a physical line number
    if row:
        detail = f"line {row[1]}: expected {row[2]} columns, got {row[3]}"
    return TableError(f"{path}: cannot be read as a table ({detail})")


def _csv_stamp(path: Path) -> bytes:
    st = path.stat()
    return json.dumps({"csv": path.name, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}).encode()


# the type a CSV column is read as next, when its values do not fit the type its first block showed
_WIDER = {"null": "double", "int64": "double"}


def _convert_csv(path: Path, dest: Path) -> None:
    """Stream the CSV ``path`` into the parquet file ``dest``, a block at a time.

    pyarrow's streaming reader takes each column's type from the first block, so the types are
    inferred there once, given explicitly (inferring every block costs twice the parse), and a
    column whose later values do not fit is widened (integers or empty -> float -> text) and the
    conversion started again."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    read = pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    with pcsv.open_csv(path, read_options=read, **_csv_options(path)) as first:
        types = {f.name: f.type for f in first.schema}
    while True:
        try:
            with pcsv.open_csv(path, read_options=read, **_csv_options(path, types)) as reader, \
                    pq.ParquetWriter(dest, reader.schema.with_metadata({_CSV_STAMP: _csv_stamp(path)})) as writer:
                pending, rows = [], 0
                for batch in reader:
                    pending.append(batch)
                    rows += batch.num_rows
                    if rows >= ROWS_PER_BATCH:
                        writer.write_table(pa.Table.from_batches(pending))
                        pending, rows = [], 0
                if pending:
                    writer.write_table(pa.Table.from_batches(pending))
            return
        except pa.ArrowInvalid as exc:
            bad = re.search(r"In CSV column #(\d+): .*CSV conversion error to (\w+)", str(exc))
            if bad is None:
                raise
            name = list(types)[int(bad[1])]
            types[name] = pa.type_for_alias(_WIDER.get(bad[2], "string"))


def csv_as_parquet(path) -> Path:
    """The parquet copy of the CSV table ``path``, ``NAME.parquet`` beside it (``embeddings.csv`` ->
    ``embeddings.csv.parquet``), converted now unless it was made from this very CSV (its size
    and time of change, recorded in the copy); a changed CSV is converted again. A folder that
    cannot be written to gets the copy in a temporary file instead, with a warning."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    dest = path.with_name(path.name + ".parquet")
    try:
        if (pq.read_schema(dest).metadata or {}).get(_CSV_STAMP) == _csv_stamp(path):
            return dest
    except (OSError, pa.ArrowException):  # none yet, or damaged: converted again
        pass
    try:
        with atomic_path(dest) as tmp:
            _convert_csv(path, tmp)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        import tempfile

        dest = Path(tempfile.mkdtemp(prefix="gandl-table-")) / dest.name
        warnings.warn(f"{path.parent} cannot be written to: {path.name} was converted to {dest} "
                      f"(delete it when done); in a writable folder it is converted once", stacklevel=2)
        _convert_csv(path, dest)
    return dest


class _Columns:
    """A table's columns: a DataFrame's, or a file's read with pyarrow (a parquet file, a CSV
    parsed in memory, or a large CSV through its parquet copy). Only the columns asked for are
    read, and a feature matrix is filled batch by batch: loading a 305,520 x 1,024 table peaks at
    2.2 GB, 1.2 GB of it the float32 matrix (bench_scale_embed.py), where pandas needed 6.5 GB."""

    def __init__(self, source):
        self.source = source
        if isinstance(source, pd.DataFrame):
            self.names = list(source.columns)
            self.numeric = {c for c in self.names if pd.api.types.is_numeric_dtype(source[c])
                            and not pd.api.types.is_bool_dtype(source[c])}
            return
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        if not source.exists():
            raise FileNotFoundError(f"table not found: {source}")
        name = source.name.lower()
        if not (_is_parquet(source) or name.endswith(_CSV_SUFFIXES)):
            raise TableError(f"{source}: unknown table format (use .parquet or .csv)")
        try:
            if _is_parquet(source) or source.stat().st_size >= CONVERT_CSV_BYTES:
                self.arrow = pq.ParquetFile(source if _is_parquet(source) else csv_as_parquet(source))
                schema = self.arrow.schema_arrow
            else:  # one thread: pyarrow then names the line of a malformed row
                self.arrow = pcsv.read_csv(source, read_options=pcsv.ReadOptions(use_threads=False),
                                           **_csv_options(source))
                schema = self.arrow.schema
        except (pa.ArrowException, OSError) as exc:
            raise _read_error(source, exc) from None
        self.names = list(schema.names)
        self.numeric = {f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)}

    def frame(self, names: Sequence | None = None) -> pd.DataFrame:
        """The columns ``names`` (default: all) as a DataFrame."""
        import pyarrow as pa

        names = self.names if names is None else list(names)
        if isinstance(self.source, pd.DataFrame):
            return self.source[names]
        try:
            table = self.arrow.select(names) if isinstance(self.arrow, pa.Table) else self.arrow.read(columns=names)
            return table.to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise _read_error(self.source, exc) from None

    def matrix(self, names: Sequence, rows: np.ndarray | None = None, order: str = "C") -> np.ndarray:
        """The columns ``names`` as a float32 matrix (missing values NaN) in the memory ``order``
        "C" or "F", of the rows where the boolean mask ``rows`` is true (default: all)."""
        import pyarrow as pa

        if isinstance(self.source, pd.DataFrame):
            X = self.source[list(names)].to_numpy(dtype=np.float32)
            return np.asarray(X if rows is None else X[rows], order=order)
        if isinstance(self.arrow, pa.Table):
            n, batches = self.arrow.num_rows, self.arrow.select(list(names)).to_batches(ROWS_PER_BATCH)
        else:
            n = self.arrow.metadata.num_rows
            batches = self.arrow.iter_batches(ROWS_PER_BATCH, columns=list(names))
        X = np.empty((n if rows is None else int(np.count_nonzero(rows)), len(names)), np.float32, order=order)
        start = done = 0
        try:
            for batch in batches:
                # a batch is gathered column by column, then transposed into X's rows at once
                # (6.6 CPU s for the 305,520 x 1,024 table, 7.4 s writing each column into X)
                block = np.empty((len(names), batch.num_rows), np.float32)
                for j, column in enumerate(batch.columns):
                    block[j] = column.to_numpy(zero_copy_only=False)
                keep = slice(None) if rows is None else rows[start:start + batch.num_rows]
                block = block.T[keep]
                X[done:done + len(block)] = block
                start, done = start + batch.num_rows, done + len(block)
        except (pa.ArrowException, OSError) as exc:
            raise _read_error(self.source, exc) from None
        pa.default_memory_pool().release_unused()  # the batches' buffers, kept by the allocator otherwise
        return X


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


def numeric_feature_columns(names: Iterable, numeric: set, metadata_columns: Iterable[str] = ()) -> list:
    """The ``numeric`` columns among ``names`` that are not metadata."""
    meta = set(METADATA_COLUMNS) | set(metadata_columns)
    return [c for c in names if c in numeric and c not in meta and str(c) not in meta]


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
    bad_rows = np.zeros(len(table), bool)
    for s in range(0, len(table), ROWS_PER_BATCH):  # a batch at a time: no n x d temporary
        bad_rows[s:s + ROWS_PER_BATCH] = ~np.isfinite(table.X[s:s + ROWS_PER_BATCH]).all(axis=1)
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
    high, low = np.nanmax(X, axis=0), np.nanmin(X, axis=0)
    span = high - low
    scale = np.maximum(np.maximum(np.abs(high), np.abs(low)), 1e-30)  # max |x| without a copy of X
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
    order: str = "C",
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
    order : memory layout of the feature matrix: "C" (a site's features together, what the
        analysis wants) or "F" (a feature's values together, what a pandas DataFrame holds).
    """
    if isinstance(embeddings, EmbeddingTable):
        table = embeddings
    else:
        source = str(embeddings) if isinstance(embeddings, (str, Path)) else "<embeddings>"
        columns = _Columns(Path(embeddings) if isinstance(embeddings, (str, Path)) else embeddings)
        site_column = "site_id"
        if site_column not in columns.names:
            # RxRx19a's embeddings.csv may carry the id in an unnamed first column
            site_column = columns.names[0] if columns.names else ""
            unnamed = str(site_column) == "" or str(site_column).startswith("Unnamed")  # pyarrow's, pandas' name
            if not columns.names or not (unnamed or site_column not in columns.numeric):
                raise TableError(f"{source}: no 'site_id' column")
        mframe, meta_cols = None, set()
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
        candidates = [c for c in columns.names if c != site_column]
        if features is None:
            features = numeric_feature_columns(candidates, columns.numeric, meta_cols)
            if not features:
                raise TableError(f"{source}: no numeric feature columns found "
                                 f"(columns: {', '.join(map(str, columns.names[:12]))})")
        else:
            features = list(features)
            missing = [f for f in features if f not in candidates]
            if missing:
                raise TableError(f"{source}: feature column(s) not found: {', '.join(map(str, missing[:10]))}")
            nonnum = [f for f in features if f not in columns.numeric]
            if nonnum:
                raise TableError(f"{source}: feature column(s) are not numeric: {', '.join(map(str, nonnum[:10]))}")
        fset = set(features)
        # the metadata first, the feature matrix then, read only for the rows kept
        frame = columns.frame([c for c in columns.names if c not in fset]).rename(columns={site_column: "site_id"})
        frame["site_id"] = frame["site_id"].astype(str)
        if frame["site_id"].duplicated().any():
            dup = frame.loc[frame["site_id"].duplicated(), "site_id"].head(5).tolist()
            raise TableError(f"{source}: duplicated site_id values, e.g. {', '.join(dup)}")
        rows = None
        if mframe is not None:
            overlap = [c for c in mframe.columns if c in frame.columns and c != "site_id"]
            frame = frame.drop(columns=overlap)
            known = pd.Series(pd.Index(mframe["site_id"]).get_indexer(frame["site_id"]) >= 0, index=frame.index)
            if not known.any():
                raise TableError(f"{source}: none of the {len(frame)} site_ids appear in "
                                 f"{msource} (e.g. {frame['site_id'].iloc[0]!r})")
            if not known.all():
                lost = frame.loc[~known, "site_id"]
                warnings.warn(f"{source}: {len(lost)} site(s) have no metadata in {msource} "
                              f"and are dropped (e.g. {', '.join(lost.head(5))})", stacklevel=2)
                rows = known.to_numpy()
                frame = frame.loc[rows]
            frame = frame.merge(mframe, on="site_id", how="left", validate="one_to_one")
        meta = with_rxrx1_treatment(frame.reset_index(drop=True))
        table = EmbeddingTable(meta, columns.matrix(features, rows, order), [str(f) for f in features], source)
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
