"""Similar-sites dock: query by example in the embedding.

*Build index* reads the chosen embedding with the chosen normalisation (as
the other analysis docks do) and builds scikit-learn ``NearestNeighbors``
(cosine) in a worker. *Find similar* (also in a worker: a query takes
0.1 s at 300,000 sites on 2 cores, reading the sites' images more) takes the current site, or the
sites of a selection column (a lasso in the perturbation plot), and shows its
k nearest sites, within its plate or across plates, as a montage layer beside
the plate (all stains, the reader's colours, labelled with well and
condition) and in a table whose rows jump to each site. Both jobs are the
view-model's (``viewmodels.similar.run`` and ``find_job``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, PushButton, SpinBox

from napari_gandl import columns as cols
from napari_gandl.viewmodels import similar as model
from napari_gandl.viewmodels.montage import selection_columns, tile_label

from napari_gandl._widgets._analysis import AnalysisWidget, add_native
from napari_gandl._viewer import show_site
from napari_gandl._widgets.common import start_worker
from napari_gandl._widgets.layers import show_montage

if TYPE_CHECKING:
    import napari

CURRENT = "the current site"
ACROSS, WITHIN = "across plates", "within its plate"
LAYER_NAME = "similar sites"


class SimilarSitesWidget(AnalysisWidget):
    kind = "similar"
    title = "Similar sites"
    run_text = "Build index"

    def __init__(self, viewer: napari.viewer.Viewer):
        from qtpy.QtWidgets import QAbstractItemView, QTableWidget

        self.query_from = ComboBox(label="query", choices=self._query_choices, value=CURRENT,
                                   tooltip="the site shown, or the sites of a selection column (a lasso in the "
                                           "perturbation plot writes 'selected')")
        self.k = SpinBox(label="sites to find", value=12, min=1, max=96)
        self.scope = ComboBox(label="search", choices=[ACROSS, WITHIN], value=ACROSS)
        self.find_button = PushButton(text="Find similar")
        self.find_button.enabled = False
        super().__init__(viewer, [self.query_from, self.k, self.scope])
        self.insert(len(self) - 2, self.find_button)
        self.results = QTableWidget(0, 5)
        self.results.setHorizontalHeaderLabels(["#", "site", "cell type", "well · condition", "cosine distance"])
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.verticalHeader().setVisible(False)
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.setMinimumHeight(160)
        self.results.cellClicked.connect(self._row_clicked)
        add_native(self, self.results)
        self.found = None
        self.find_button.changed.connect(self.find)
        self._refresh_queries()
        self.restore()

    # ---------------------------------------------------------------- index (worker)
    def compute(self, table, params, report) -> dict:
        return model.run(table, params, report)

    def show_record(self, rec: dict) -> None:
        self.find_button.enabled = True
        self.status.value = (f"index of {len(rec['index'])} sites ({rec['label']}, "
                             f"{rec['embedding']['normalisation']}): press Find similar")

    def clear_record(self) -> None:
        self.find_button.enabled = False
        self.results.setRowCount(0)

    def on_table_changed(self, names: tuple) -> None:
        self._refresh_queries()

    def on_layers_changed(self) -> None:
        self._refresh_queries()

    def _query_choices(self, *_) -> list[str]:
        table = getattr(self, "sites", None)
        return [CURRENT] + (selection_columns(table.frame) if table is not None else [])

    def _refresh_queries(self) -> None:
        self.query_from.reset_choices()

    # ---------------------------------------------------------------- query
    def find(self, *_):
        """Search the nearest sites and read their images in a worker; then show the montage and the table."""
        from napari.utils.notifications import show_error

        if self.record is None:
            return None
        index, table = self.record["index"], self.sites
        column = None if self.query_from.value == CURRENT else self.query_from.value
        try:
            query, what = model.query_sites(table, index, column)
        except ValueError as exc:
            self.status.value = str(exc)
            show_error(f"{self.title}: {exc}")
            return None
        scope = self.scope.value

        def shown(result):
            self.found, montage = result
            show_montage(self._viewer, table, montage, LAYER_NAME)
            self._fill_table(table.frame)
            self.status.value = f"{len(self.found)} sites nearest to {what} ({scope}); click a row to go there"

        def failed(exc):
            self.status.value = f"failed: {exc}"

        self.worker = start_worker(model.find_job, index, table, query, what, self.k.value, scope == WITHIN,
                                   buttons=[self.find_button, self.run_button], title=self.title,
                                   on_yielded=lambda step: setattr(self.status, "value", step[2]),
                                   on_returned=shown, on_errored=failed)
        return self.worker

    def _fill_table(self, frame) -> None:
        from qtpy.QtWidgets import QTableWidgetItem

        self.results.setRowCount(len(self.found))
        for i, (site, distance) in enumerate(zip(self.found["site"], self.found["distance"])):
            cell_type = frame[cols.CELL_TYPE].iloc[int(site)] if cols.CELL_TYPE in frame.columns else ""
            values = [str(i + 1), str(frame[cols.SITE_ID].iloc[int(site)]), str(cell_type),
                      tile_label(frame, int(site)), f"{distance:.4f}"]
            for k, value in enumerate(values):
                self.results.setItem(i, k, QTableWidgetItem(value))
        self.results.resizeColumnsToContents()

    def _row_clicked(self, row: int, column: int) -> None:
        if self.found is not None and 0 <= row < len(self.found):
            show_site(self._viewer, int(self.found["site"].iloc[row]))
