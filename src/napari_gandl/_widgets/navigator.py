"""Site navigator: choose experiment, plate, well and site, or find a site by typing; follows the
shown site.

A thin view over :class:`~napari_gandl.viewmodels.navigator.SiteFinder`. Each box lists only
what lies under the boxes above it (at most a plate's 384 wells, whatever the screen's size),
and accepts typing with completion of any part of a name. The *find* box completes site ids
and compounds from the whole screen (the first matches, with what each site is); Enter goes
to the first match.

The boxes' choices are functions of the site table, not lists given once: napari refreshes a
dock's choices (``reset_choices``) whenever a layer is added or removed, and a box given a fixed
list was emptied by it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from magicgui.widgets import ComboBox, Container, Label, LineEdit

from napari_gandl import columns as cols
from napari_gandl.viewmodels.navigator import LEVELS, SiteFinder

from napari_gandl._viewer import site_table

if TYPE_CHECKING:
    import napari

SUMMARY_COLUMNS = ("cell_type", "disease_condition", "treatment", "treatment_conc", "problem")
SHOWN_MATCHES = 50  # completions listed under the find box (the count says how many match)


class SiteNavigator(Container):
    """Jump to a site by experiment, plate, well and site, or by searching; shows what the site is.

    Follows the site table's current site both ways: moving the slider updates
    the choices, choosing a well moves the slider.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self._table = None
        self.finder: SiteFinder | None = None
        self._syncing = False
        self._matches: dict[str, int] = {}
        self.find = LineEdit(label="find", tooltip="any part of a site id (HRCE-1_12_B02_3) or of a compound name; "
                                                   "words narrow each other ('B02 12'); Enter goes to the first match")
        self.matches = Label(value="")
        self.boxes = {level: ComboBox(label=level, choices=lambda _, level=level: self._choices(level))
                      for level in LEVELS}
        self.experiment, self.plate, self.well, self.site = (self.boxes[level] for level in LEVELS)
        self.summary = Label(value="open a plate folder")
        super().__init__(widgets=[self.find, self.matches, *self.boxes.values(), self.summary])
        for level, box in self.boxes.items():
            _typeable(box.native)
            box.changed.connect(lambda _, level=level: self._narrowed(level))
        self._completer = _completer(self.find.native, self._go_to_match)
        self.find.native.textEdited.connect(self._search)
        self.find.native.returnPressed.connect(lambda: self._go_to_match(None))
        viewer.layers.events.inserted.connect(self._reload)
        viewer.layers.events.removed.connect(self._reload)
        self._reload()

    # ---------------------------------------------------------------- the plate's site table
    def _reload(self, event=None) -> None:
        table = site_table(self._viewer)
        if table is not self._table:
            if self._table is not None:
                self._table.current_changed.disconnect(self._follow_slider)
            self._table = table
            self.finder = SiteFinder(table.frame) if table is not None else None
            if table is not None:
                table.current_changed.connect(self._follow_slider)
        if table is None:
            self.summary.value = "open a plate folder"
            self.reset_choices()
            return
        self._follow_slider()

    def _choices(self, level: str) -> list[str]:
        if self.finder is None:
            return []
        chosen = {name: self.boxes[name].value for name in LEVELS[: LEVELS.index(level)] if name in self.boxes}
        return self.finder.choices(level, chosen)

    def _show(self, key: dict) -> None:
        """Fill the boxes with ``key``'s choices, coarsest first (each box's choices depend on those above)."""
        self._syncing = True
        try:
            for level, box in self.boxes.items():
                box.reset_choices()
                if key.get(level) is not None:
                    box.value = key[level]
        finally:
            self._syncing = False

    def _follow_slider(self, event=None) -> None:
        if self.finder is None or self._syncing or not len(self.finder):
            return
        index = self._table.current
        self._show(self.finder.key_of(index))
        self._show_summary(index)

    def _narrowed(self, changed: str) -> None:
        """A choice changed: keep the finer choices valid, then move the slider."""
        if self.finder is None or self._syncing:
            return
        chosen = self.finder.narrowed({level: box.value for level, box in self.boxes.items()}, changed)
        self._show(chosen)
        self._go(self.finder.site_of(chosen))

    def _go(self, index: int | None) -> None:
        if index is None:
            return
        self._table.current = index
        self._show_summary(index)

    # ---------------------------------------------------------------- search
    def _search(self, text: str) -> None:
        """List the first matches of what was typed under the find box."""
        if self.finder is None:
            return
        found = self.finder.search(text)
        self._matches = {self._table.describe(s): int(s) for s in found.sites[:SHOWN_MATCHES]}
        self._completer.model().setStringList(list(self._matches))
        if self._matches and self.find.native.hasFocus():
            self._completer.complete()
        self.matches.value = (f"{len(found):,} site{'s' if len(found) != 1 else ''} match" if text.strip() else "")

    def _go_to_match(self, label: str | None) -> None:
        """Go to the chosen completion, or (Enter) to the first match."""
        if self.finder is None:
            return
        if label is None or label not in self._matches:
            self._search(self.find.value)
            label = next(iter(self._matches), None)
        if label is not None:
            self._go(self._matches[label])

    def _show_summary(self, index: int) -> None:
        row = self._table.row(index)
        parts = [str(row[cols.SITE_ID])]
        parts += [f"{c}: {row[c]}" for c in SUMMARY_COLUMNS if c in row and pd.notna(row[c]) and row[c] != ""]
        self.summary.value = "\n".join(parts)


def _typeable(combo) -> None:
    """Let a combo box take typing, completing any part of its entries."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QComboBox, QCompleter

    combo.setEditable(True)
    combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    combo.completer().setFilterMode(Qt.MatchFlag.MatchContains)
    combo.completer().setCompletionMode(QCompleter.CompletionMode.PopupCompletion)


def _completer(line_edit, on_chosen):
    """A completion list under ``line_edit`` that shows, as they are, the strings the caller puts
    in its ``model()``; choosing one calls ``on_chosen(text)``."""
    from qtpy.QtCore import QStringListModel
    from qtpy.QtWidgets import QCompleter

    completer = QCompleter(line_edit)
    completer.setModel(QStringListModel(completer))  # owned by the completer
    completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
    completer.setMaxVisibleItems(12)
    completer.activated[str].connect(on_chosen)
    line_edit.setCompleter(completer)
    return completer
