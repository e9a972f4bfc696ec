"""The dose-response dock's view-model: E2 scores, 4PL fits, and the sites of a dose point (Qt-free)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from napari_gandl import columns as cols
from napari_gandl.analysis import dose_response, fit_e2, off_manifold
from napari_gandl.tables import as_str

from napari_gandl.viewmodels.embedding_choice import record, resolve_embedding
from napari_gandl.viewmodels.site_table import SiteTable


def run(table: SiteTable, params: dict, report: Callable[[int, int, str], None]) -> dict:
    """Score every embedded site on E2, fit every compound x cell type curve and flag those far from both
    controls at their top dose, as ``gandl analyse`` does (worker thread).

    The record's ``scores`` hold the per-site ``e2_score`` and ``hit`` (the site's compound x
    cell type is a hit), the columns the dock writes to the site table."""
    choice = params["embedding"]
    report(0, 3, "reading the embedding…")
    emb = resolve_embedding(table, choice["source"], choice.get("path"), choice["normalisation"],
                            progress=lambda d, t: report(0, 3, f"handcrafted features {d} / {t}…"))
    report(1, 3, "fitting the E2 space…")
    scores = fit_e2(emb.table).on_axis(emb.table.X)
    report(2, 3, "fitting dose-response curves…")
    curves, points = dose_response(scores, emb.table.meta, min_doses=params["min_doses"],
                                   alpha=params["alpha"], min_effect=params["min_effect"])
    curves = off_manifold(emb.table.X, emb.table.meta, curves)  # flagged and ranked as the report does
    meta = emb.table.meta
    hits = set(zip(curves.loc[curves["hit"], "compound"].astype(str), curves.loc[curves["hit"], "cell_type"].astype(str)))
    cells = as_str(meta, cols.CELL_TYPE) if cols.CELL_TYPE in meta else np.full(len(meta), "all")
    site_hit = np.array([(c, t) in hits for c, t in zip(as_str(meta, cols.COMPOUND), cells)], bool)
    ids = meta[cols.SITE_ID].astype(str).to_numpy()
    return record(table, choice, emb, params=params, curves=curves, points=points, rows=emb.rows,
                  scores=pd.DataFrame({cols.SITE_ID: ids, cols.E2_SCORE: scores, cols.HIT: site_hit}),
                  compound=None, notes=emb.notes)


def dose_point_rows(table: SiteTable, rows: np.ndarray, compound: str, cell_type: str, dose: float) -> np.ndarray:
    """Site-table positions (among the embedded ``rows``) of one compound x cell type x dose."""
    frame = table.frame
    rows = np.asarray(rows, np.int64)
    sub = frame[[c for c in (cols.COMPOUND, cols.DOSE, cols.CELL_TYPE) if c in frame.columns]].iloc[rows]
    conc = pd.to_numeric(sub[cols.DOSE], errors="coerce").to_numpy(np.float64)
    cells = as_str(sub, cols.CELL_TYPE) if cols.CELL_TYPE in sub else np.full(len(sub), "all")
    hit = (as_str(sub, cols.COMPOUND) == compound) & (cells == cell_type) & np.isclose(conc, dose, rtol=1e-9)
    return rows[hit]
