"""Set up this microscope: one guided flow (``adapt.setup.MicroscopeSetup``) in four steps,
each a page: collect fields, calibrate, confirm or correct the suggested classes (one key
or click per cell), teach and see before → after on held-back cells, then use it. The
window remembers the result for this microscope (camera + objective)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QKeyEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from micro_app.adapt.classes import SUGGESTED
from micro_app.adapt.library import NewVersion
from micro_app.adapt.setup import SKIP, MicroscopeSetup
from micro_app.core.errors import InputError
from micro_app.core.frame import Frame
from micro_app.gui.adapt_dialog import AdaptDialog, read_fields
from micro_app.gui.gallery import to_pixmap

COLLECT_FIELDS = 10
COLLECT_EVERY_MS = 1500
ICON = 80
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
        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(ICON, ICON))
        self.grid.setGridSize(QSize(ICON + 40, ICON + 40))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.itemDoubleClicked.connect(lambda it: self._answer(self.grid.row(it), None))
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._cell_menu)
        col.addWidget(self.grid, 1)
        self._show_keys()
        return page

    def _show_keys(self) -> None:
        classes = self.setup.classes
        new = set(self.setup.added)
        keys = "  ".join(
            f"{k + 1}: {c}" + (" (new)" if c in new else "") for k, c in enumerate(classes[:9])
        )
        more = " Right-click a cell for every class." if len(classes) > 9 else ""
        self.keys.setText(
            f"Enter or Space: the suggestion is right.  {keys}  0: not a white cell.  Or "
            f"right-click a cell.{more}"
        )

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

    def _cell_menu(self, pos: QPoint) -> None:
        item = self.grid.itemAt(pos)
        if item is None:
            return
        row = self.grid.row(item)
        menu = QMenu(self)
        for c in self.setup.classes:
            menu.addAction(c, partial(self._answer, row, c))
        menu.addSeparator()
        menu.addAction(SKIP, lambda: self._answer(row, SKIP))
        menu.addAction("New class…", lambda: self._new_class_for(row))
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    def _new_class_for(self, row: int) -> None:
        """Add a class and give it to this cell."""
        before = len(self.setup.added)
        self._ask_class()
        if len(self.setup.added) > before:
            self._answer(row, self.setup.added[-1])

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
            self._fill_grid()
            self.grid.setFocus()
        else:
            self._finished(result)
        self._update()

    def describe(self, result: NewVersion) -> str:
        s = self.setup.summary()
        before, after = s["before"], s["after"]
        if not before.get("cells"):
            return (
                f"<b>Version {result.version}</b> is taught, but no labelled cell was held "
                "back to measure it: confirm more cells per class to see before → after."
            )
        taught = len(self.setup.labelled_set().train_labels)
        lines = [
            f"<b>Version {result.version}</b>, taught {taught} cells you confirmed, measured "
            f"on {before['cells']} held back (never trained on):",
            f"right class {before['accuracy']:.0%} → <b>{after['accuracy']:.0%}</b>; averaged "
            f"over classes {before['balanced_accuracy']:.0%} → {after['balanced_accuracy']:.0%}",
        ]
        added = set(s.get("added_classes") or [])
        for c, r in after.get("recall", {}).items():
            if c in added:
                lines.append(f"New class {c}: {r:.0%} of its held-back cells found.")
            else:
                lines.append(f"{c}: {before['recall'].get(c, 0):.0%} → {r:.0%}")
        for c in sorted(added - set(after.get("recall", {}))):
            lines.append(f"New class {c} taught (none of its cells was held back).")
        start = s["started_from"]
        held = start.get("labelled_right_class") or {}
        calibration = self.setup.calibrated.report if self.setup.calibrated else {}
        if calibration.get("normalisation") == "parent":
            lines.append(
                "Calibration kept the model's own normalisation ("
                + calibration["guard"]["reason"]
                + "); it added this microscope to the check for cells unlike the training "
                "images."
            )
        elif held.get("shipped") is not None:
            lines.append(
                f"Taught from the {start['model']} model (right on the {start['labelled_cells']}"
                f" cells you labelled: shipped {held['shipped']:.0%}, calibrated "
                f"{held['calibrated']:.0%})."
            )
        if s.get("pseudo"):
            lines.append(
                f"Also taught {s['pseudo']} of the other collected cells the model was sure of."
            )
        for c, n in (s.get("too_few") or {}).items():
            lines.append(f"{c}: only {n} labelled, not taught (label at least 4 to add the class).")
        lines.append(f"<b>{s['verdict'][0].upper()}{s['verdict'][1:]}.</b>")
        lines.append("Use it for this microscope, or discard it: the current model stays.")
        return "<p>" + "</p><p>".join(lines) + "</p>"

    # -- step 3: one key or click per cell -----------------------------------------------
    def _fill_grid(self) -> None:
        self.grid.clear()
        for s in self.setup.suggestions:
            item = QListWidgetItem(QIcon(to_pixmap(s.crop, ICON)), "")
            self.grid.addItem(item)
            self._show_item(item, s)
        start = self.setup.next_unlabelled()
        if start is not None:
            self.grid.setCurrentRow(start)

    def _show_item(self, item: QListWidgetItem, s: Any) -> None:
        if s.label is None:
            item.setText(f"{s.predicted}?")
        elif s.label == SKIP:
            item.setText("✗ not a cell")
        else:
            item.setText(("✓ " if s.label == s.predicted else "→ ") + s.label)

    def _answer(self, row: int, label: str | None) -> None:
        """``label`` None confirms the suggestion."""
        if not 0 <= row < len(self.setup.suggestions):
            return
        if label is None:
            self.setup.confirm(row)
        else:
            self.setup.label(row, label)
        item = self.grid.item(row)
        if item is not None:
            self._show_item(item, self.setup.suggestions[row])
        nxt = self.setup.next_unlabelled(row)
        if nxt is not None:
            self.grid.setCurrentRow(nxt)
        self._update()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.pages.currentIndex() != 2:
            super().keyPressEvent(event)
            return
        row, key, text = self.grid.currentRow(), event.key(), event.text()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self._answer(row, None)
        elif text == "0" or key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self._answer(row, SKIP)
        elif text.isdigit() and 1 <= int(text) <= min(9, len(self.setup.classes)):
            self._answer(row, self.setup.classes[int(text) - 1])
        else:
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
