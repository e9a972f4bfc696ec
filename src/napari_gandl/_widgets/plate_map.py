"""Plate map dock: one well grid per plate, coloured by any site-table column.

A thin view over :class:`~napari_gandl.viewmodels.plate_map.PlateMap`: the
wells are painted as one small picture per plate (one pixel per well, scaled
up without smoothing), so recolouring thousands of wells is a single image
draw. Hovering shows the well's metadata; clicking moves the viewer to the
well's first site and the ◀ / ▶ buttons step through its sites; the well of
the site shown is outlined and follows the slider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, Label

from napari_gandl import columns as cols
from napari_gandl.viewmodels.plate_map import PlateMap

from napari_gandl._widgets._analysis import SiteStepper, add_native
from napari_gandl._viewer import site_table

if TYPE_CHECKING:
    import napari


def _canvas_class():
    from qtpy.QtCore import QPoint, QRectF, Qt
    from qtpy.QtGui import QColor, QImage, QLinearGradient, QPainter, QPen
    from qtpy.QtWidgets import QSizePolicy, QToolTip, QWidget

    class PlateCanvas(QWidget):
        """Paints the plates' well grids and the legend; reports hover and clicks."""

        MARGIN, LABEL, TITLE, LEGEND_ROW = 4, 16, 16, 16

        def __init__(self, on_click, on_hover):
            super().__init__()
            self.setMouseTracking(True)
            self.setMinimumSize(260, 200)
            self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            self._on_click, self._on_hover = on_click, on_hover
            self.plate_map: PlateMap | None = None
            self.colouring = None
            self.images: list = []
            self.current_well: int | None = None
            self.rects: list = []  # per plate: QRectF of its wells, cell size

        def set_colouring(self, plate_map: PlateMap | None, colouring) -> None:
            self.plate_map, self.colouring = plate_map, colouring
            self.images = []
            if plate_map is not None and colouring is not None:
                for p in range(len(plate_map.plates)):
                    pixels = plate_map.plate_image(colouring, p)
                    h, w = pixels.shape[:2]
                    # QImage borrows the buffer: keep the array with it
                    image = QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
                    self.images.append((image, pixels))
            self.update()

        # ------------------------------------------------------------ geometry
        def _legend_height(self) -> int:
            if self.colouring is None:
                return 0
            if self.colouring.kind == "continuous":
                return self.LEGEND_ROW * 2
            return self.LEGEND_ROW * ((len(self.colouring.legend) + 1) // 2) + 4

        def _layout(self) -> None:
            pm = self.plate_map
            self.rects = []
            if pm is None:
                return
            rows, columns = pm.shape
            n = len(pm.plates)
            width = self.width() - 2 * self.MARGIN
            height = self.height() - 2 * self.MARGIN - self._legend_height()
            best = None
            for per_line in range(1, n + 1):
                lines = -(-n // per_line)
                cell = min((width / per_line - self.LABEL - self.MARGIN) / columns,
                           (height / lines - self.LABEL - self.TITLE - self.MARGIN) / rows)
                if best is None or cell > best[0]:
                    best = (cell, per_line)
            cell, per_line = max(best[0], 1.0), best[1]
            block_w = self.LABEL + columns * cell + self.MARGIN
            block_h = self.TITLE + self.LABEL + rows * cell + self.MARGIN
            for p in range(n):
                line, k = divmod(p, per_line)
                x = self.MARGIN + k * block_w + self.LABEL
                y = self.MARGIN + line * block_h + self.TITLE + self.LABEL
                self.rects.append((QRectF(x, y, columns * cell, rows * cell), cell))
            self._legend_top = self.MARGIN + (-(-n // per_line)) * block_h

        def hit(self, pos) -> tuple[int, int, int] | None:
            for p, (rect, cell) in enumerate(self.rects):
                if rect.contains(float(pos.x()), float(pos.y())):
                    return p, int((pos.y() - rect.top()) // cell), int((pos.x() - rect.left()) // cell)
            return None

        def well_rect(self, well: int) -> QRectF | None:
            info = self.plate_map.wells.iloc[well]
            rect, cell = self.rects[int(info["plate_index"])]
            return QRectF(rect.left() + int(info["col"]) * cell, rect.top() + int(info["row"]) * cell, cell, cell)

        def well_centre(self, well: int) -> QPoint:
            self._layout()
            return self.well_rect(well).center().toPoint()

        # ------------------------------------------------------------ painting
        def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
            painter = QPainter(self)
            painter.fillRect(self.rect(), self.palette().window())
            pm = self.plate_map
            if pm is None or not self.images:
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "open a plate with wells")
                return
            self._layout()
            text = self.palette().windowText().color()
            painter.setPen(text)
            font = painter.font()
            font.setPointSizeF(8)
            painter.setFont(font)
            rows, columns = pm.shape
            for p, (rect, cell) in enumerate(self.rects):
                painter.drawText(QRectF(rect.left(), rect.top() - self.LABEL - self.TITLE, rect.width(), self.TITLE),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, pm.plates[p])
                painter.drawImage(rect, self.images[p][0])
                step_r = max(1, int(12 // cell) + 1)
                for r in range(0, rows, step_r):
                    painter.drawText(QRectF(rect.left() - self.LABEL, rect.top() + r * cell, self.LABEL - 2, cell),
                                     Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, pm.row_label(r))
                step_c = max(1, int(18 // cell) + 1)
                for c in range(0, columns, step_c):
                    painter.drawText(QRectF(rect.left() + c * cell - 8, rect.top() - self.LABEL, cell + 16,
                                            self.LABEL), Qt.AlignmentFlag.AlignCenter, str(c + 1))
            if self.current_well is not None:
                painter.setPen(QPen(QColor("white"), 2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(self.well_rect(self.current_well).adjusted(-1, -1, 1, 1))
                painter.setPen(text)
            self._paint_legend(painter)

        def _paint_legend(self, painter) -> None:
            colouring = self.colouring
            top, left = self._legend_top, self.MARGIN
            width = self.width() - 2 * self.MARGIN
            if colouring.kind == "continuous":
                bar = QRectF(left + 70, top + 3, max(20, width - 140), self.LEGEND_ROW - 6)
                gradient = QLinearGradient(bar.topLeft(), bar.topRight())
                from matplotlib import colormaps

                cmap = colormaps[colouring.colormap]
                for t in (0.0, 0.25, 0.5, 0.75, 1.0):
                    gradient.setColorAt(t, QColor.fromRgbF(*cmap(t)))
                painter.fillRect(bar, gradient)
                painter.drawText(QRectF(left, top, 66, self.LEGEND_ROW), Qt.AlignmentFlag.AlignRight,
                                 colouring.legend[0][0])
                painter.drawText(QRectF(bar.right() + 4, top, 66, self.LEGEND_ROW), Qt.AlignmentFlag.AlignLeft,
                                 colouring.legend[1][0])
                painter.drawText(QRectF(left, top + self.LEGEND_ROW, width, self.LEGEND_ROW),
                                 Qt.AlignmentFlag.AlignCenter, f"{colouring.column} (well mean)")
                return
            half = width / 2
            for i, (label, rgba) in enumerate(colouring.legend):
                r, k = divmod(i, 2)
                x, y = left + k * half, top + r * self.LEGEND_ROW
                if rgba is not None:
                    painter.fillRect(QRectF(x, y + 3, 10, 10), QColor.fromRgbF(*rgba))
                painter.drawText(QRectF(x + 14, y, half - 16, self.LEGEND_ROW),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)

        # ------------------------------------------------------------ mouse
        def mouseMoveEvent(self, event) -> None:  # noqa: N802
            where = self.hit(event.position() if hasattr(event, "position") else event.pos())
            text = self._on_hover(where)
            global_pos = event.globalPosition().toPoint() if hasattr(event, "globalPosition") else event.globalPos()
            if text:
                QToolTip.showText(global_pos, text, self)
            else:
                QToolTip.hideText()

        def mousePressEvent(self, event) -> None:  # noqa: N802
            if event.button() == Qt.MouseButton.LeftButton:
                self._on_click(self.hit(event.position() if hasattr(event, "position") else event.pos()))

    return PlateCanvas


class PlateMapWidget(Container):
    """Well grids of every plate, coloured by a site-table column; click a well to go there."""

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.table = None
        self.plate_map: PlateMap | None = None
        self.colouring = None
        self.colour_by = ComboBox(label="colour wells by", choices=self._colour_choices, nullable=True,
                                  tooltip="any site-table column: metadata (condition, compound, dose, cell type) "
                                          "or a dock's result (SVM score, E2 score, hit, selection)")
        self.stepper = SiteStepper(viewer, what="sites of the well")
        self.status = Label(value="")
        super().__init__(widgets=[self.colour_by], labels=True)
        self.canvas = _canvas_class()(self.click, self.hover_text)
        add_native(self, self.canvas)
        add_native(self, self.stepper)
        add_native(self, self.status)
        self.colour_by.changed.connect(self.recolour)
        viewer.layers.events.inserted.connect(self._bind_table)
        viewer.layers.events.removed.connect(self._bind_table)
        self._bind_table()

    # ---------------------------------------------------------------- the plate's site table
    def _bind_table(self, *_) -> None:
        table = site_table(self._viewer)
        if table is self.table:
            return
        if self.table is not None:
            self.table.changed.disconnect(self._table_changed)
            self.table.current_changed.disconnect(self._follow)
        self.table = table
        self.plate_map = None
        if table is not None:
            try:
                self.plate_map = PlateMap(table)
            except ValueError as exc:
                self.status.value = str(exc)
            table.changed.connect(self._table_changed)
            table.current_changed.connect(self._follow)
        self._refresh_choices()
        self.recolour()

    def _colour_choices(self, *_) -> list[str]:
        plate_map = getattr(self, "plate_map", None)
        return plate_map.colour_columns() if plate_map is not None else []

    def _refresh_choices(self) -> None:
        current = self.colour_by.value
        with self.colour_by.changed.blocked():
            self.colour_by.reset_choices()
            choices = self._colour_choices()
            if current in choices:
                self.colour_by.value = current
            elif choices:
                self.colour_by.value = cols.CONDITION if cols.CONDITION in choices else choices[0]

    def _table_changed(self, names: tuple) -> None:
        before = self.colour_by.value
        self._refresh_choices()
        if self.colour_by.value != before or before in names:
            self.recolour()

    # ---------------------------------------------------------------- drawing
    def recolour(self, *_) -> None:
        """Colour the wells by the chosen column and repaint."""
        column = self.colour_by.value
        if self.plate_map is None or not column:
            self.colouring = None
            self.canvas.set_colouring(None, None)
            return
        self.colouring = self.plate_map.colour_by(column)
        self.canvas.set_colouring(self.plate_map, self.colouring)
        self._follow(self.table.current)
        n = len(self.plate_map.wells)
        self.status.value = f"{n} wells on {len(self.plate_map.plates)} plate(s), coloured by {column}"

    def _follow(self, site: int) -> None:
        if self.plate_map is None:
            return
        self.canvas.current_well = self.plate_map.well_of_site(int(site))
        self.canvas.update()

    # ---------------------------------------------------------------- hover and click
    def hover_text(self, where) -> str:
        well = self._well(where)
        return self.plate_map.describe_well(well, self.colouring) if well is not None else ""

    def click(self, where) -> None:
        """Go to the clicked well's first site; the stepper then steps through its sites."""
        well = self._well(where)
        if well is None:
            return
        info = self.plate_map.wells.iloc[well]
        self.stepper.set_rows(self.plate_map.sites_of(well), f"{info['plate']} {info['well']}", go=True)

    def _well(self, where) -> int | None:
        if self.plate_map is None or where is None:
            return None
        return self.plate_map.well_at(*where)
