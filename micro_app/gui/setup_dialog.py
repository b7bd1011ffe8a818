"""Set up this microscope: one guided flow (``adapt.setup.MicroscopeSetup``) in four steps,
each a page: collect fields, calibrate, confirm or correct the suggested classes (one key
or click per cell), teach and see before → after on held-back cells, then use it. The
window remembers the result for this microscope (camera + objective)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QIcon, QKeyEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from micro_app.adapt.classes import SUGGESTED
from micro_app.adapt.library import NewVersion
from micro_app.adapt.setup import MicroscopeSetup
from micro_app.core.errors import InputError
from micro_app.core.frame import Frame
from micro_app.gui.adapt_dialog import AdaptDialog, read_fields
from micro_app.gui.confirm_grid import ConfirmGrid, keys_text
from micro_app.gui.gallery import to_pixmap
from micro_app.gui.taught_report import describe_setup

COLLECT_FIELDS = 10
COLLECT_EVERY_MS = 1500
STEPS = ("1 Collect fields", "2 Calibrate", "3 Confirm classes", "4 Teach and use")


class SetupDialog(AdaptDialog):
    def __init__(
        self,
        setup: MicroscopeSetup,
        current_frame: Callable[[], Frame | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Use it for this microscope", parent)
        self.setWindowTitle(f"Set up this microscope: {setup.microscope}")
        self.resize(980, 760)
        self.setup = setup
        self.current_frame = current_frame
        self._last_seq = -1
        self._collect_left = 0
        self._timer = QTimer(self)
        self._timer.setInterval(COLLECT_EVERY_MS)
        self._timer.timeout.connect(self._collect_one)
        self.task.finished.disconnect(self._finished)
        self.task.finished.connect(self._job_done)
        self._build()
        self._update()

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        col = QVBoxLayout(self)
        self.steps = QLabel()
        col.addWidget(self.steps)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._collect_page())
        self.pages.addWidget(self._calibrate_page())
        self.pages.addWidget(self._review_page())
        self.pages.addWidget(self._teach_page())
        col.addWidget(self.pages, 1)
        col.addWidget(self.progress)
        row = QHBoxLayout()
        self.next_button = QPushButton()
        self.next_button.clicked.connect(self.next_step)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        for b in (self.next_button, self.use_button, self.discard_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        col.addLayout(row)

    def _collect_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        intro = QLabel(
            "Put a slide stained as usual under this microscope and press Collect: a field "
            f"is taken every {COLLECT_EVERY_MS / 1000:g} s while you move the stage to new "
            "areas. About 100 white cells is plenty."
        )
        intro.setWordWrap(True)
        col.addWidget(intro)
        row = QHBoxLayout()
        self.collect_button = QPushButton(f"Collect {COLLECT_FIELDS} fields as I move the slide")
        self.collect_button.clicked.connect(self.start_collecting)
        self.add_field_button = QPushButton("Add this field")
        self.add_field_button.clicked.connect(self.add_current_field)
        self.folder_button = QPushButton("Add fields from a folder…")
        self.folder_button.clicked.connect(self._choose_folder)
        for b in (self.collect_button, self.add_field_button, self.folder_button):
            row.addWidget(b)
        col.addLayout(row)
        self.count = QLabel()
        col.addWidget(self.count)
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(48, 48))
        col.addWidget(self.thumbs, 1)
        return page

    def _calibrate_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        text = QLabel(
            "Calibrating: the model's normalisation and its unlike-the-training-images check "
            "are re-based on this microscope's cells (no labels needed), then it suggests a "
            "class for every collected cell."
        )
        text.setWordWrap(True)
        col.addWidget(text)
        col.addStretch(1)
        return page

    def _review_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        self.keys = QLabel()
        self.keys.setWordWrap(True)
        col.addWidget(self.keys)
        row = QHBoxLayout()
        self.tally = QLabel()
        self.tally.setWordWrap(True)
        row.addWidget(self.tally, 1)
        self.add_class_button = QPushButton("Add a class…")
        self.add_class_button.setToolTip(
            "A kind of cell the model does not know yet (blast, plasma cell, smudge cell, "
            "artefact, reactive lymphocyte…): label at least 4 of them to teach it"
        )
        self.add_class_button.clicked.connect(self._ask_class)
        row.addWidget(self.add_class_button)
        col.addLayout(row)
        self.class_note = QLabel()
        self.class_note.setWordWrap(True)
        col.addWidget(self.class_note)
        self.grid = ConfirmGrid(self.setup, self._update, self._ask_class)
        col.addWidget(self.grid, 1)
        self._show_keys()
        return page

    def _show_keys(self) -> None:
        self.keys.setText(keys_text(self.setup))

    def add_class(self, name: str) -> str | None:
        """Add a class the lab teaches (``adapt.classes``); None and a one-line note when
        the name cannot be one."""
        try:
            added = self.setup.add_class(name)
        except InputError as exc:
            self.class_note.setText(str(exc))
            return None
        self.class_note.setText(
            f"Class {added!r} added: label its cells in the grid (key "
            f"{self.setup.classes.index(added) + 1} or right-click); at least 4 teach it."
            if self.setup.classes.index(added) < 9
            else f"Class {added!r} added: right-click its cells to label them."
        )
        self._show_keys()
        self._update()
        return added

    def _ask_class(self) -> None:
        offer = [c for c in SUGGESTED if c not in self.setup.classes]
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

    def _teach_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        col.addWidget(self.report, 1)
        return page

    # -- step 1 -----------------------------------------------------------------------------
    def add_current_field(self) -> int:
        frame = self.current_frame()
        if frame is None:
            self.count.setText("No frame yet: wait for the live view.")
            return 0
        self._last_seq = frame.seq
        return self.add_images([frame.image])

    def add_images(self, images: list[Any]) -> int:
        found = 0
        for image in images:
            before = len(self.setup.crops)
            found += self.setup.add_field(image)
            for crop in self.setup.crops[before:]:
                self.thumbs.addItem(QListWidgetItem(QIcon(to_pixmap(crop, 48)), ""))
        self._update()
        return found

    def start_collecting(self) -> None:
        self._collect_left = COLLECT_FIELDS
        self._timer.start()
        self._update()

    def _collect_one(self) -> None:
        frame = self.current_frame()
        if frame is not None and frame.seq != self._last_seq:  # a new frame each time
            self._last_seq = frame.seq
            self.add_images([frame.image])
            self._collect_left -= 1
        if self._collect_left <= 0:
            self._timer.stop()
        self._update()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of fields from this microscope")
        if folder:
            self.add_images(read_fields(Path(folder), self.say))

    # -- steps 2-4: the jobs ---------------------------------------------------------------
    def next_step(self) -> None:
        page = self.pages.currentIndex()
        if page == 0 and self.setup.can_calibrate:
            self.pages.setCurrentIndex(1)
            self.run(lambda progress, cancel: self.setup.calibrate(progress, cancel), "calibration")
        elif page == 2 and self.setup.can_teach:
            self.pages.setCurrentIndex(3)
            self.report.setPlainText("Teaching the model the cells you confirmed…")

            def job(progress: Callable[[str, float], None], cancel: threading.Event) -> Any:
                return self.setup.teach(progress, cancel)

            self.run(job, "teaching")
        self._update()

    def _job_done(self, result: NewVersion) -> None:
        if self.pages.currentIndex() == 1:  # calibrated: the cells to confirm
            self.pages.setCurrentIndex(2)
            self.grid.fill()
            self.grid.setFocus()
        else:
            self._finished(result)
        self._update()

    def describe(self, result: NewVersion) -> str:
        return describe_setup(self.setup, result)

    # -- step 3: one key or click per cell (``confirm_grid``) ----------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.pages.currentIndex() != 2 or not self.grid.answer_key(event):
            super().keyPressEvent(event)

    # -- state ----------------------------------------------------------------------------------
    def _update(self) -> None:
        page = self.pages.currentIndex() if hasattr(self, "pages") else 0
        if hasattr(self, "steps"):
            self.steps.setText(
                "   ".join(f"<b>{s}</b>" if i == page else s for i, s in enumerate(STEPS))
            )
            n = len(self.setup.crops)
            collecting = self._timer.isActive()
            self.count.setText(
                f"{self.setup.fields} fields, {n} white cells"
                + (f" (collecting, {self._collect_left} fields to go)" if collecting else "")
            )
            for b in (self.collect_button, self.add_field_button, self.folder_button):
                b.setEnabled(not collecting and not self.busy)
            counts, wanted = self.setup.counts(), self.setup.wanted()
            new = set(self.setup.added)
            self.tally.setText(
                "Confirmed: "
                + ", ".join(
                    f"{c}{' (new)' if c in new else ''} {counts[c]}"
                    + ("" if wanted[c] == 0 else f"/{self.setup.per_class}")
                    for c in self.setup.classes
                )
            )
            labels = {0: "Calibrate", 1: "Calibrating…", 2: "Teach", 3: "Teaching…"}
            self.next_button.setText(labels.get(page, ""))
            ok = (page == 0 and self.setup.can_calibrate and not collecting) or (
                page == 2 and self.setup.can_teach
            )
            self.next_button.setEnabled(ok and not self.busy)
            self.next_button.setVisible(page < 3 or self.busy)
        super()._update()

    def done(self, code: int) -> None:
        self._timer.stop()
        super().done(code)
