"""The site table of one opened plate: its metadata and the docks' per-site results.

One :class:`SiteTable` per opened plate (the reader creates it; every stain
layer holds the same one in ``layer.metadata["napari_gandl"]["site_table"]``).
Rows are the plate's sites in slider order. Docks add columns with
:meth:`SiteTable.set_columns` and learn about each other's columns from the
:attr:`~SiteTable.changed` event; the site shown follows
:attr:`~SiteTable.current` (bridged to napari's slider in ``_widgets/common.py``).

``frame`` is never changed in place: every change makes a new DataFrame
(cheap under pandas' copy-on-write), so a frame a worker thread is reading
stays consistent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from psygnal import Signal

from napari_gandl import columns as cols
from napari_gandl.plate import Plate


class SiteTable:
    """Per-site metadata and results of one plate, announcing every change."""

    changed = Signal(tuple)        # names of the columns added, replaced or removed
    current_changed = Signal(int)  # the site shown (the slider position)

    def __init__(self, plate: Plate):
        self.plate = plate
        self._frame = plate.sites.reset_index(drop=True)
        self._embedding: list[str] = []
        self._embedding_source = ""
        self._embedding_version = 0
        self._current = 0
        #: what docks keep for the session of this plate (their last analysis, cached
        #: features), so a re-opened dock shows it again
        self.session: dict[str, Any] = {}

    # ---------------------------------------------------------------- reading
    @property
    def frame(self) -> pd.DataFrame:
        """The table (read it; change it only through :meth:`set_columns`)."""
        return self._frame

    def __len__(self) -> int:
        return len(self._frame)

    @property
    def embedding_columns(self) -> list[str]:
        """Feature columns of the attached embedding (empty when none)."""
        return list(self._embedding)

    @property
    def embedding_source(self) -> str:
        """Where the attached embedding came from (a run folder or a table file)."""
        return self._embedding_source

    @property
    def embedding_version(self) -> int:
        """Counts the embeddings attached so far: an analysis remembers it to notice a new one."""
        return self._embedding_version

    @property
    def result_columns(self) -> list[str]:
        """Columns the docks added that are neither plate metadata nor the embedding."""
        skip = set(self.plate.sites.columns) | set(self._embedding)
        return [c for c in self._frame.columns if c not in skip]

    def row(self, i: int) -> pd.Series:
        return self._frame.iloc[int(i)]

    def describe(self, i: int) -> str:
        """One line saying what site ``i`` is: well, site, cell type, condition, compound and dose."""
        f = self._frame
        i = int(i)
        if not 0 <= i < len(f):
            return ""

        def value(name):
            if name not in f.columns:
                return None
            v = f[name].iloc[i]
            return None if v is None or (isinstance(v, float) and np.isnan(v)) or v == "" else v

        parts = [str(value(cols.SITE_ID) or i)]
        for name in (cols.CELL_TYPE, cols.CONDITION):
            if value(name) is not None:
                parts.append(str(value(name)))
        compound, dose = value(cols.COMPOUND), value(cols.DOSE)
        if compound is not None:
            parts.append(f"{compound} {dose:g} µM" if isinstance(dose, (int, float)) else str(compound))
        if value(cols.PROBLEM) is not None:
            parts.append(f"problem: {value(cols.PROBLEM)}")
        return " · ".join(parts)

    # ---------------------------------------------------------------- the current site
    @property
    def current(self) -> int:
        return self._current

    @current.setter
    def current(self, i: int) -> None:
        i = int(i)
        if not 0 <= i < len(self._frame):
            raise IndexError(f"site {i} is outside the plate (0..{len(self._frame) - 1})")
        if i != self._current:
            self._current = i
            self.current_changed.emit(i)

    # ---------------------------------------------------------------- changing
    def files_checked(self) -> None:
        """Take the plate's ``problem`` column again, once its files have been listed
        (``Plate.check_files``); emits :attr:`changed` with it."""
        self._frame = self._frame.assign(**{cols.PROBLEM: self.plate.sites[cols.PROBLEM].to_numpy()})
        self.changed.emit((cols.PROBLEM,))

    def set_columns(self, columns: pd.DataFrame | dict, *, embedding: bool = False, source: str = "") -> None:
        """Add or replace per-site columns; emits :attr:`changed` with their names.

        ``columns`` is aligned by ``site_id`` when it has that column (sites it
        lacks get NaN), otherwise by row order (then it must have one row per
        site). With ``embedding=True`` they become the attached embedding and
        the previous embedding's columns are removed.
        """
        new = pd.DataFrame(columns) if isinstance(columns, dict) else columns
        if cols.SITE_ID in new.columns:
            ids = new[cols.SITE_ID].astype(str)
            if ids.duplicated().any():
                raise ValueError(f"the new columns repeat site ids, e.g. {ids[ids.duplicated()].iloc[0]!r}")
            if len(ids) and not ids.isin(self._frame[cols.SITE_ID].astype(str)).any():
                raise ValueError(f"none of the {len(ids)} site ids belong to this plate "
                                 f"(e.g. {ids.iloc[0]!r} vs {self._frame[cols.SITE_ID].iloc[0]!r})")
            new = (new.drop(columns=[cols.SITE_ID]).set_axis(ids, axis=0)
                   .reindex(self._frame[cols.SITE_ID].astype(str)))
        elif len(new) != len(self._frame):
            raise ValueError(f"{len(new)} rows given for a plate of {len(self._frame)} sites "
                             f"(give a site_id column to align fewer)")
        new = new.set_axis(self._frame.index, axis=0)
        metadata = set(self.plate.sites.columns) & set(new.columns)
        if metadata:
            raise ValueError(f"the plate's metadata columns cannot be replaced: {sorted(metadata)}")
        names = [str(c) for c in new.columns]
        removed = [c for c in self._embedding if c not in names] if embedding else []
        if not embedding:
            overlap = set(names) & set(self._embedding)
            if overlap:
                raise ValueError(f"{sorted(overlap)[:3]} belong to the attached embedding; "
                                 "attach a new embedding instead")
        keep = self._frame.drop(columns=[c for c in [*names, *removed] if c in self._frame.columns])
        # hundreds of feature columns join in one step (one by one costs seconds)
        self._frame = pd.concat([keep, new], axis=1)
        if embedding:
            self._embedding = names
            self._embedding_source = str(source)
            self._embedding_version += 1
        self.changed.emit(tuple(dict.fromkeys([*names, *removed])))
