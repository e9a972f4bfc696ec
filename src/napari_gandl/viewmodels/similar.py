"""Similar sites: the k nearest sites to a site (or a selection) in the attached embedding.

Qt-free. :class:`NeighbourIndex` holds the normalised embedding (from
``embedding_choice.resolve_embedding``, so the same normalisation as the
analysis docks) in scikit-learn ``NearestNeighbors`` indices with the cosine
distance: one over all plates and, built when first asked, one per plate.
Building runs in a worker; a query takes milliseconds at the demo's size and
is timed at 300,000 x 512 in ``benchmarks/bench_browse.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors


class NeighbourIndex:
    """Cosine nearest neighbours among embedded sites.

    ``X`` (n, d) features of the sites at site-table positions ``rows``;
    ``plates`` (n,) the plate of each, for searches within one plate.

    The rows are scaled to unit length once, and searched with the euclidean
    metric, whose order is the cosine order (|u - v|^2 = 2 cosine distance):
    scikit-learn then skips re-normalising every row on every query (one query
    at 100,000 x 512: 0.31 s against 0.81 s with ``metric="cosine"``, measured).
    """

    def __init__(self, X: np.ndarray, rows: np.ndarray, plates: np.ndarray | None = None):
        X = np.asarray(X, np.float32)
        self.X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        self.rows = np.asarray(rows, np.int64)
        self.plates = np.asarray(plates if plates is not None else np.zeros(len(rows)), dtype=object)
        if len(self.X) != len(self.rows) or len(self.plates) != len(self.rows):
            raise ValueError(f"{len(self.X)} feature rows for {len(self.rows)} sites and {len(self.plates)} plates")
        self._position = pd.Series(np.arange(len(self.rows)), index=self.rows)
        self._all = self._fit(np.arange(len(self.rows)))
        self._per_plate: dict = {}

    def _fit(self, members: np.ndarray):
        return members, NearestNeighbors(metric="euclidean", algorithm="brute").fit(self.X[members])

    def __len__(self) -> int:
        return len(self.rows)

    def has(self, site: int) -> bool:
        return int(site) in self._position.index

    def query(self, sites, k: int = 12, within_plate: bool = False) -> pd.DataFrame:
        """The ``k`` nearest sites to ``sites`` (one site, or the mean direction of a selection).

        Returns ``site`` (site-table position) and ``distance`` (cosine), nearest
        first. One site finds itself first (distance 0); a selection's own sites
        are left out. ``within_plate``: only sites of the plate of the (first) query site.
        """
        sites = np.atleast_1d(np.asarray(sites, np.int64))
        if not len(sites):
            raise ValueError("no query site: none of the selected sites has an embedding")
        missing = [int(s) for s in sites if not self.has(s)]
        if missing:
            raise ValueError(f"site {missing[0]} has no embedding (it was skipped: missing or NaN features)")
        positions = self._position.loc[sites].to_numpy()
        query = self.X[positions].mean(axis=0, keepdims=True)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        members, index = self._index(self.plates[positions[0]] if within_plate else None)
        exclude = set(int(s) for s in sites) if len(sites) > 1 else set()
        n = min(len(members), k + len(exclude))
        distance, found = index.kneighbors(query, n_neighbors=n)
        result = pd.DataFrame({"site": self.rows[members[found[0]]], "distance": distance[0] ** 2 / 2})
        if exclude:
            result = result[~result["site"].isin(exclude)]
        return result.head(k).reset_index(drop=True)

    def _index(self, plate):
        if plate is None:
            return self._all
        if plate not in self._per_plate:
            self._per_plate[plate] = self._fit(np.flatnonzero(self.plates == plate))
        return self._per_plate[plate]
