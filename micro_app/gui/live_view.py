"""The live image: pyqtgraph ImageItem (row-major), zoom and pan, histogram with auto-contrast.

Levels are set once and on request (auto-contrast), never recomputed per frame. The
histogram beside the image is not redrawn on every frame either (pyqtgraph recomputes it on
every ``setImage``: about 10 ms of a 1080p frame against 4.5 ms for the rest of the
display): it follows the image every ``HISTOGRAM_EVERY`` frames and at once on a new image
size or auto-contrast. Mouse positions are reported in image pixel coordinates.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal

from micro_app.gui.overlay_items import DrawnCell, OverlayLayer

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
HISTOGRAM_EVERY = 15  # frames: twice a second at a camera's 30 fps


class LiveView(pg.GraphicsLayoutWidget):
    hovered = Signal(float, float)  # image x, y
    clicked = Signal(float, float, bool)  # image x, y, right button

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)
        self.setBackground("#202124")
        self.view = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self.histogram = pg.HistogramLUTItem(image=self.image_item, levelMode="mono")
        self.histogram.setMaximumWidth(80)
        # the histogram follows the image when ``show_image`` says so, not on every frame
        self.image_item.sigImageChanged.disconnect(self.histogram.imageChanged)
        self._since_histogram = 0
        self.addItem(self.histogram)
        self.levels: tuple[float, float] = (0.0, 255.0)
        self.image_item.setLevels(self.levels)
        self._shape: tuple[int, ...] | None = None
        self.overlay = OverlayLayer(self.view)
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.histogram.sigLevelsChanged.connect(self._levels_from_histogram)

    def show_image(self, image: np.ndarray) -> None:
        first = self._shape is None or self._shape != image.shape
        self.image_item.setImage(image, autoLevels=False, levels=self.levels)
        self._since_histogram += 1
        if first or self._since_histogram >= HISTOGRAM_EVERY:
            self.refresh_histogram()
        if first:
            self._shape = image.shape
            self.view.autoRange(padding=0.0)

    def refresh_histogram(self) -> None:
        """Redraw the histogram from the image on screen."""
        self._since_histogram = 0
        self.histogram.imageChanged()

    def show_cells(self, cells: list[DrawnCell]) -> None:
        """Boxes and labels over the image (vector items, sharp at any zoom)."""
        self.overlay.show(cells)

    def auto_contrast(self, image: np.ndarray | None = None) -> None:
        """Stretch the 0.5-99.5 percentile of the current image over the display range."""
        img = self.image_item.image if image is None else image
        if img is None:
            return
        lo, hi = np.percentile(np.asarray(img)[::4, ::4], (0.5, 99.5))
        self.set_levels(float(lo), float(max(hi, lo + 1)))
        self.refresh_histogram()

    def reset_contrast(self) -> None:
        self.set_levels(0.0, 255.0)

    def set_levels(self, lo: float, hi: float) -> None:
        self.levels = (lo, hi)
        self.histogram.setLevels(lo, hi)
        self.image_item.setLevels(self.levels)

    def reset_zoom(self) -> None:
        self.view.autoRange(padding=0.0)

    def _levels_from_histogram(self) -> None:
        lo, hi = self.histogram.getLevels()
        self.levels = (float(lo), float(hi))

    def _to_image(self, pos: QPointF) -> tuple[float, float] | None:
        if self.image_item.image is None or not self.view.sceneBoundingRect().contains(pos):
            return None
        p = self.view.mapSceneToView(pos)
        return float(p.x()), float(p.y())

    def _moved(self, pos: QPointF) -> None:
        xy = self._to_image(pos)
        if xy is not None:
            self.hovered.emit(*xy)

    def _clicked(self, event: object) -> None:
        xy = self._to_image(event.scenePos())  # type: ignore[attr-defined]
        if xy is not None:
            right = event.button() == Qt.MouseButton.RightButton  # type: ignore[attr-defined]
            self.clicked.emit(xy[0], xy[1], right)
