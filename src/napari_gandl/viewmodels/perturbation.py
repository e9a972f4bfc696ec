"""The perturbation-plot dock's view-model: fit the E2 / C2 space and project every site (Qt-free)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from napari_gandl import columns as cols
from napari_gandl.analysis import fit_c2, fit_e2
from napari_gandl.analysis.axes import COLOR_PRESETS
from napari_gandl.tables import categorical_columns

from napari_gandl.viewmodels.embedding_choice import record, resolve_embedding
from napari_gandl.viewmodels.site_table import SiteTable

SPACES = ("E2: C+ vs C- (effectiveness)", "C2: cell types (cell model)")


def color_choices(table: SiteTable | None) -> list[str]:
    """What the points can be coloured by: the four presets, then the site table's categorical
    and score columns (results of the other docks included), never the embedding's."""
    if table is None:
        return list(COLOR_PRESETS)
    base = {cols.SITE_ID, cols.WELL_ID, cols.CELL_TYPE, cols.CONDITION, cols.COMPOUND, cols.DOSE}
    frame = table.frame[[c for c in table.frame.columns if c not in set(table.embedding_columns)]]
    scores = [c for c in frame.columns if cols.is_score(c)]
    extra = [c for c in [*categorical_columns(frame), *scores] if c not in base]
    return list(dict.fromkeys([*COLOR_PRESETS, *extra]))


def build_tree(coords: np.ndarray):
    """``(KD-tree, scale)`` for nearest-point lookups (hover, click) in the plot: built in the
    worker, once per space (~0.2 s for 300k points)."""
    from scipy.spatial import cKDTree

    coords = np.asarray(coords, np.float64)
    span = np.ptp(coords, axis=0) if len(coords) else np.ones(2)
    scale = np.where(span > 0, span, 1.0)
    return cKDTree(coords / scale, balanced_tree=False, compact_nodes=False), scale


def run(table: SiteTable, params: dict, report: Callable[[int, int, str], None]) -> dict:
    """Fit the chosen space on the chosen embedding and project every embedded site (worker thread)."""
    choice = params["embedding"]
    report(0, 3, "reading the embedding…")
    emb = resolve_embedding(table, choice["source"], choice.get("path"), choice["normalisation"],
                            progress=lambda d, t: report(0, 3, f"handcrafted features {d} / {t}…"))
    report(1, 3, "fitting the space…")
    space = fit_e2(emb.table) if params["space"].startswith("E2") else fit_c2(emb.table)
    report(2, 3, "projecting…")
    coords = space.transform(emb.table.X)
    return record(table, choice, emb, params=params, coords=coords, tree=build_tree(coords), rows=emb.rows,
                  space=space.as_dict(), selection=None, notes=emb.notes)
