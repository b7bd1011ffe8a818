"""Snapshot thumbnails in a strip under the live view; double-click opens the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def to_pixmap(image: np.ndarray, width: int) -> QPixmap:
    rgb = np.ascontiguousarray(image)
    h, w = rgb.shape[:2]
    qimg = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimg).scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)


class Gallery(QWidget):
    snapshot_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.folder: Path | None = None
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setIconSize(QSize(120, 90))
        self.list.setFixedHeight(128)
        self.list.itemDoubleClicked.connect(self._open_item)
        snap = QPushButton("Snapshot (Space)")
        snap.clicked.connect(self.snapshot_requested)
        open_folder = QPushButton("Open folder")
        open_folder.clicked.connect(self.open_folder)
        buttons = QVBoxLayout()
        buttons.addWidget(snap)
        buttons.addWidget(open_folder)
        buttons.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.list, 1)
        row.addLayout(buttons)

    def add(self, annotated: np.ndarray, path: Path) -> None:
        item = QListWidgetItem(
            QIcon(to_pixmap(annotated, 120)), path.stem.replace("_annotated", "")
        )
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        self.list.addItem(item)
        self.list.scrollToItem(item)

    def open_folder(self) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder)))

    def _open_item(self, item: QListWidgetItem) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(item.data(Qt.ItemDataRole.UserRole)))
