"""The Plate map dock's drawing: the overview of every plate, one plate's wells, and the legend.

Qt painting only, over :class:`~napari_gandl.viewmodels.plate_overview.PlateOverview`: the state
(what is zoomed, selected, matched) is the view-model's; this module turns it into pixels and
turns the mouse and the keys into the view-model's words. Each plate is one small picture (a
pixel per well, scaled up without smoothing), so 200 plates are 200 image draws.
"""

from __future__ import annotations

import numpy as np

#: Okabe & Ito: a flagged plate (vermillion) and a search match (yellow), as elsewhere in the plugin
FLAG = "#D55E00"
MATCH = "#F0E442"
CURRENT = "white"


def canvas_classes():
    """``(PlateCanvas, LegendBar)``, made on first use so that importing the dock needs no Qt."""
    from qtpy.QtCore import QRectF, Qt
    from qtpy.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter, QPen
    from qtpy.QtWidgets import QSizePolicy, QToolTip, QWidget

    keys = {Qt.Key.Key_Left: "left", Qt.Key.Key_Right: "right", Qt.Key.Key_Up: "up", Qt.Key.Key_Down: "down",
            Qt.Key.Key_Return: "enter", Qt.Key.Key_Enter: "enter", Qt.Key.Key_Escape: "escape",
            Qt.Key.Key_PageUp: "pageup", Qt.Key.Key_PageDown: "pagedown"}

    def _pos(event):
        return event.position() if hasattr(event, "position") else event.pos()

    class PlateCanvas(QWidget):
        """The overview (plates under their experiment's name) or one plate's wells.

        ``hit(pos)`` is ``("plate", p)`` over a plate of the overview, ``("well", w)`` over a well
        of the plate shown, else None. The dock gives ``on_click(hit)``, ``on_hover(hit) -> text``
        and ``on_key(name)``; :meth:`show` takes the view-model, the colouring and the flags.
        """

        MARGIN, GAP, TITLE, NAME, LABEL = 6, 8, 22, 16, 18
        MIN_CELL, MAX_CELL = 2, 10   # overview: pixels per well

        def __init__(self, on_click, on_hover, on_key):
            super().__init__()
            self.setMouseTracking(True)
            self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            self.setMinimumSize(260, 160)
            self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            self._on_click, self._on_hover, self._on_key = on_click, on_hover, on_key
            self.overview = None
            self.images: list = []
            self.flagged = np.zeros(0, bool)
            self.current_well: int | None = None
            self.visible_height = 600            # the scroll area's height, given by the dock
            self.per_line = 1
            self.cell = float(self.MIN_CELL)
            self.rects: list = []                # overview: per plate, the QRectF of its picture
            self.titles: list = []               # overview: (QRectF, experiment)
            self.plate_rect = None               # plate: the QRectF of its wells

        def show_state(self, overview, colouring, flagged=None) -> None:
            """Draw ``overview`` (None: nothing to draw) with the wells coloured by ``colouring``."""
            self.overview = overview
            self.images = []
            if overview is not None and colouring is not None:
                pixels = overview.map.plate_images(colouring)
                h, w = pixels.shape[1:3]
                for p in range(len(pixels)):
                    # a QImage borrows its buffer: keep the array with it
                    self.images.append((QImage(pixels[p].data, w, h, 4 * w, QImage.Format.Format_RGBA8888), pixels))
            n = len(self.images)
            if overview is not None:  # where each well is, as arrays (a pandas row per well is slow)
                wells = overview.map.wells
                self._plate_of, self._row, self._col = (wells[k].to_numpy() for k in ("plate_index", "row", "col"))
            self.flagged = np.zeros(n, bool) if flagged is None else np.asarray(flagged, bool)
            self.relayout()

        # ------------------------------------------------------------ geometry
        def relayout(self) -> None:
            """Place the plates for the width; in the overview, grow tall enough to scroll to every plate."""
            ov = self.overview
            self.rects, self.titles, self.plate_rect = [], [], None
            if ov is None or not self.images:
                self.setMinimumHeight(160)
                self.update()
                return
            rows, cols = ov.map.shape
            width = max(self.width(), 260) - 2 * self.MARGIN
            if ov.zoomed is not None:
                height = max(self.visible_height, 160) - 2 * self.MARGIN - self.LABEL
                cell = max(4.0, min((width - self.LABEL) / cols, height / rows))
                self.plate_rect = QRectF(self.MARGIN + self.LABEL, self.MARGIN + self.LABEL, cols * cell, rows * cell)
                self.cell = cell
                self.setMinimumHeight(int(self.plate_rect.bottom() + self.MARGIN))
            else:
                n_titles = sum(1 for name, _ in ov.sections if name)
                cell = self.MIN_CELL
                for c in range(self.MAX_CELL, self.MIN_CELL - 1, -1):  # the largest that fits without scrolling
                    per_line = max(1, int((width + self.GAP) // (cols * c + self.GAP)))
                    lines = sum(-(-len(plates) // per_line) for _, plates in ov.sections)
                    if n_titles * self.TITLE + lines * (rows * c + self.NAME + self.GAP) <= self.visible_height:
                        cell = c
                        break
                self.cell = float(cell)
                self.per_line = max(1, int((width + self.GAP) // (cols * cell + self.GAP)))
                self.rects = [None] * len(ov.map.plates)
                y = self.MARGIN
                for kind, what in ov.overview_rows(self.per_line):
                    if kind == "title":
                        self.titles.append((QRectF(self.MARGIN, y, width, self.TITLE), what))
                        y += self.TITLE
                        continue
                    for k, plate in enumerate(what):
                        x = self.MARGIN + k * (cols * cell + self.GAP)
                        self.rects[plate] = QRectF(x, y, cols * cell, rows * cell)
                    y += rows * cell + self.NAME + self.GAP
                self.setMinimumHeight(int(y + self.MARGIN))
            self.update()

        def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
            super().resizeEvent(event)
            viewport = self.parentWidget()  # the scroll area's: how much of the canvas is seen
            seen = viewport.height() if viewport is not None else self.visible_height
            if event.oldSize().width() != event.size().width() or seen != self.visible_height:
                self.visible_height = seen
                self.relayout()

        def hit(self, pos) -> tuple[str, int] | None:
            x, y = float(pos.x()), float(pos.y())
            if self.plate_rect is not None:
                if not self.plate_rect.contains(x, y):
                    return None
                well = self.overview.map.well_at(self.overview.zoomed, int((y - self.plate_rect.top()) // self.cell),
                                                 int((x - self.plate_rect.left()) // self.cell))
                return ("well", well) if well is not None else None
            for p, rect in enumerate(self.rects):  # the picture and the name under it
                if rect is not None and rect.adjusted(-2, -2, 2, self.NAME).contains(x, y):
                    return "plate", p
            return None

        def well_rect(self, well: int):
            """Where a well is drawn: on the plate shown, or inside its plate's picture in the overview."""
            well = int(well)
            plate = int(self._plate_of[well])
            if self.plate_rect is not None:
                if plate != self.overview.zoomed:
                    return None
                rect = self.plate_rect
            else:
                rect = self.rects[plate]
            return QRectF(rect.left() + int(self._col[well]) * self.cell, rect.top() + int(self._row[well]) * self.cell,
                          self.cell, self.cell)

        def well_centre(self, well: int):
            self.relayout()
            return self.well_rect(well).center().toPoint()

        def plate_centre(self, plate: int):
            self.relayout()
            return self.rects[plate].center().toPoint()

        # ------------------------------------------------------------ painting
        def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
            painter = QPainter(self)
            painter.fillRect(self.rect(), self.palette().window())
            text = self.palette().windowText().color()
            painter.setPen(text)
            if self.overview is None or not self.images:
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "open a plate with wells")
                return
            if self.plate_rect is not None:
                self._paint_plate(painter, text)
            else:
                self._paint_overview(painter, text, event.rect())

        def _font(self, painter, size: float, bold: bool = False) -> None:
            font = painter.font()
            font.setPointSizeF(size)
            font.setWeight(QFont.Weight.Bold if bold else QFont.Weight.Normal)
            painter.setFont(font)

        def _paint_overview(self, painter, text, exposed) -> None:
            ov = self.overview
            matches = ov.matches_per_plate()
            self._font(painter, 10, bold=True)
            for rect, name in self.titles:
                painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, name)
            highlight = QColor(self.palette().highlight().color())
            highlight.setAlpha(150)
            plate_of = self._plate_of
            for p, rect in enumerate(self.rects):
                block = rect.adjusted(-3, -3, 3, self.NAME)
                if not block.intersects(QRectF(exposed)):
                    continue
                if p == ov.plate:  # the selected plate: a frame around picture and name
                    painter.fillRect(block, highlight)
                    painter.setPen(QPen(highlight.lighter(170), 2))
                    painter.setBrush(Qt.BrushStyle.NoBrush)
                    painter.drawRect(block.adjusted(-1, -1, 1, 1))
                painter.drawImage(rect, self.images[p][0])
                if matches[p]:
                    painter.setPen(QPen(QColor(MATCH), 2))
                    painter.drawRect(rect.adjusted(-1, -1, 1, 1))
                    for w in ov.matched_wells[plate_of[ov.matched_wells] == p]:
                        painter.fillRect(self.well_rect(w), QColor(MATCH))
                if self.flagged[p]:
                    painter.setPen(QPen(QColor(FLAG), 2, Qt.PenStyle.DashLine))
                    painter.drawRect(rect.adjusted(-2, -2, 2, 2))
                name = ov.short_name(p) + (" !" if self.flagged[p] else "") + (f" ({matches[p]})" if matches[p] else "")
                painter.setPen(QColor(FLAG) if self.flagged[p] else text)
                self._font(painter, 9, bold=bool(self.flagged[p] or p == ov.plate))
                painter.drawText(QRectF(rect.left() - self.GAP / 2, rect.bottom() + 1, rect.width() + self.GAP,
                                        self.NAME - 1), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, name)
            if self.current_well is not None:
                painter.setPen(QPen(QColor(CURRENT), 1))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(self.well_rect(self.current_well).adjusted(-1, -1, 1, 1))

        def _paint_plate(self, painter, text) -> None:
            ov, rect, cell = self.overview, self.plate_rect, self.cell
            pm = ov.map
            painter.drawImage(rect, self.images[ov.zoomed][0])
            self._font(painter, 8)
            rows, cols = pm.shape
            for r in range(0, rows, max(1, int(12 // cell) + 1)):
                painter.drawText(QRectF(rect.left() - self.LABEL, rect.top() + r * cell, self.LABEL - 2, cell),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, pm.row_label(r))
            for c in range(0, cols, max(1, int(18 // cell) + 1)):
                painter.drawText(QRectF(rect.left() + c * cell - 8, rect.top() - self.LABEL, cell + 16, self.LABEL),
                                 Qt.AlignmentFlag.AlignCenter, str(c + 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(MATCH), 2))
            for w in ov.matched_wells[self._plate_of[ov.matched_wells] == ov.zoomed]:
                painter.drawRect(self.well_rect(w).adjusted(1, 1, -1, -1))
            if self.current_well is not None and self.well_rect(self.current_well) is not None:
                painter.setPen(QPen(QColor(CURRENT), 2))
                painter.drawRect(self.well_rect(self.current_well).adjusted(-1, -1, 1, 1))
            if ov.well is not None and ov.well != self.current_well and self.well_rect(ov.well) is not None:
                pen = QPen(QColor(self.palette().highlight().color()).lighter(150), 2, Qt.PenStyle.DashLine)
                painter.setPen(pen)
                painter.drawRect(self.well_rect(ov.well).adjusted(-1, -1, 1, 1))

        # ------------------------------------------------------------ mouse and keys
        def mouseMoveEvent(self, event) -> None:  # noqa: N802
            text = self._on_hover(self.hit(_pos(event)))
            global_pos = event.globalPosition().toPoint() if hasattr(event, "globalPosition") else event.globalPos()
            if text:
                QToolTip.showText(global_pos, text, self)
            else:
                QToolTip.hideText()

        def mousePressEvent(self, event) -> None:  # noqa: N802
            if event.button() == Qt.MouseButton.LeftButton:
                self.setFocus()
                self._on_click(self.hit(_pos(event)))

        def keyPressEvent(self, event) -> None:  # noqa: N802
            name = keys.get(event.key())
            if name is None:
                super().keyPressEvent(event)
            else:
                self._on_key(name)
                event.accept()

    class LegendBar(QWidget):
        """What the colours mean: the categories, or the colour bar of a continuous column."""

        ROW = 16

        def __init__(self):
            super().__init__()
            self.colouring = None
            self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

        def set_colouring(self, colouring) -> None:
            self.colouring = colouring
            if colouring is None:
                rows = 0
            elif colouring.kind == "continuous":
                rows = 2
            else:
                rows = (len(colouring.legend) + 1) // 2
            self.setFixedHeight(self.ROW * rows + 4)
            self.update()

        def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
            colouring = self.colouring
            if colouring is None:
                return
            painter = QPainter(self)
            painter.setPen(self.palette().windowText().color())
            font = painter.font()
            font.setPointSizeF(9)
            painter.setFont(font)
            width, row = self.width() - 8, self.ROW
            if colouring.kind == "continuous":
                from matplotlib import colormaps

                bar = QRectF(74, 3, max(20, width - 148), row - 6)
                gradient = QLinearGradient(bar.topLeft(), bar.topRight())
                cmap = colormaps[colouring.colormap]
                for t in (0.0, 0.25, 0.5, 0.75, 1.0):
                    gradient.setColorAt(t, QColor.fromRgbF(*cmap(t)))
                painter.fillRect(bar, gradient)
                painter.drawText(QRectF(0, 0, 70, row), Qt.AlignmentFlag.AlignRight, colouring.legend[0][0])
                painter.drawText(QRectF(bar.right() + 4, 0, 70, row), Qt.AlignmentFlag.AlignLeft, colouring.legend[1][0])
                painter.drawText(QRectF(0, row, width, row), Qt.AlignmentFlag.AlignCenter,
                                 f"{colouring.column} (well mean)")
                return
            half = width / 2
            for i, (label, rgba) in enumerate(colouring.legend):
                r, k = divmod(i, 2)
                x, y = 4 + k * half, r * row
                if rgba is not None:
                    painter.fillRect(QRectF(x, y + 3, 10, 10), QColor.fromRgbF(*rgba))
                painter.drawText(QRectF(x + 14, y, half - 16, row),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)

    return PlateCanvas, LegendBar
