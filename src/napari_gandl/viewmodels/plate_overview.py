"""What the Plate map dock shows of a screen of any size: an overview of every plate, one plate's
wells, the keyboard's moves, search matches and a per-plate summary (Qt-free).

At RxRx19a's size (4 experiments x 50 plates x 384 wells) every plate's well grid side by side
leaves a few pixels per plate and no room for its name. :class:`PlateOverview` shows the screen
at two levels instead: the *overview*, one small heat map per plate, grouped by experiment
under the experiment's name and labelled with the plate's number; and one *plate*, well by well.
It holds what is selected and zoomed, moves the selection by key (arrows, Enter, Escape, Page
Up/Down), finds wells by a well name or compound (:class:`~napari_gandl.viewmodels.navigator.SiteFinder`),
and announces every change with :attr:`PlateOverview.changed`. :func:`plate_summary` gives one
row per plate (controls' mean score and Z'-factor, hits, sites missing files) with the plates
that look wrong flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from psygnal import Signal

from napari_gandl import columns as cols
from napari_gandl.tables import control_labels
from napari_gandl.viewmodels.navigator import SiteFinder
from napari_gandl.viewmodels.plate_map import Colouring, PlateMap, well_position

#: the keys the dock passes on, by name
KEYS = ("left", "right", "up", "down", "enter", "escape", "pageup", "pagedown")
_MOVES = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}


class PlateOverview:
    """Overview or one plate, the selected plate and well, and the wells a search found."""

    changed = Signal()  # zoom, selection or search matches changed

    def __init__(self, plate_map: PlateMap):
        self.map = plate_map
        n = len(plate_map.plates)
        #: the plate shown well by well, or None for the overview (a one-plate screen opens on its plate)
        self.zoomed: int | None = 0 if n == 1 else None
        self.plate = 0                          # the selected plate
        self.well: int | None = None            # the selected well (an index into ``map.wells``)
        self.matched_wells = np.zeros(0, np.int64)   # the wells the search found, in slider order
        self.search_text = ""
        self._finder: SiteFinder | None = None
        experiments = np.asarray(plate_map.plate_experiment, dtype=object)
        starts = np.flatnonzero(np.r_[True, experiments[1:] != experiments[:-1]])
        #: ``(experiment, plates)`` in slider order: the overview's sections
        self.sections = [(str(experiments[s]), np.arange(s, e)) for s, e in zip(starts, [*starts[1:], n])]

    # ---------------------------------------------------------------- layout
    def overview_rows(self, per_line: int) -> list[tuple[str, object]]:
        """The overview, top to bottom, with ``per_line`` plates to a line: ``("title", experiment)``
        before each experiment's plates, then ``("plates", [plate, ...])`` lines."""
        rows: list[tuple[str, object]] = []
        for experiment, plates in self.sections:
            if experiment:
                rows.append(("title", experiment))
            rows += [("plates", [int(p) for p in plates[i:i + per_line]]) for i in range(0, len(plates), max(1, per_line))]
        return rows

    def short_name(self, plate: int) -> str:
        """The name under a plate's heat map, its experiment being the section's title: "12"."""
        return self.map.plate_number[plate] or self.map.plates[plate]

    # ---------------------------------------------------------------- selection
    def open(self, plate: int) -> None:
        """Show one plate's wells. The selected well stays at its grid position (B02 on plate 3 ->
        B02 on plate 4) when the plate has a well there, and is the plate's first well otherwise."""
        plate = int(plate)
        if not 0 <= plate < len(self.map.plates):
            raise IndexError(f"plate {plate} of {len(self.map.plates)}")
        self.zoomed = self.plate = plate
        self.well = self._well_on(plate)
        self.changed.emit()

    def _well_on(self, plate: int) -> int | None:
        """The selected well's position on ``plate``, else the plate's first well."""
        if self.well is not None:
            if int(self.map.wells.at[self.well, "plate_index"]) == plate:
                return self.well
            same = self.map.well_at(plate, *(int(self.map.wells.at[self.well, k]) for k in ("row", "col")))
            if same is not None:
                return same
        wells = self.map.wells_of(plate)
        return int(wells[0]) if len(wells) else None

    def back(self) -> None:
        """Back to the overview (a one-plate screen has none)."""
        if len(self.map.plates) > 1 and self.zoomed is not None:
            self.zoomed = None
            self.changed.emit()

    def select_well(self, well: int) -> None:
        self.well, self.plate = int(well), int(self.map.wells.at[int(well), "plate_index"])
        if self.zoomed is not None:
            self.zoomed = self.plate
        self.changed.emit()

    def follow(self, site: int) -> None:
        """The site shown moved: select its well (and show its plate, when a plate is shown)."""
        well = self.map.well_of_site(site)
        if well is not None and well != self.well:
            self.select_well(well)

    def key(self, key: str, per_line: int = 1) -> int | None:
        """Act on a key (a name of :data:`KEYS`): arrows move the selected plate in the overview
        (``per_line`` plates to a line) or the selected well on a plate; Enter opens the plate, or
        on a plate returns the selected well to go to; Escape goes back to the overview; Page
        Up / Page Down show the previous / next plate."""
        if key not in KEYS:
            raise ValueError(f"unknown key {key!r}; one of {', '.join(KEYS)}")
        n = len(self.map.plates)
        if key == "escape":
            self.back()
        elif key in ("pageup", "pagedown"):
            self.open((self.plate + (1 if key == "pagedown" else -1)) % n)
        elif key == "enter":
            if self.zoomed is None:
                self.open(self.plate)
            else:
                return self.well
        elif key in _MOVES and self.zoomed is None:
            self._move_plate(*_MOVES[key], per_line)
        elif key in _MOVES and self.well is not None:
            self._move_well(*_MOVES[key])
        return None

    def _move_plate(self, down: int, right: int, per_line: int) -> None:
        lines = [plates for kind, plates in self.overview_rows(per_line) if kind == "plates"]
        line = next(i for i, plates in enumerate(lines) if self.plate in plates)
        column = lines[line].index(self.plate)
        if right:
            self.plate = int(np.clip(self.plate + right, 0, len(self.map.plates) - 1))
        else:
            line = int(np.clip(line + down, 0, len(lines) - 1))
            self.plate = lines[line][min(column, len(lines[line]) - 1)]
        self.changed.emit()

    def _move_well(self, down: int, right: int) -> None:
        """The next well in that direction on the plate's grid (positions without a well are skipped)."""
        grid = self.map.grid_well(self.zoomed)
        row, col = (int(self.map.wells.at[self.well, k]) for k in ("row", "col"))
        while True:
            row, col = row + down, col + right
            if not (0 <= row < grid.shape[0] and 0 <= col < grid.shape[1]):
                return
            if grid[row, col] >= 0:
                self.select_well(int(grid[row, col]))
                return

    # ---------------------------------------------------------------- search
    def search(self, text: str) -> np.ndarray:
        """Find the wells whose sites match ``text`` and announce them; returns them in slider order.

        A word that is a well name ("B2", "b02") matches that grid position on every plate; the
        other words must all be in the site's id or compound (:meth:`SiteFinder.search`): "B02"
        is well B02 of every plate, "remdesivir" every well of the compound, "remdesivir VERO-1"
        those of one experiment, "HRCE-1_12_B02" one well."""
        words = str(text).split()
        positions = {well_position(w) for w in words} - {None}
        rest = [w for w in words if well_position(w) is None]
        wells = self.map.wells
        hit = np.ones(len(wells), bool) if words else np.zeros(len(wells), bool)
        if positions:
            width = self.map.shape[1]
            at = wells["row"].to_numpy() * width + wells["col"].to_numpy()
            hit &= np.isin(at, [r * width + c for r, c in positions if c < width])
        if rest:
            if self._finder is None:
                self._finder = SiteFinder(self.map.table.frame)
            found = self.map.site_well[self._finder.search(" ".join(rest)).sites]
            in_text = np.zeros(len(wells), bool)
            in_text[found[found >= 0]] = True
            hit &= in_text
        matched = np.flatnonzero(hit)
        first_site = wells["first_site"].to_numpy()
        self.matched_wells = matched[np.argsort(first_site[matched], kind="stable")]
        self.search_text = str(text)
        self.changed.emit()
        return self.matched_wells

    def next_match(self, step: int = 1) -> int | None:
        """Select the next (``step`` 1) or previous (-1) matched well after the selected one, in
        slider order and round the screen, and show its plate; returns it (None: no matches)."""
        matched = self.matched_wells
        if not len(matched):
            return None
        if self.well is not None and self.well in matched:
            i = (int(np.flatnonzero(matched == self.well)[0]) + step) % len(matched)
        else:
            first_site = self.map.wells["first_site"].to_numpy()
            here = first_site[self.well] if self.well is not None else -1
            i = int(np.searchsorted(first_site[matched], here, side="right" if step > 0 else "left"))
            i = (i if step > 0 else i - 1) % len(matched)
        well = int(matched[i])
        self.well = well
        self.open(int(self.map.wells.at[well, "plate_index"]))
        return well

    def matches_per_plate(self) -> np.ndarray:
        """How many matched wells each plate has."""
        plates = self.map.wells["plate_index"].to_numpy()[self.matched_wells]
        return np.bincount(plates, minlength=len(self.map.plates))


def plate_summary(plate_map: PlateMap, colouring: Colouring | None = None) -> pd.DataFrame:
    """One row per plate: its wells, sites missing files, hit wells (when the site table has a
    ``hit`` column) and, for a score (the colouring's column when it is continuous, otherwise
    the first SVM or E2 score column), the mean of its healthy (C+) and infected (C-) control
    wells and their Z'-factor, ``1 - 3 (sd+ + sd-) / |mean+ - mean-|``, the screening field's
    measure of how well a plate's controls separate (below 0: they overlap). ``flag`` says why a
    plate looks wrong ("" when it does not)."""
    frame = plate_map.table.frame
    wells = plate_map.wells
    n_plates = len(plate_map.plates)
    plate_of = wells["plate_index"].to_numpy()
    site_well = plate_map.site_well
    on_plate = site_well >= 0
    summary = pd.DataFrame({"plate": plate_map.plates,
                            "wells": np.bincount(plate_of, minlength=n_plates)})
    if cols.PROBLEM in frame.columns:
        bad = on_plate & (frame[cols.PROBLEM].fillna("").astype(str).to_numpy() != "")
        summary["sites missing files"] = np.bincount(plate_of[site_well[bad]], minlength=n_plates)
    if cols.HIT in frame.columns:
        hit = on_plate & frame[cols.HIT].astype("boolean").fillna(False).to_numpy(bool)
        hit_wells = np.unique(site_well[hit])
        summary["hit wells"] = np.bincount(plate_of[hit_wells], minlength=n_plates)
    score = colouring.column if colouring is not None and colouring.kind == "continuous" else next(
        (c for c in frame.columns if cols.is_score(c)), None)
    if score is not None and cols.CONDITION in frame.columns:
        means, counts = plate_map.well_means(score)
        control = control_labels(frame.iloc[wells["first_site"].to_numpy()])
        sd = {}
        for label in ("C+", "C-"):
            use = np.flatnonzero((control == label) & (counts > 0))
            n = np.bincount(plate_of[use], minlength=n_plates)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.bincount(plate_of[use], weights=means[use], minlength=n_plates) / n
                squares = np.bincount(plate_of[use], weights=(means[use] - mean[plate_of[use]]) ** 2,
                                      minlength=n_plates)
                sd[label] = np.where(n >= 2, np.sqrt(squares / np.maximum(n - 1, 1)), np.nan)  # of the wells
            summary[f"{label} mean"] = mean
            summary[f"{label} wells"] = n
        with np.errstate(invalid="ignore", divide="ignore"):
            summary["Z'"] = 1 - 3 * (sd["C+"] + sd["C-"]) / np.abs(summary["C+ mean"] - summary["C- mean"])
        summary.attrs["score"] = score
    flags = [[] for _ in range(n_plates)]
    for p in np.flatnonzero(summary["Z'"].to_numpy() < 0) if "Z'" in summary else []:
        flags[p].append("Z' < 0: controls overlap")
    for p in np.flatnonzero(summary["sites missing files"].to_numpy() > 0) if "sites missing files" in summary else []:
        flags[p].append("files missing")
    summary["flag"] = ["; ".join(f) for f in flags]
    return summary
