"""Calibrate µm per pixel: draw a line over a known length of a stage micrometer."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from micro_app.core.calibration import um_per_px_from_line
from micro_app.core.errors import SettingsError


class CalibrationDialog(QDialog):
    def __init__(
        self, image: np.ndarray, objective: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calibrate with a stage micrometer")
        self.resize(900, 720)
        col = QVBoxLayout(self)
        col.addWidget(
            QLabel(
                "Drag the ends of the yellow line onto two marks of the stage "
                "micrometer, then enter the distance between them."
            )
        )
        self.plot = pg.GraphicsLayoutWidget()
        view = self.plot.addViewBox(lockAspect=True, invertY=True)
        view.addItem(pg.ImageItem(image, axisOrder="row-major"))
        h, w = image.shape[:2]
        self.line = pg.LineSegmentROI(
            [[w * 0.25, h / 2], [w * 0.75, h / 2]], pen=pg.mkPen("y", width=3)
        )
        view.addItem(self.line)
        col.addWidget(self.plot, 1)
        form = QFormLayout()
        self.length = QDoubleSpinBox()
        self.length.setRange(0.1, 10000)
        self.length.setValue(100.0)
        self.length.setSuffix(" µm")
        self.name = QLineEdit(objective or "100x oil")
        self.scale_label = QLabel()
        form.addRow("Known length", self.length)
        form.addRow("Objective name", self.name)
        form.addRow("Scale", self.scale_label)
        col.addLayout(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        col.addWidget(buttons)
        self.line.sigRegionChanged.connect(self._update)
        self.length.valueChanged.connect(self._update)
        self._update()

    def endpoints(self) -> tuple[tuple[float, float], tuple[float, float]]:
        handles = self.line.getSceneHandlePositions()
        pts = [self.line.mapSceneToParent(pos) for _, pos in handles]
        return (pts[0].x(), pts[0].y()), (pts[1].x(), pts[1].y())

    def um_per_px(self) -> float:
        p0, p1 = self.endpoints()
        return um_per_px_from_line(p0, p1, self.length.value())

    def _update(self) -> None:
        try:
            self.scale_label.setText(f"{self.um_per_px():.4f} µm per pixel")
            self.ok.setEnabled(bool(self.name.text().strip()))
        except SettingsError as exc:
            self.scale_label.setText(str(exc))
            self.ok.setEnabled(False)
