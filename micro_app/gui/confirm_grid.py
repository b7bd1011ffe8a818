"""Step 3 of setting up a microscope: the collected cells, each with the class suggested
for it (``adapt.setup.MicroscopeSetup``), confirmed or corrected with one key or click per
cell: Enter or Space confirms, 1-9 picks a class, 0 says it is not a white cell, a right
click lists every class."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QIcon, QKeyEvent
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu

from micro_app.adapt.setup import SKIP, MicroscopeSetup
from micro_app.gui.gallery import to_pixmap

ICON = 80


def keys_text(setup: MicroscopeSetup) -> str:
    """The keys that answer a cell, as the set-up dialog lists them above the grid."""
    classes = setup.classes
    new = set(setup.added)
    keys = "  ".join(
        f"{k + 1}: {c}" + (" (new)" if c in new else "") for k, c in enumerate(classes[:9])
    )
    more = " Right-click a cell for every class." if len(classes) > 9 else ""
    return (
        f"Enter or Space: the suggestion is right.  {keys}  0: not a white cell.  Or "
        f"right-click a cell.{more}"
    )


class ConfirmGrid(QListWidget):
    """``changed``: called after each answer; ``ask_class``: asks the user for a class to
    add (the "New class…" entry of a cell's menu)."""

    def __init__(
        self,
        setup: MicroscopeSetup,
        changed: Callable[[], None],
        ask_class: Callable[[], None],
    ) -> None:
        super().__init__()
        self.setup = setup
        self._changed = changed
        self._ask_class = ask_class
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(ICON, ICON))
        self.setGridSize(QSize(ICON + 40, ICON + 40))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.itemDoubleClicked.connect(lambda it: self.answer(self.row(it), None))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._cell_menu)

    def fill(self) -> None:
        """One icon per suggested cell; the first unanswered one is the current."""
        self.clear()
        for s in self.setup.suggestions:
            item = QListWidgetItem(QIcon(to_pixmap(s.crop, ICON)), "")
            self.addItem(item)
            self._show_item(item, s)
        start = self.setup.next_unlabelled()
        if start is not None:
            self.setCurrentRow(start)

    def _show_item(self, item: QListWidgetItem, s: Any) -> None:
        if s.label is None:
            item.setText(f"{s.predicted}?")
        elif s.label == SKIP:
            item.setText("✗ not a cell")
        else:
            item.setText(("✓ " if s.label == s.predicted else "→ ") + s.label)

    def answer(self, row: int, label: str | None) -> None:
        """``label`` None confirms the suggestion."""
        if not 0 <= row < len(self.setup.suggestions):
            return
        if label is None:
            self.setup.confirm(row)
        else:
            self.setup.label(row, label)
        item = self.item(row)
        if item is not None:
            self._show_item(item, self.setup.suggestions[row])
        nxt = self.setup.next_unlabelled(row)
        if nxt is not None:
            self.setCurrentRow(nxt)
        self._changed()

    def answer_key(self, event: QKeyEvent) -> bool:
        """Answer the current cell with ``event``'s key; False when it is not an answer."""
        row, key, text = self.currentRow(), event.key(), event.text()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.answer(row, None)
        elif text == "0" or key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.answer(row, SKIP)
        elif text.isdigit() and 1 <= int(text) <= min(9, len(self.setup.classes)):
            self.answer(row, self.setup.classes[int(text) - 1])
        else:
            return False
        return True

    def _cell_menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        row = self.row(item)
        menu = QMenu(self)
        for c in self.setup.classes:
            menu.addAction(c, partial(self.answer, row, c))
        menu.addSeparator()
        menu.addAction(SKIP, lambda: self.answer(row, SKIP))
        menu.addAction("New class…", lambda: self._new_class_for(row))
        menu.exec(self.viewport().mapToGlobal(pos))

    def _new_class_for(self, row: int) -> None:
        """Add a class and give it to this cell."""
        before = len(self.setup.added)
        self._ask_class()
        if len(self.setup.added) > before:
            self.answer(row, self.setup.added[-1])
