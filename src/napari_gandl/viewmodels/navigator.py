"""Finding one site among hundreds of thousands: choices narrowed level by level, and search.

Qt-free. :class:`SiteFinder` answers the Site navigator's questions about a site table:

* the choices of each level (experiment, plate, well, site) *under* the choices above it, so
  no list is longer than a plate's wells (384), however large the screen: a flat list of the
  76,800 wells of RxRx19a could be neither read nor scrolled;
* the site a choice leads to, and the choices that describe a site (to follow the slider);
* :meth:`SiteFinder.search`: the sites whose id or compound holds every word typed (the
  navigator's and the plate map's search boxes), at 300,000 sites in a few tens of ms.

Choices are strings (plate ``"12"``, site ``"3"``) in slider order, as a box shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from napari_gandl import columns as cols

LEVELS = (cols.EXPERIMENT, cols.PLATE, cols.WELL, cols.SITE)
#: columns a search looks in: every site's id holds its experiment, plate, well and site
SEARCHED = (cols.SITE_ID, cols.COMPOUND)


@dataclass
class SearchResult:
    """The sites that match a search, in slider order."""

    text: str
    sites: np.ndarray  # site-table positions of every match

    def __len__(self) -> int:
        return len(self.sites)


class SiteFinder:
    """Experiment -> plate -> well -> site choices and text search over one site table."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.levels = [level for level in LEVELS if level in frame.columns]
        self._codes: dict[str, np.ndarray] = {}
        self._labels: dict[str, list[str]] = {}
        for level in self.levels:
            codes, uniques = pd.factorize(frame[level], sort=True)  # plates in numeric order
            self._codes[level] = codes
            self._labels[level] = [str(u) for u in uniques]
        self._index = {level: {label: k for k, label in enumerate(labels)} for level, labels in self._labels.items()}
        self._searched: dict = {}  # searched columns, in lower case, made at the first search

    def __len__(self) -> int:
        return len(self.frame)

    def _mask(self, chosen: dict, levels) -> np.ndarray | None:
        """Rows that match ``chosen`` on ``levels``; None when a choice is not in the table."""
        mask = np.ones(len(self.frame), bool)
        for level in levels:
            if chosen.get(level) is None:
                continue
            code = self._index[level].get(str(chosen[level]))
            if code is None:
                return None
            mask &= self._codes[level] == code
        return mask

    def choices(self, level: str, chosen: dict) -> list[str]:
        """The values of ``level`` among the sites that match the ``chosen`` levels above it."""
        if level not in self.levels:
            return []
        above = self.levels[: self.levels.index(level)]
        mask = self._mask(chosen, above)
        if mask is None:
            return []
        labels = self._labels[level]
        return [labels[k] for k in np.unique(self._codes[level][mask])]

    def site_of(self, chosen: dict) -> int | None:
        """The first site (in slider order) that matches every level ``chosen``."""
        mask = self._mask(chosen, self.levels)
        if mask is None or not mask.any():
            return None
        return int(np.argmax(mask))

    def key_of(self, site: int) -> dict[str, str]:
        """The choices that lead to ``site``: ``{"experiment": "HRCE-1", "plate": "12", ...}``."""
        return {level: self._labels[level][self._codes[level][int(site)]] for level in self.levels}

    def narrowed(self, chosen: dict, changed: str) -> dict[str, str]:
        """``chosen`` after the level ``changed`` took a new value: each finer level keeps its
        value when the sites under the new choice still have it, and takes their first otherwise."""
        result = dict(chosen)
        for level in self.levels[self.levels.index(changed) + 1:]:
            options = self.choices(level, result)
            if result.get(level) not in options:
                result[level] = options[0] if options else None
        return result

    # ---------------------------------------------------------------- search
    def search(self, text: str) -> SearchResult:
        """Sites whose id or compound contains every word of ``text`` (case-insensitive): "B02"
        finds that well on every plate, "HRCE-1_12_B02" one well, "remdesivir 12" the compound on
        plate 12 (or in well B12)."""
        words = str(text).lower().split()
        if not words:
            return SearchResult(text, np.zeros(0, np.int64))
        for name in SEARCHED:
            if name in self.frame.columns and name not in self._searched:
                self._searched[name] = _searchable(self.frame[name])
        match = np.ones(len(self.frame), bool)
        for word in words:
            found = np.zeros(len(self.frame), bool)
            for values in self._searched.values():
                found |= _contains(values, word)
            match &= found
        return SearchResult(text, np.flatnonzero(match))


def _searchable(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """A text column as codes into its distinct values in lower case (code -1: missing), so that a
    search looks at each distinct value once: 1,700 compound names, not 300,000 rows."""
    codes, names = pd.factorize(values)
    return codes, pd.Index(names.astype(str)).str.lower()


def _contains(values: tuple[np.ndarray, pd.Index], word: str) -> np.ndarray:
    """Whether each row's value holds ``word``."""
    codes, names = values
    hit = np.append(np.asarray(names.str.contains(word, regex=False), bool), False)  # [-1]: missing
    return hit[codes]
