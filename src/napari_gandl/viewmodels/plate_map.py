"""The plate map: every plate of a site table as a well grid, coloured by any column.

Qt-free. :class:`PlateMap` knows where each well sits (plate, row, column),
which sites it holds, and turns a site-table column into one colour per well
(:class:`Colouring`: the most frequent value of a categorical column, the mean
of a continuous one) with its legend. The dock draws ``plate_image`` as a
picture and asks ``well_at`` / ``well_of_site`` for hover, click and the
current site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from napari_gandl import columns as cols

from napari_gandl.viewmodels.site_table import SiteTable

#: standard plate formats (rows, columns); a plate takes the smallest that holds its wells
FORMATS = ((8, 12), (16, 24), (32, 48))
MISSING = (0.35, 0.35, 0.35, 1.0)   # a well whose value is missing
EMPTY = (0.12, 0.12, 0.12, 1.0)     # a position without a well in this screen
MAX_CATEGORIES = 10                  # numeric columns with at most this many values are categories
LEGEND_ENTRIES = 12
_WELL = re.compile(r"^([A-Za-z]{1,2})(\d{1,3})$")


def plate_labels(frame: pd.DataFrame) -> np.ndarray:
    """``"HRCE-1 plate 1"``-like label of the plate of every site-table row."""
    if cols.EXPERIMENT in frame.columns and cols.PLATE in frame.columns:
        return (frame[cols.EXPERIMENT].astype(str) + " plate " + frame[cols.PLATE].astype(str)).to_numpy(object)
    for name in (cols.EXPERIMENT, cols.PLATE):
        if name in frame.columns:
            return frame[name].astype(str).to_numpy(object)
    return np.full(len(frame), "plate", dtype=object)


def well_position(well: str) -> tuple[int, int] | None:
    """``"B02"`` -> ``(1, 1)`` (zero-based row, column); None for a name that is not a well."""
    found = _WELL.match(str(well).strip())
    if found is None:
        return None
    letters, number = found.groups()
    row = 0
    for ch in letters.upper():
        row = row * 26 + (ord(ch) - ord("A") + 1)
    return row - 1, int(number) - 1


@dataclass
class Colouring:
    """One colour per well of a :class:`PlateMap`, and the legend that explains them."""

    column: str
    kind: str                                   # "categorical" or "continuous"
    rgba: np.ndarray                            # (n_wells, 4) floats in 0..1
    values: list                                # per well: its category or mean (None when missing)
    legend: list[tuple[str, tuple]]             # categorical: (label, rgba); continuous: (min, max) labels
    colormap: str = ""                          # continuous: the matplotlib colormap's name
    limits: tuple[float, float] = (0.0, 1.0)    # continuous: the values at the colormap's ends


class PlateMap:
    """Wells of every plate in a :class:`SiteTable`, in plate-grid positions."""

    def __init__(self, table: SiteTable):
        self.table = table
        frame = table.frame
        if cols.WELL not in frame.columns:
            raise ValueError("the plate has no well column, so there is no plate map to draw")
        wells_named = frame[cols.WELL].astype(str).to_numpy(object)
        codes, names = pd.factorize(wells_named)  # a few hundred distinct well names
        position = np.array([well_position(w) or (-1, -1) for w in names], np.int64).reshape(-1, 2)[codes]
        rows = position[:, 0]
        usable = rows >= 0
        if not usable.any():
            raise ValueError(f"no well names like 'B02' in the plate's well column (e.g. {frame[cols.WELL].iloc[0]!r})")
        sites = pd.DataFrame({"plate": plate_labels(frame), "well": wells_named, "row": rows,
                              "col": position[:, 1], "site": np.arange(len(frame))})[usable]
        self.plates: list[str] = list(pd.unique(sites["plate"].to_numpy()))
        sites["plate_index"] = sites["plate"].map({p: i for i, p in enumerate(self.plates)})
        wells = (sites.groupby(["plate_index", "well"], sort=False)
                 .agg(plate=("plate", "first"), row=("row", "first"), col=("col", "first"),
                      first_site=("site", "min"))
                 .reset_index().sort_values(["plate_index", "row", "col"]).reset_index(drop=True))
        self.wells = wells
        key = pd.MultiIndex.from_frame(wells[["plate_index", "well"]])
        site_well = key.get_indexer(pd.MultiIndex.from_frame(sites[["plate_index", "well"]]))
        self._site_well = np.full(len(frame), -1, np.int64)
        self._site_well[sites["site"].to_numpy()] = site_well
        by_well = np.argsort(site_well, kind="stable")
        bounds = np.searchsorted(site_well[by_well], np.arange(1, len(wells)))
        self._sites = np.split(sites["site"].to_numpy()[by_well], bounds)
        rows, columns = int(wells["row"].max()) + 1, int(wells["col"].max()) + 1
        self.shape = next(((r, c) for r, c in FORMATS if rows <= r and columns <= c), (rows, columns))
        self._grid = np.full((len(self.plates), *self.shape), -1, np.int64)
        self._grid[wells["plate_index"], wells["row"], wells["col"]] = np.arange(len(wells))

    # ---------------------------------------------------------------- geometry
    def well_at(self, plate: int, row: int, col: int) -> int | None:
        """The well at a grid position (index into ``wells``), or None for an empty position."""
        if not (0 <= plate < len(self.plates) and 0 <= row < self.shape[0] and 0 <= col < self.shape[1]):
            return None
        w = int(self._grid[plate, row, col])
        return w if w >= 0 else None

    def well_of_site(self, site: int) -> int | None:
        w = int(self._site_well[site]) if 0 <= site < len(self._site_well) else -1
        return w if w >= 0 else None

    def sites_of(self, well: int) -> np.ndarray:
        """Site-table positions of the well's sites, in slider order."""
        return self._sites[well]

    def row_label(self, row: int) -> str:
        return chr(ord("A") + row) if row < 26 else "A" + chr(ord("A") + row - 26)

    # ---------------------------------------------------------------- colours
    def colour_columns(self) -> list[str]:
        """Site-table columns a plate map can be coloured by (not the embedding, not per-site ids)."""
        skip = {cols.SITE_ID, cols.WELL_ID, cols.SITE, cols.WELL, *self.table.embedding_columns}
        return [c for c in self.table.frame.columns if c not in skip]

    def colour_by(self, column: str) -> Colouring:
        """Colour every well by ``column``: the most frequent value of a category, the mean of a number."""
        from matplotlib import colormaps

        from napari_gandl.palettes import category_colors

        frame = self.table.frame
        if column not in frame.columns:
            raise ValueError(f"the site table has no column {column!r}")
        values = frame[column]
        on_plate = self._site_well >= 0
        well_of = self._site_well[on_plate]
        per_site = values.to_numpy()[on_plate]
        n_wells = len(self.wells)
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric and values.nunique(dropna=True) > MAX_CATEGORIES:
            x = per_site.astype(float)
            finite = np.isfinite(x)
            n = np.bincount(well_of[finite], minlength=n_wells)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.bincount(well_of[finite], weights=x[finite], minlength=n_wells) / n
            lo, hi = (float(np.nanmin(means)), float(np.nanmax(means))) if (n > 0).any() else (0.0, 1.0)
            hi = hi if hi > lo else lo + 1.0
            cmap = colormaps["viridis"]
            rgba = cmap(np.clip((np.nan_to_num(means, nan=lo) - lo) / (hi - lo), 0, 1))
            rgba[n == 0] = MISSING
            return Colouring(column, "continuous", rgba,
                             [float(v) if k else None for v, k in zip(means, n > 0)],
                             [(f"{lo:.3g}", cmap(0.0)), (f"{hi:.3g}", cmap(1.0))], "viridis", (lo, hi))
        codes, uniques = pd.factorize(pd.Series(per_site))  # missing values -> -1
        names = np.array([_label(u) for u in uniques] + [""], dtype=object)  # names[-1]: missing
        codes[names[codes] == ""] = -1                                        # "" is missing too
        # the most frequent value of each well (vectorised: 1,672 compounds x 6,144 wells)
        tally = pd.DataFrame({"well": well_of, "code": codes}).value_counts().reset_index()
        winners = tally.drop_duplicates("well")
        modes = np.full(n_wells, -1, np.int64)
        modes[winners["well"].to_numpy()] = winners["code"].to_numpy()
        counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(uniques)), index=names[:-1])
        counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
        if numeric:  # few numeric values (doses, plate numbers): in numeric order
            categories = sorted(counts.index, key=float)
        else:
            categories = list(counts.index)
        palette = category_colors(categories)  # a condition has the same colour in every plot
        colour_of = {c: tuple(palette[i]) for i, c in enumerate(categories)}
        code_colours = np.array([colour_of.get(name, MISSING) for name in names])  # last row: missing
        rgba = code_colours[modes]
        shown = categories[:LEGEND_ENTRIES]
        legend = [(c, colour_of[c]) for c in shown]
        if len(categories) > len(shown):
            legend.append((f"… {len(categories) - len(shown)} more", None))
        if (modes < 0).any():
            legend.append(("missing", MISSING))
        return Colouring(column, "categorical", rgba, [names[m] or None for m in modes], legend)

    def plate_image(self, colouring: Colouring, plate: int) -> np.ndarray:
        """``(rows, cols, 4)`` uint8 picture of one plate: one pixel per well position."""
        image = np.empty((*self.shape, 4), np.uint8)
        image[:] = np.round(np.asarray(EMPTY) * 255).astype(np.uint8)
        mine = self.wells["plate_index"].to_numpy() == plate
        rgba = np.round(np.asarray(colouring.rgba)[mine] * 255).astype(np.uint8)
        image[self.wells["row"].to_numpy()[mine], self.wells["col"].to_numpy()[mine]] = rgba
        return image

    def describe_well(self, well: int, colouring: Colouring | None = None) -> str:
        """The well's metadata, as a hover text: plate, well, sites, condition, compound, dose, value."""
        info = self.wells.iloc[well]
        sites = self.sites_of(well)
        first = self.table.frame.iloc[int(sites[0])]
        lines = [f"{info['plate']} · well {info['well']} · {len(sites)} site{'s' if len(sites) != 1 else ''}"]
        for name in (cols.CELL_TYPE, cols.CONDITION, cols.COMPOUND, cols.DOSE):
            if name in first.index and _label(first[name]):
                lines.append(f"{name}: {_label(first[name])}")
        if colouring is not None and colouring.column not in (cols.CELL_TYPE, cols.CONDITION, cols.COMPOUND,
                                                              cols.DOSE):
            value = colouring.values[well]
            shown = "missing" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
            mean = " (mean of its sites)" if colouring.kind == "continuous" and len(sites) > 1 else ""
            lines.append(f"{colouring.column}: {shown}{mean}")
        return "\n".join(lines)


def _label(value) -> str:
    """A category's text; "" for a missing value."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)
