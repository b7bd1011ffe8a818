"""Results: probabilities of the chosen cell, the slide's differential count, review, plots."""

from __future__ import annotations

from collections import deque

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from micro_app.core.results import SHOWN, CellResult
from micro_app.core.slide import CountStatus

HISTORY = 300
CURVES = (("#e69f00", "latency ms"), ("#56b4e9", "inference fps"), ("#009e73", "display fps"))


class ResultsPanel(QWidget):
    correction_chosen = Signal(str)
    target_changed = Signal(int)
    finish_requested = Signal()
    new_slide_requested = Signal()

    def __init__(self, target: int) -> None:
        super().__init__()
        self.classes: list[str] = []
        layout = QVBoxLayout(self)
        layout.addWidget(self._cell_box())
        layout.addWidget(self._count_box(target))
        layout.addWidget(self._plots_box())

    # -- the cell under the cursor or selected -------------------------------------------------
    def _cell_box(self) -> QGroupBox:
        box = QGroupBox("Cell")
        col = QVBoxLayout(box)
        self.cell_title = QLabel("Point at a cell; click to select it")
        col.addWidget(self.cell_title)
        self.probs = QTableWidget(0, 2)
        self.probs.setHorizontalHeaderLabels(["class", "probability"])
        self.probs.verticalHeader().setVisible(False)
        self.probs.horizontalHeader().setStretchLastSection(True)
        self.probs.setMaximumHeight(190)
        col.addWidget(self.probs)
        row = QHBoxLayout()
        self.correct_combo = QComboBox()
        self.correct_combo.setPlaceholderText("select a counted cell to correct it")
        self.correct_combo.setToolTip("Correct the class of the selected cell (review)")
        self.correct_button = QPushButton("Correct")
        self.correct_button.clicked.connect(
            lambda: self.correction_chosen.emit(self.correct_combo.currentText())
        )
        row.addWidget(self.correct_combo, 1)
        row.addWidget(self.correct_button)
        col.addLayout(row)
        self.set_review_enabled(False)
        return box

    def set_classes(self, classes: list[str]) -> None:
        """The model's classes: choices for a correction and rows of the differential."""
        self.classes = list(classes)
        self.correct_combo.clear()
        self.correct_combo.addItems([*classes, "unidentified", "not a white cell"])
        self.set_review_enabled(self.correct_button.isEnabled())

    def set_review_enabled(self, enabled: bool) -> None:
        """Without a selected counted cell the choice is empty (no class is suggested)."""
        self.correct_combo.setEnabled(enabled)
        self.correct_button.setEnabled(enabled)
        if not enabled:
            self.correct_combo.setCurrentIndex(-1)
        elif self.correct_combo.currentIndex() < 0 and self.correct_combo.count():
            self.correct_combo.setCurrentIndex(0)

    def show_cell(self, cell: CellResult | None, title: str = "") -> None:
        if cell is None:
            self.cell_title.setText(title or "Point at a cell; click to select it")
            self.probs.setRowCount(0)
            return
        self.cell_title.setText(title or f"{cell.label} ({cell.confidence:.0%})")
        items = sorted(cell.probabilities.items(), key=lambda kv: -kv[1])
        self.probs.setRowCount(len(items))
        for r, (k, v) in enumerate(items):
            self.probs.setItem(r, 0, QTableWidgetItem(k))
            self.probs.setItem(r, 1, QTableWidgetItem(f"{v:.1%}"))

    # -- differential count ------------------------------------------------------------------
    def _count_box(self, target: int) -> QGroupBox:
        box = QGroupBox("Differential count (this slide)")
        col = QVBoxLayout(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Target"))
        self.target = QComboBox()
        self.target.addItems(["100", "200", "400"])
        self.target.setCurrentText(str(target))
        self.target.activated.connect(
            lambda _: self.target_changed.emit(int(self.target.currentText()))
        )
        row.addWidget(self.target)
        new = QPushButton("New slide")
        new.clicked.connect(self.new_slide_requested)
        finish = QPushButton("Finish slide (F)")
        finish.clicked.connect(self.finish_requested)
        row.addWidget(new)
        row.addWidget(finish)
        col.addLayout(row)
        self.progress = QProgressBar()
        col.addWidget(self.progress)
        # as tall as its rows: every class is in view, none behind a scroll bar
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["class", "count", "%"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for c in (0, 1):
            self.table.horizontalHeader().setSectionResizeMode(
                c, QHeaderView.ResizeMode.ResizeToContents
            )
        col.addWidget(self.table)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #b3261e; font-weight: bold")
        col.addWidget(self.warning)
        return box

    def show_count(self, status: CountStatus) -> None:
        """The count as ``micro-app live`` prints it: the bar says the count itself (past
        the target too), provisional cells are in no percentage, and the alerts about the
        differential are said here; cells unlike the training images are said once, in
        the note above the view (``UnlikeNote``)."""
        total, target = status.total, status.target
        self.progress.setMaximum(target)
        self.progress.setValue(min(total, target))
        over = total > target
        self.progress.setFormat(
            f"{total} cells (target {target})" if over else f"{total} / {target} cells"
        )
        # every class of the model, counted or not, then anything else (unidentified, ...)
        labels = self.classes + sorted(k for k in status.counts if k not in self.classes)
        self.table.setRowCount(len(labels))
        for r, label in enumerate(labels):
            self.table.setItem(r, 0, QTableWidgetItem(SHOWN.get(label, label)))
            n, p = status.counts.get(label, 0), status.provisional.get(label, 0)
            item = QTableWidgetItem(f"{n} ({p} provisional)" if p else str(n))
            share = status.shown_share(label)
            pct = QTableWidgetItem("–" if share is None else f"{share:.1f}")
            if p:
                tip = "unlike the model's training images: the class may be wrong (in no %)"
                item.setToolTip(tip)
                pct.setToolTip(tip)
            self.table.setItem(r, 1, item)
            self.table.setItem(r, 2, pct)
        # the share's base: the cells whose class stands (provisional ones are in no share)
        base = f"% of {status.n_standing}" if status.n_provisional else "%"
        self.table.setHorizontalHeaderItem(2, QTableWidgetItem(base))
        self._fit_table()
        text = "\n".join(status.warnings)
        if status.done:
            text = (text + "\n" if text else "") + f"Target of {target} cells reached."
        self.warning.setText(text)
        self.warning.setVisible(bool(text))

    def _fit_table(self) -> None:
        """Make the table exactly as tall as its header and rows."""
        t = self.table
        t.resizeRowsToContents()
        rows = sum(t.rowHeight(r) for r in range(t.rowCount()))
        height = t.horizontalHeader().sizeHint().height() + rows + 2 * t.frameWidth()
        if t.height() != height or t.minimumHeight() != height:
            t.setFixedHeight(height)

    # -- plots ------------------------------------------------------------------------------
    def _plots_box(self) -> QGroupBox:
        box = QGroupBox("Performance")
        col = QVBoxLayout(box)
        # the key sits above the plot, never over its lines
        self.legend = QLabel(
            "  ".join(f'<span style="color:{c}">&#9632; {name}</span>' for c, name in CURVES)
        )
        col.addWidget(self.legend)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(140)
        self.plot.setMaximumHeight(220)
        self.plot.setLabel("bottom", "last readings (1 per second)")
        (self.latency_curve, self.fps_curve, self.display_curve) = (
            self.plot.plot(pen=pg.mkPen(c, width=2), name=name) for c, name in CURVES
        )
        self._hist: dict[str, deque[float]] = {
            k: deque(maxlen=HISTORY) for k in ("lat", "fps", "disp")
        }
        col.addWidget(self.plot)
        return box

    def add_perf(self, latency_ms: float, inference_fps: float, display_fps: float) -> None:
        for key, v in (("lat", latency_ms), ("fps", inference_fps), ("disp", display_fps)):
            self._hist[key].append(v)
        self.latency_curve.setData(list(self._hist["lat"]))
        self.fps_curve.setData(list(self._hist["fps"]))
        self.display_curve.setData(list(self._hist["disp"]))
