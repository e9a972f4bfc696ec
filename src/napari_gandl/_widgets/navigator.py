"""Site navigator: choose experiment, plate, well and site; follows the shown site."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from magicgui.widgets import ComboBox, Container, Label

from napari_gandl._viewer import site_table

if TYPE_CHECKING:
    import napari

SUMMARY_COLUMNS = ("cell_type", "disease_condition", "treatment", "treatment_conc", "problem")


class SiteNavigator(Container):
    """Jump to a site by experiment, plate, well and site; shows what the site is.

    Follows the site table's current site both ways: moving the slider updates
    the choices, choosing a well moves the slider.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self._table = None
        self._sites: pd.DataFrame | None = None
        self._syncing = False
        self.experiment = ComboBox(label="experiment", choices=[])
        self.plate = ComboBox(label="plate", choices=[])
        self.well = ComboBox(label="well", choices=[])
        self.site = ComboBox(label="site", choices=[])
        self.summary = Label(value="open a plate folder")
        super().__init__(widgets=[self.experiment, self.plate, self.well, self.site, self.summary])
        self.experiment.changed.connect(lambda: self._narrowed("experiment"))
        self.plate.changed.connect(lambda: self._narrowed("plate"))
        self.well.changed.connect(lambda: self._narrowed("well"))
        self.site.changed.connect(lambda: self._narrowed("site"))
        viewer.layers.events.inserted.connect(self._reload)
        viewer.layers.events.removed.connect(self._reload)
        self._reload()

    def _reload(self, event=None) -> None:
        table = site_table(self._viewer)
        if table is not self._table:
            if self._table is not None:
                self._table.current_changed.disconnect(self._follow_slider)
            self._table = table
            if table is not None:
                table.current_changed.connect(self._follow_slider)
        if table is None:
            self._sites = None
            self.summary.value = "open a plate folder"
            return
        self._sites = table.frame
        self._follow_slider()

    def _subset(self, upto: str) -> pd.DataFrame:
        sites = self._sites
        for name in ("experiment", "plate", "well", "site"):
            if name == upto:
                break
            sites = sites[sites[name] == getattr(self, name).value]
        return sites

    def _set_choices(self, row: pd.Series) -> None:
        for name in ("experiment", "plate", "well", "site"):
            combo = getattr(self, name)
            combo.choices = list(dict.fromkeys(self._subset(name)[name]))
            combo.value = row[name]

    def _follow_slider(self, event=None) -> None:
        if self._sites is None or self._syncing or not len(self._sites):
            return
        index = self._table.current
        self._syncing = True
        try:
            self._set_choices(self._sites.iloc[index])
        finally:
            self._syncing = False
        self._show_summary(index)

    def _narrowed(self, changed: str) -> None:
        """A choice changed: keep the finer choices valid, then move the slider."""
        if self._sites is None or self._syncing:
            return
        self._syncing = True
        try:
            names = ["experiment", "plate", "well", "site"]
            for name in names[names.index(changed) + 1 :]:
                combo = getattr(self, name)
                options = list(dict.fromkeys(self._subset(name)[name]))
                combo.choices = options
                if combo.value not in options:
                    combo.value = options[0]
            match = self._subset("none")
        finally:
            self._syncing = False
        if len(match):
            index = int(match.index[0])
            self._table.current = index
            self._show_summary(index)

    def _show_summary(self, index: int) -> None:
        row = self._sites.iloc[index]
        parts = [str(row["site_id"])]
        parts += [f"{c}: {row[c]}" for c in SUMMARY_COLUMNS if c in row and pd.notna(row[c]) and row[c] != ""]
        self.summary.value = "\n".join(parts)
