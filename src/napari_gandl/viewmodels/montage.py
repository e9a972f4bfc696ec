"""Montages: many sites side by side, one tile per site with all stains, labelled.

Qt-free. :func:`choose_sites` turns a request (a selection column, a
compound's doses, random controls per condition) into labelled groups of
site-table rows; :func:`build_montage` reads those sites and lays them out,
one group per row of tiles, as one ``(C, H, W)`` grid per stain with a label
and a position per tile. The Montage and Similar-sites docks show the result
as layers; :func:`export_montage` writes it as a PNG (colour composite with
the labels) or a TIFF (one page per stain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from napari_gandl import columns as cols
from napari_gandl.plate import Plate

SELECTION = "sites of a selection column"
DOSES = "a compound's doses"
CONTROLS = "random controls per condition"
MODES = (SELECTION, DOSES, CONTROLS)
MAX_TILES = 96


@dataclass
class Group:
    """One row of the montage: a heading and its sites (site-table positions)."""

    label: str
    sites: list[int]


@dataclass
class Montage:
    """Tiles of sites in a grid: one ``(H, W)`` plane per stain, a label and a place per tile."""

    grid: np.ndarray                       # (C, H, W) float32
    sites: list[int]                       # site-table position of each tile
    labels: list[str]                      # one per tile: well and condition (and what the group adds)
    origins: np.ndarray                    # (n_tiles, 2): top-left (y, x) of each tile in the grid
    tile_shape: tuple[int, int]
    downsample: int = 1
    groups: list[str] = field(default_factory=list)


def selection_columns(frame: pd.DataFrame) -> list[str]:
    """Boolean site-table columns (a lasso's ``selected``, ``hit``, ...): candidates for a selection."""
    return [c for c in frame.columns if pd.api.types.is_bool_dtype(frame[c])]


def compounds(frame: pd.DataFrame) -> list[str]:
    if cols.COMPOUND not in frame.columns:
        return []
    return sorted({str(v) for v in frame[cols.COMPOUND].dropna() if str(v)})


def choose_sites(frame: pd.DataFrame, mode: str, value: str | None = None, per_group: int = 4,
                 seed: int = 0) -> list[Group]:
    """The groups of sites a montage request names.

    * ``SELECTION``: the sites where the boolean column ``value`` is true (one group);
    * ``DOSES``: for compound ``value``, ``per_group`` sites of each dose, lowest dose first;
    * ``CONTROLS``: ``per_group`` random sites of each untreated condition (reproducible with ``seed``).
    """
    usable = frame[cols.PROBLEM] == "" if cols.PROBLEM in frame.columns else pd.Series(True, index=frame.index)
    if mode == SELECTION:
        if value not in frame.columns or not pd.api.types.is_bool_dtype(frame[value]):
            raise ValueError(f"{value!r} is not a selection (true/false) column of the site table")
        rows = np.flatnonzero((frame[value].fillna(False).astype(bool) & usable).to_numpy())
        if not len(rows):
            raise ValueError(f"no site is selected in column {value!r}")
        return [Group(f"{value} ({len(rows)} sites)", [int(r) for r in rows[:MAX_TILES]])]
    if mode == DOSES:
        if cols.COMPOUND not in frame.columns or cols.DOSE not in frame.columns:
            raise ValueError("the site table has no compound / dose columns")
        mine = frame[(frame[cols.COMPOUND].astype(str) == str(value)) & usable]
        if mine.empty:
            raise ValueError(f"no site of compound {value!r}")
        groups = []
        for dose, sites in mine.groupby(cols.DOSE, sort=True):
            groups.append(Group(f"{value} {dose:g} µM", [int(frame.index.get_loc(i)) for i in sites.index[:per_group]]))
        return groups
    if mode == CONTROLS:
        if cols.CONDITION not in frame.columns:
            raise ValueError("the site table has no condition column")
        untreated = frame[cols.COMPOUND].isna() | (frame[cols.COMPOUND].astype(str) == "") \
            if cols.COMPOUND in frame.columns else pd.Series(True, index=frame.index)
        controls = frame[untreated & usable]
        if controls.empty:
            raise ValueError("no untreated control sites in the site table")
        rng = np.random.default_rng(seed)
        groups = []
        for condition, sites in controls.groupby(cols.CONDITION, sort=True):
            picked = rng.choice(len(sites), size=min(per_group, len(sites)), replace=False)
            positions = [int(frame.index.get_loc(i)) for i in sites.index[np.sort(picked)]]
            groups.append(Group(str(condition), positions))
        return groups
    raise ValueError(f"unknown montage mode {mode!r} (choose one of {', '.join(MODES)})")


def tile_label(frame: pd.DataFrame, site: int, sep: str = " · ") -> str:
    """Well and condition of a site (and its compound and dose when treated), joined by ``sep``."""
    row = frame.iloc[int(site)]
    parts = [str(row.get(cols.WELL, site))]
    if isinstance(row.get(cols.CONDITION), str) and row[cols.CONDITION]:
        parts.append(row[cols.CONDITION])
    compound = row.get(cols.COMPOUND)
    if isinstance(compound, str) and compound:
        dose = row.get(cols.DOSE)
        parts.append(f"{compound} {dose:g} µM" if isinstance(dose, (int, float)) and np.isfinite(dose) else compound)
    return sep.join(parts)


def build_montage(plate: Plate, groups: list[Group], frame: pd.DataFrame | None = None, max_tile: int = 256,
                  pad: int = 4, per_row: int = 8) -> Montage:
    """Read the sites of ``groups`` and lay them out, one group per row (wrapped at ``per_row`` tiles).

    Tiles larger than ``max_tile`` pixels are shrunk by an integer factor
    (block mean, scikit-image) so that a montage of dozens of 1024-px sites
    stays light.
    """
    from skimage.transform import downscale_local_mean

    frame = plate.sites if frame is None else frame
    sites = [s for g in groups for s in g.sites]
    if not sites:
        raise ValueError("a montage needs at least one site")
    if len(sites) > MAX_TILES:
        raise ValueError(f"{len(sites)} sites: a montage shows at most {MAX_TILES}")
    factor = max(1, math.ceil(max(plate.tile_shape) / max_tile))
    h, w = (math.ceil(n / factor) for n in plate.tile_shape)
    per_row = min(per_row, max(len(g.sites) for g in groups))
    layout = []  # (group index, site) per grid cell, None for padding
    for gi, g in enumerate(groups):
        for start in range(0, len(g.sites), per_row):
            chunk = g.sites[start:start + per_row]
            layout += [(gi, s) for s in chunk] + [None] * (per_row - len(chunk))
    n_rows = len(layout) // per_row
    grid = np.zeros((plate.n_channels, n_rows * (h + pad) - pad, per_row * (w + pad) - pad), np.float32)
    tiles, labels, origins, kept = {}, [], [], []
    for cell, entry in enumerate(layout):
        if entry is None:
            continue
        gi, site = entry
        if site not in tiles:
            image = plate.read_site(int(site)).astype(np.float32)
            tiles[site] = downscale_local_mean(image, (1, factor, factor)) if factor > 1 else image
        r, c = divmod(cell, per_row)
        y, x = r * (h + pad), c * (w + pad)
        tile = tiles[site]
        grid[:, y:y + tile.shape[1], x:x + tile.shape[2]] = tile
        origins.append((y, x))
        kept.append(int(site))
        # one group: each tile says what it is; several (doses, conditions): a row starts with its
        # group. One line per part, so that a label is no wider than its longest part and does not
        # run into the next tile.
        if len(groups) == 1:
            labels.append(tile_label(frame, site, sep="\n"))
        else:
            well = str(frame[cols.WELL].iloc[int(site)]) if cols.WELL in frame.columns else str(site)
            labels.append(f"{groups[gi].label}\n{well}" if c == 0 else well)
    return Montage(grid, kept, labels, np.asarray(origins, np.float32), (h, w), factor, [g.label for g in groups])


def export_montage(montage: Montage, path, colors, limits) -> Path:
    """Write a montage: ``.png`` a colour composite with the labels drawn, ``.tif``/``.tiff`` one page per stain."""
    from PIL import Image, ImageDraw

    from napari_gandl.plate.display import composite

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, montage.grid, photometric="minisblack", metadata={"axes": "CYX"})
        return path
    if suffix != ".png":
        raise ValueError(f"{path}: export a montage as .png or .tif")
    image = Image.fromarray(composite(montage.grid, colors, limits))
    draw = ImageDraw.Draw(image)
    for (y, x), label in zip(montage.origins, montage.labels):
        draw.text((float(x) + 3, float(y) + 2), label, fill=(255, 255, 255))
    image.save(path)
    return path
