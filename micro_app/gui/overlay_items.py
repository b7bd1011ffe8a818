"""Boxes and labels over the live image as vector items: drawn at screen resolution, so the
text stays sharp at any zoom (labels burned into the pixels blur and ghost when pyqtgraph
scales the image to the view). Exports still burn the same labels into their PNG
(``core.overlay``). Items are pooled: a frame reuses the previous frame's items."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem


@dataclass(frozen=True)
class DrawnCell:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels
    text: str
    colour: tuple[int, int, int]
    selected: bool = False
    provisional: bool = False  # dashed: the label is not to be trusted yet


class OverlayLayer:
    def __init__(self, view: pg.ViewBox) -> None:
        self._view = view
        self._rects: list[QGraphicsRectItem] = []
        self._texts: list[pg.TextItem] = []
        self.shown: list[DrawnCell] = []

    def show(self, cells: list[DrawnCell]) -> None:
        while len(self._rects) < len(cells):
            rect = QGraphicsRectItem()
            rect.setZValue(10)
            text = pg.TextItem(anchor=(0, 1))
            text.setZValue(11)
            self._view.addItem(rect)
            self._view.addItem(text)
            self._rects.append(rect)
            self._texts.append(text)
        for i, rect in enumerate(self._rects):
            text = self._texts[i]
            visible = i < len(cells)
            rect.setVisible(visible)
            text.setVisible(visible)
            if not visible:
                continue
            c = cells[i]
            x0, y0, x1, y1 = c.box
            colour = QColor(*c.colour)
            pen = QPen(colour, 3.0 if c.selected else 1.6)
            pen.setCosmetic(True)  # line width in screen pixels, whatever the zoom
            if c.provisional:
                pen.setStyle(Qt.PenStyle.DashLine)
            rect.setPen(pen)
            rect.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            ink = (0, 0, 0) if sum(c.colour) > 380 else (255, 255, 255)
            text.fill = pg.mkBrush(colour)
            text.setText(c.text, color=ink)
            text.setPos(x0, y0)
        self.shown = list(cells)
