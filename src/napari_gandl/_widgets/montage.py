"""Montage dock: many sites side by side as one labelled grid layer, exported as PNG or TIFF.

Which sites: a selection column (a lasso's ``selected``, dose-response
``hit``), a compound's doses (one row per dose), or random untreated controls
per condition. The sites are read in a worker
(:func:`~napari_gandl.viewmodels.montage.build_montage`); the grid appears
beside the plate, one layer per stain in the reader's colours, with a label on
each tile.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, SpinBox

from napari_gandl.viewmodels.montage import (
    CONTROLS, MODES, SELECTION, build_montage, choose_sites, compounds, export_montage, selection_columns,
)

from napari_gandl._viewer import site_table
from napari_gandl._widgets.common import start_worker
from napari_gandl._widgets.layers import montage_colors_and_limits, show_montage

if TYPE_CHECKING:
    import napari

LAYER_NAME = "montage"


class MontageWidget(Container):
    """Build a montage layer from a set of sites; export it."""

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.mode = ComboBox(label="sites", choices=list(MODES), value=CONTROLS)
        self.which = ComboBox(label="which", choices=self._which_choices,
                              tooltip="the selection column, or the compound")
        self.per_group = SpinBox(label="sites per row group", value=4, min=1, max=16,
                                 tooltip="sites per dose / per condition")
        self.seed = SpinBox(label="random seed", value=0, min=0, max=10**6)
        self.build_button = PushButton(text="Build montage")
        self.export_path = FileEdit(label="export to", mode="w", filter="*.png *.tif *.tiff", value=None,
                                    nullable=True)
        self.export_button = PushButton(text="Export PNG / TIFF")
        self.status = Label(value="")
        super().__init__(widgets=[self.mode, self.which, self.per_group, self.seed, self.build_button,
                                  self.export_path, self.export_button, self.status])
        self.montage = None
        self.worker = None
        self.mode.changed.connect(self._refresh_choices)
        self.build_button.changed.connect(self.build)
        self.export_button.changed.connect(self._export_clicked)
        self._table = None
        viewer.layers.events.inserted.connect(self._bind_table)
        viewer.layers.events.removed.connect(self._bind_table)
        self._bind_table()

    def _bind_table(self, *_) -> None:
        table = site_table(self._viewer)
        if table is self._table:
            return
        if self._table is not None:
            self._table.changed.disconnect(self._refresh_choices)
        self._table = table
        if table is not None:
            table.changed.connect(self._refresh_choices)
        self._refresh_choices()

    def _which_choices(self, *_) -> list[str]:
        table = getattr(self, "_table", None)
        if table is None or self.mode.value == CONTROLS:
            return []
        return selection_columns(table.frame) if self.mode.value == SELECTION else compounds(table.frame)

    def _refresh_choices(self, *_) -> None:
        mode = self.mode.value
        self.which.reset_choices()
        self.which.visible = mode != CONTROLS
        self.seed.visible = mode == CONTROLS
        self.per_group.visible = mode != SELECTION

    def build(self, *_):
        """Choose the sites, read them in a worker, show the grid beside the plate."""
        table = self._table
        if table is None:
            self.status.value = "open a plate first"
            return None
        try:
            groups = choose_sites(table.frame, self.mode.value, self.which.value, self.per_group.value,
                                  self.seed.value)
        except ValueError as exc:
            self.status.value = str(exc)
            return None
        n = sum(len(g.sites) for g in groups)
        self.status.value = f"reading {n} sites…"

        def shown(montage):
            self.montage = montage
            show_montage(self._viewer, table, montage, LAYER_NAME, where="below")
            self.status.value = (f"{len(montage.sites)} sites in {len(groups)} row group(s)"
                                 + (f", shrunk {montage.downsample}x" if montage.downsample > 1 else ""))

        self.worker = start_worker(build_montage, table.plate, groups, table.frame, buttons=[self.build_button],
                                   title="Montage", on_returned=shown)
        return self.worker

    def export(self, path) -> Path:
        """Write the montage shown: ``.png`` colour composite with labels, ``.tif`` one page per stain."""
        if self.montage is None:
            raise ValueError("build a montage first")
        colors, limits = montage_colors_and_limits(self._viewer, self._table)
        return export_montage(self.montage, path, colors, limits)

    def _export_clicked(self, *_) -> None:
        if self.export_path.value is None or not str(self.export_path.value).strip():
            self.status.value = "choose a .png or .tif file to export to"
            return
        try:
            path = self.export(self.export_path.value)
        except (ValueError, OSError) as exc:
            self.status.value = f"export: {exc}"
            return
        self.status.value = f"exported {path}"
