"""Teach: the lab's cells class by class, labelled on purpose or from review, then a
fine-tuned model measured on the held-back cells before anything replaces the current one.

For the chosen class the grid shows this slide's counted cells that carry that label
(predicted or corrected, not yet stored) and the labelled cells already stored. Selecting
cells and "Label as" stores or relabels them. "Teach the model" runs ``adapt.teach`` on a
worker thread with a progress bar; the before/after numbers come from held-back cells
that no model was trained on, and the user chooses to use the new version or discard it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from micro_app.adapt.classes import SUGGESTED, check_new_class
from micro_app.adapt.labelled import LabelledStore
from micro_app.adapt.library import NewVersion
from micro_app.adapt.teach import TeachConfig, teach
from micro_app.core.errors import InputError
from micro_app.core.models.package import ModelPackage
from micro_app.gui.adapt_dialog import AdaptDialog
from micro_app.gui.gallery import to_pixmap
from micro_app.gui.reviewed_cells import ReviewedSlide, remember, review_key
from micro_app.gui.taught_report import describe_teaching

ICON = 88


class TeachDialog(AdaptDialog):
    def __init__(
        self,
        package: ModelPackage,
        store: LabelledStore,
        session: ReviewedSlide,
        library_root: Path,
        parent: QWidget | None = None,
        config: TeachConfig | None = None,
    ) -> None:
        super().__init__("Use the new model", parent)
        self.setWindowTitle("Teach the model this lab's cells")
        self.config = config or TeachConfig()
        self.resize(900, 720)
        self.package = package
        known = package.card.classes
        # the model's classes, then the ones the lab adds: those already in the store, and
        # blast, offered from the start
        added = [c.label for c in store.cells() if c.label not in known]
        self.classes = known + tuple(dict.fromkeys([*added, SUGGESTED[0]]))
        self.store = store
        self.session = session
        self.library_root = library_root
        self.task.cancelled.connect(self._cancelled)
        self._build()
        self.refresh()

    @property
    def model_name(self) -> str:
        return f"{self.package.card.name} {self.package.card.version}"

    def _build(self) -> None:
        col = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Class"))
        self.class_combo = QComboBox()
        self.class_combo.activated.connect(lambda _: self._show_class())
        row.addWidget(self.class_combo, 1)
        add = QPushButton("Add a class…")
        add.setToolTip(
            "A kind of cell the model does not know yet (blast, plasma cell, smudge cell, "
            "artefact, reactive lymphocyte…): label at least 4 of them to teach it"
        )
        add.clicked.connect(self._ask_class)
        row.addWidget(add)
        col.addLayout(row)
        self.class_note = QLabel()
        self.class_note.setWordWrap(True)
        col.addWidget(self.class_note)
        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(ICON, ICON))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        col.addWidget(self.grid, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Label selected cells as"))
        self.label_combo = QComboBox()
        self.label_combo.addItems(list(self.classes))
        row.addWidget(self.label_combo)
        apply = QPushButton("Apply")
        apply.clicked.connect(lambda: self.label_selected(self.label_combo.currentText()))
        row.addWidget(apply)
        confirm = QPushButton("Confirm as shown")
        confirm.setToolTip("Store the selected cells with the class they are listed under")
        confirm.clicked.connect(lambda: self.label_selected(self._current_class()))
        row.addWidget(confirm)
        forget = QPushButton("Remove label")
        forget.clicked.connect(self.remove_selected)
        row.addWidget(forget)
        row.addStretch(1)
        col.addLayout(row)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        col.addWidget(self.summary)
        col.addWidget(self.progress)
        self.report.setMaximumHeight(170)
        col.addWidget(self.report)
        row = QHBoxLayout()
        self.teach_button = QPushButton("Teach the model")
        self.teach_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.clicked.connect(self.task.cancel)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        for b in (self.teach_button, self.cancel_button, self.use_button, self.discard_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        col.addLayout(row)

    # -- classes the lab adds ---------------------------------------------------------------
    def add_class(self, name: str) -> str | None:
        """Add a class to label cells with (``adapt.classes``); None and a one-line note
        when the name cannot be one."""
        try:
            c = check_new_class(name, self.classes)
        except InputError as exc:
            self.class_note.setText(str(exc))
            return None
        if c not in self.classes:
            self.classes = (*self.classes, c)
            self.label_combo.addItem(c)
        self.class_note.setText(
            f"Class {c!r}: select its cells (this slide's, under the class the model gave "
            "them) and label them as it; at least 4 teach it."
        )
        self.refresh()
        return c

    def _ask_class(self) -> None:
        offer = [c for c in SUGGESTED if c not in self.classes]
        name, ok = QInputDialog.getItem(
            self,
            "Add a class",
            "A kind of cell of this lab the model does not know:",
            offer,
            0,
            True,
        )
        if ok and name.strip():
            self.add_class(name)

    # -- the cells of one class ---------------------------------------------------------
    def _current_class(self) -> str:
        return str(self.class_combo.currentData() or self.classes[0])

    def _slide_cells(self, label: str) -> list[int]:
        return [
            c.cell_id
            for c in self.session.counted_cells()
            if c.crop is not None
            and c.label == label
            and self.store.find(review_key(self.session, c.cell_id)) is None
        ]

    def refresh(self) -> None:
        current = self.class_combo.currentData()
        stored = self.store.cells()
        self.class_combo.clear()
        known = self.package.card.classes
        for k in self.classes:
            n_stored = sum(c.label == k for c in stored)
            n_slide = len(self._slide_cells(k))
            new = "" if k in known else " (new class)"
            self.class_combo.addItem(f"{k}{new}: {n_stored} labelled, {n_slide} on this slide", k)
        self.class_combo.setCurrentIndex(max(0, self.class_combo.findData(current)))
        self._show_class()
        train = sum(c.split == "train" and c.label in self.classes for c in stored)
        held = sum(c.split == "holdout" and c.label in self.classes for c in stored)
        self.summary.setText(
            f"Labelled cells: {train} to teach with, {held} held back to measure the result "
            "(every fourth cell of a class, from the third on, is held back and never trained on)."
        )
        self._update()

    def _show_class(self) -> None:
        label = self._current_class()
        self.grid.clear()
        for cid in self._slide_cells(label):
            cell = self.session.counted_cell(cid)
            assert cell is not None and cell.crop is not None
            how = "corrected" if cell.corrected else f"predicted {cell.confidence:.0%}"
            self._add_item(cell.crop, f"slide #{cid}", ("slide", cid), how)
        for c in self.store.cells():
            if c.label != label:
                continue
            try:
                image = self.store.image(c)
            except InputError:  # a file removed by hand: listed, not shown
                image = np.zeros((ICON, ICON, 3), np.uint8)
            mark = "held back" if c.split == "holdout" else "labelled"
            tip = f"{c.source}; model said {c.predicted or '?'}; {c.slide} {c.time}"
            self._add_item(image, mark, ("stored", c.cell_id), tip)

    def _add_item(self, image: np.ndarray, text: str, key: tuple[str, Any], tip: str) -> None:
        item = QListWidgetItem(QIcon(to_pixmap(image, ICON)), text)
        item.setData(Qt.ItemDataRole.UserRole, key)
        item.setToolTip(tip)
        self.grid.addItem(item)

    def _selected(self) -> list[tuple[str, Any]]:
        return [it.data(Qt.ItemDataRole.UserRole) for it in self.grid.selectedItems()]

    def label_selected(self, label: str) -> int:
        done = 0
        for kind, key in self._selected():
            if kind == "slide":
                self.session.correct(key, label)
                done += remember(self.store, self.session, key, label, self.model_name)
            else:
                self.store.relabel(key, label, source="teach")
                done += 1
        self.refresh()
        return done

    def remove_selected(self) -> None:
        for kind, key in self._selected():
            if kind == "stored":
                self.store.remove(key)
        self.refresh()

    # -- teaching -------------------------------------------------------------------------
    def start(self) -> bool:
        package, store, root, cfg = self.package, self.store, self.library_root, self.config
        card = package.card

        # this slide's counted cells are this microscope's: unlabelled, they still teach
        pool = [c.crop for c in self.session.counted_cells() if c.crop is not None]

        def job(progress: Callable[[str, float], None], cancel: threading.Event) -> Any:
            cells = store.to_set(card.classes, card.input_size, add_classes=True)
            return teach(
                package,
                cells,
                config=cfg,
                library_root=root,
                progress=progress,
                cancel=cancel,
                pool=np.stack(pool) if pool else None,
            )

        self.report.setPlainText(
            "Teaching… the live view keeps running, more slowly, until it is done."
        )
        return self.run(job, "teaching")

    def describe(self, result: NewVersion) -> str:
        return describe_teaching(result)

    def _cancelled(self) -> None:
        self.report.setPlainText("Stopped: nothing was written.")
        self.progress.setValue(0)
        self._update()

    def _update(self) -> None:
        busy = self.busy
        self.teach_button.setEnabled(not busy and self.outcome is None)
        self.cancel_button.setEnabled(busy)
        super()._update()
