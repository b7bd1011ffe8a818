"""Calibrate to this microscope: collect fields, press one button, choose the result.

Fields come from the live view ("Add this field") or a folder of images; the cells are
located and cut exactly as the live engine does. The calibration (``adapt.microscope``)
runs on a worker thread and writes a new version into the model library; the user then
uses it or discards it. Nothing changes until they choose.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from micro_app.adapt.library import NewVersion
from micro_app.adapt.microscope import ADVISED_CELLS, MIN_CELLS, calibrate
from micro_app.core.engine import Engine
from micro_app.core.frame import Frame
from micro_app.core.models.package import ModelPackage
from micro_app.gui.adapt_dialog import AdaptDialog, read_fields
from micro_app.gui.gallery import to_pixmap

COLLECT_FIELDS = 10
COLLECT_EVERY_MS = 1500
INTRO = (
    "Point the camera at a few fields of a slide stained and lit as usual, and add each "
    f"field; {ADVISED_CELLS} white cells or more are best, {MIN_CELLS} the least. No labels are "
    "needed: the model's normalisation and its unlike-the-training-images check are re-based "
    "on these cells. The result is a new model version; the current one stays as it is."
)


class CalibrateScopeDialog(AdaptDialog):
    def __init__(
        self,
        package: ModelPackage,
        engine: Engine,
        current_frame: Callable[[], Frame | None],
        library_root: Path,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Use the calibrated model", parent)
        self.setWindowTitle("Calibrate to this microscope")
        self.resize(720, 560)
        self.package = package
        self.engine = engine
        self.current_frame = current_frame
        self.library_root = library_root
        self.crops: list[np.ndarray] = []
        self.n_images = 0
        self._build()
        self._update()

    def _build(self) -> None:
        col = QVBoxLayout(self)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        col.addWidget(intro)
        row = QHBoxLayout()
        self.add_field = QPushButton("Add this field")
        self.add_field.clicked.connect(self.add_current_field)
        self.collect = QPushButton(f"Collect {COLLECT_FIELDS} fields as I move the slide")
        self.collect.setToolTip(
            f"Adds the live field every {COLLECT_EVERY_MS / 1000:g} s, {COLLECT_FIELDS} times: "
            "move the stage to a new area in between"
        )
        self.collect.clicked.connect(self.start_collecting)
        self._collect_timer = QTimer(self)
        self._collect_timer.setInterval(COLLECT_EVERY_MS)
        self._collect_timer.timeout.connect(self._collect_one)
        self._collect_left = 0
        self._last_seq = -1
        self.add_folder = QPushButton("Add images from a folder…")
        self.add_folder.clicked.connect(self._choose_folder)
        self.clear = QPushButton("Start again")
        self.clear.clicked.connect(self._clear)
        for b in (self.add_field, self.collect, self.add_folder, self.clear):
            row.addWidget(b)
        col.addLayout(row)
        self.count = QLabel()
        col.addWidget(self.count)
        self.cells = QListWidget()
        self.cells.setViewMode(QListWidget.ViewMode.IconMode)
        self.cells.setIconSize(QSize(56, 56))
        self.cells.setMaximumHeight(150)
        col.addWidget(self.cells)
        col.addWidget(self.progress)
        col.addWidget(self.report, 1)
        row = QHBoxLayout()
        self.run_button = QPushButton("Calibrate")
        self.run_button.clicked.connect(self.start)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        for b in (self.run_button, self.use_button, self.discard_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        col.addLayout(row)

    # -- collecting cells ---------------------------------------------------------------
    def add_current_field(self) -> int:
        frame = self.current_frame()
        if frame is None:
            self.count.setText("No frame yet: wait for the live view.")
            return 0
        return self.add_images([frame.image])

    def start_collecting(self) -> None:
        self._collect_left = COLLECT_FIELDS
        self._collect_timer.start()
        self._update()

    def _collect_one(self) -> None:
        frame = self.current_frame()
        if frame is not None and frame.seq != self._last_seq:  # a new frame each time
            self._last_seq = frame.seq
            self.add_images([frame.image])
            self._collect_left -= 1
        if self._collect_left <= 0:
            self._collect_timer.stop()
        self._update()

    def add_images(self, images: list[np.ndarray]) -> int:
        found = 0
        for image in images:
            crops = self.engine.crops(image)
            self.crops.extend(crops)
            self.n_images += 1
            found += len(crops)
            for crop in crops:
                self.cells.addItem(QListWidgetItem(QIcon(to_pixmap(crop, 56)), ""))
        self._update()
        return found

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of fields from this microscope")
        if folder:
            self.add_images(read_fields(Path(folder), self.say))

    def _clear(self) -> None:
        self.crops.clear()
        self.n_images = 0
        self.cells.clear()
        self._update()

    def _update(self) -> None:
        n = len(self.crops)
        hint = (
            f"need at least {MIN_CELLS}"
            if n < MIN_CELLS
            else ("enough" if n >= ADVISED_CELLS else f"{ADVISED_CELLS} or more is better")
        )
        self.count.setText(f"{self.n_images} fields, {n} white cells ({hint})")
        busy = self.busy
        self.run_button.setEnabled(n >= MIN_CELLS and not busy and self.outcome is None)
        collecting = self._collect_timer.isActive()
        for b in (self.add_field, self.collect, self.add_folder, self.clear):
            b.setEnabled(not busy and not collecting and self.outcome is None)
        self.run_button.setEnabled(self.run_button.isEnabled() and not collecting)
        self.collect.setText(
            f"Collecting… {self._collect_left} fields to go"
            if collecting
            else f"Collect {COLLECT_FIELDS} fields as I move the slide"
        )
        super()._update()

    # -- running ------------------------------------------------------------------------
    def start(self) -> bool:
        crops = np.stack(self.crops) if self.crops else np.zeros((0, 1, 1, 3), np.uint8)
        n_images, package, root = self.n_images, self.package, self.library_root

        def job(progress: Callable[[str, float], None], cancel: threading.Event) -> Any:
            return calibrate(
                package,
                crops,
                n_images=n_images,
                library_root=root,
                progress=progress,
                cancel=cancel,
            )

        return self.run(job, "calibration")

    def describe(self, result: NewVersion) -> str:
        r = result.report
        moved = max((x["mean_shift_sd"] for x in r["batchnorm_layers"]), default=0.0)
        before = r["unlike_share_before"]
        lines = [
            f"<b>New version {result.version}</b> in {result.package}",
            f"{r['cells']} white cells of {r['images']} fields; no labels used.",
            f"Normalisation: {len(r['batchnorm_layers'])} layers re-estimated; the largest "
            f"mean shift was {moved:.2f} standard deviations.",
        ]
        if before is not None:
            lines.append(
                f"{before:.0%} of these cells looked unlike the current model's training "
                "images; the new version's check is based on this microscope's cells."
            )
        lines.append(
            "<b>Not validated:</b> no cell was labelled, so its accuracy on this microscope "
            "is unknown. Correct some cells in review and use Teach to measure it."
        )
        return "<p>" + "</p><p>".join(lines) + "</p>"

    def done(self, code: int) -> None:
        self._collect_timer.stop()
        super().done(code)
