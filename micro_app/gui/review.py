"""Review in the window: the cell under the pointer, the selected cell (it stays selected
while it moves, by its id on the slide), and corrections, which go to the session's slide
count and, through ``remember``, to the labelled-cell store for teaching."""

from __future__ import annotations

import functools
from collections.abc import Callable

from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QMenu, QWidget

from micro_app.core.session import LiveSession, LiveUpdate
from micro_app.gui.results_panel import ResultsPanel


class CellReview:
    def __init__(
        self,
        parent: QWidget,
        session: LiveSession,
        results: ResultsPanel,
        *,
        remember: Callable[[int, str], None],
        say: Callable[[str, int], None],
        redraw: Callable[[], None],
    ) -> None:
        self._parent = parent
        self.session = session
        self.results = results
        self._remember = remember
        self._say = say
        self._redraw = redraw
        self.update: LiveUpdate | None = None
        self.selected_id: int | None = None  # the selected cell's id on the slide

    # -- the newest classified frame ----------------------------------------------------
    def set_update(self, update: LiveUpdate) -> None:
        if self.update is not None and update.frame.seq < self.update.frame.seq:
            self.selected_id = None  # the source restarted
        self.update = update
        if self.selected_id is not None:
            self._show(self.selected_index())

    def selected_index(self) -> int | None:
        """Where the selected cell is in the newest frame (None: out of view)."""
        u = self.update
        if u is None or self.selected_id is None or self.selected_id not in u.cell_ids:
            return None
        return u.cell_ids.index(self.selected_id)

    # -- pointer --------------------------------------------------------------------------
    def hover(self, x: float, y: float) -> None:
        if self.update is None or self.selected_id is not None:
            return
        self._show(self.update.result.cell_at(x, y))

    def click(self, x: float, y: float, right: bool) -> None:
        u = self.update
        if u is None:
            return
        i = u.result.cell_at(x, y)
        self.selected_id = u.cell_ids[i] if i is not None and i < len(u.cell_ids) else None
        self._show(i)
        self._redraw()
        if right and i is not None:
            menu = QMenu(self._parent)
            for k in range(self.results.correct_combo.count()):
                label = self.results.correct_combo.itemText(k)
                menu.addAction(label, functools.partial(self.correct, label))
            menu.popup(QCursor.pos())

    def _show(self, i: int | None) -> None:
        u = self.update
        if u is None or i is None or i >= len(u.result.cells):
            self.results.show_cell(None)
            self.results.set_review_enabled(False)
            return
        cell = u.result.cells[i]
        cid = u.cell_ids[i] if i < len(u.cell_ids) else None
        counted = self.session.counted_cell(cid) if cid is not None else None
        label = u.labels[i] if i < len(u.labels) else cell.label
        if counted is not None:
            title = f"cell #{cid}: {label} (counted; this frame {cell.confidence:.0%})"
            if counted.corrected:
                title = f"cell #{cid}: {counted.corrected}, corrected (model: {counted.predicted})"
        else:
            title = f"{cell.label} ({cell.confidence:.0%}), not yet counted"
        self.results.show_cell(cell, title)
        selected = self.selected_id is not None and self.selected_id == cid
        self.results.set_review_enabled(counted is not None and selected)

    # -- correcting ----------------------------------------------------------------------------
    def correct(self, label: str) -> None:
        cid = self.selected_id
        if cid is None or self.session.counted_cell(cid) is None:
            self._say("Select a counted cell first (click on it)", 4000)
            return
        self.session.correct(cid, label)
        self._remember(cid, label)
        self.results.show_count(self.session.count_status())
        self._say(f"cell #{cid} recorded as {label}", 4000)
        self._show(self.selected_index())
        self._redraw()
