"""The window's count as a user reads it (issue 20, "numbers that disagree on one screen"):
the bar says the count, provisional cells are in no percentage, every row is in view at
1600x1000, the unlike-the-training-images warning is said once, and the status bar says
what ``micro-app live`` says about frames."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import close_window as close
from conftest import make_window
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication, QLabel, QScrollArea

from micro_app.core.frame import Frame, SlidePosition
from micro_app.core.geometry import Box
from micro_app.core.results import CellResult, FrameResult
from micro_app.core.session import LiveUpdate
from micro_app.core.slide import CountStatus, SlideSession
from micro_app.gui.results_panel import ResultsPanel
from micro_app.status_text import status_line

pytestmark = pytest.mark.slow

PBC = (
    "basophil",
    "eosinophil",
    "erythroblast",
    "ig",
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
)
MODEL = {"name": "m", "version": "1", "classes": list(PBC)}


def _count(cells: list[tuple[str, bool]], target: int = 100) -> CountStatus:
    """The count of still fields holding ``(label, unlike the training images)`` cells,
    one per field, as the slide counts them."""
    slide = SlideSession(target=target)
    for i, (label, unlike) in enumerate(cells):
        # below the threshold (0.5) everywhere: unidentified
        probs = {label: 0.9} if label in PBC else {"neutrophil": 0.4, "monocyte": 0.3, "ig": 0.3}
        cell = CellResult(Box(100, 100, 160, 160), Box(115, 115, 145, 145), label, 0.9, probs)
        cell = CellResult(**{**cell.__dict__, "unlike_training": unlike})
        result = FrameResult(i, 0.0, (480, 640), (cell,), 0.1, "estimated", 1.0, model=MODEL)
        slide.add_result(result, None, SlidePosition(f"field_{i}", still=True))
    return slide.status()


def test_the_bar_says_the_count_also_past_the_target(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Before: "100 / 100 cells" while the table counted 258."""
    panel = ResultsPanel(100)
    qtbot.addWidget(panel)
    panel.set_classes(list(PBC))
    panel.show_count(_count([("neutrophil", False)] * 258))
    bar = panel.progress
    assert bar.text() == "258 cells (target 100)" and bar.value() == bar.maximum()
    panel.show_count(_count([("neutrophil", False)] * 58))
    assert bar.text() == "58 / 100 cells" and bar.value() == 58


def test_provisional_cells_are_in_no_percentage(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Before: provisional rows showed a percentage although the note promised none."""
    panel = ResultsPanel(100)
    qtbot.addWidget(panel)
    panel.set_classes(list(PBC))
    cells = [("neutrophil", False)] * 6 + [("neutrophil", True)] * 2
    cells += [("lymphocyte", False)] * 2 + [("unidentified", True)] * 3
    status = _count(cells)
    panel.show_count(status)
    table = panel.table
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount())}

    def row(label: str) -> tuple[str, str]:
        return table.item(rows[label], 1).text(), table.item(rows[label], 2).text()

    # shares are of the 8 cells whose class stands; the provisional ones are set aside
    assert table.horizontalHeaderItem(2).text() == "% of 8"
    assert row("neutrophil") == ("8 (2 provisional)", "75.0")
    assert row("lymphocyte") == ("2", "25.0")
    assert row("unidentified") == ("3 (3 provisional)", "–")
    assert row("basophil") == ("0", "0.0")
    # the terminal and the report read the same share from the count
    assert status.shown_share("neutrophil") == 75.0 and status.shown_share("unidentified") is None


def _in_view(widget: QLabel | object, scroll: QScrollArea) -> bool:
    """Whether the widget's whole height lies inside the scroll area's visible part."""
    top = widget.mapTo(scroll.viewport(), QPoint(0, 0)).y()  # type: ignore[attr-defined]
    return top >= 0 and top + widget.height() <= scroll.viewport().height()  # type: ignore[attr-defined]


def test_every_row_of_the_count_is_in_view_at_1600x1000(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Before: a six-row table hid neutrophil, platelet and unidentified below a scroll."""
    window = make_window(qtbot, tmp_path, "demo", None)
    window.qt._timer.stop()  # the count shown is the one given here
    assert (window.width(), window.height()) == (1600, 1000)
    panel = window.results
    panel.set_classes(list(PBC))
    cells = [(c, False) for c in PBC for _ in range(5)] + [("unidentified", True)] * 4
    panel.show_count(_count(cells + [("atypical", False)] * 9))
    qtbot.wait(50)
    table = panel.table
    assert table.rowCount() == 10  # eight classes, atypical, unidentified
    for r in range(table.rowCount()):
        y, label = table.rowViewportPosition(r), table.item(r, 0).text()
        assert y >= 0 and y + table.rowHeight(r) <= table.viewport().height(), label
    scroll = next(
        w for w in window.findChildren(QScrollArea) if w.widget() is panel
    )  # the dock's scroll area
    assert _in_view(table, scroll), "the table reaches below the results dock"
    assert _in_view(panel.warning, scroll)  # the alert (atypical above 2%) too
    assert "atypical" in panel.warning.text()
    close(window)


def test_cells_unlike_the_training_images_are_said_once(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Before: the amber note said 94% (its moving share) and the red text under the
    count 92% (the count's), each with its own sentence; now the note alone says it, with
    the count's figure, the one ``micro-app live`` and the report print."""
    window = make_window(qtbot, tmp_path, "demo", None)
    window.qt._timer.stop()  # the updates shown are the ones given here
    status = _count([("neutrophil", True)] * 11 + [("lymphocyte", False)])
    frame = Frame(np.zeros((480, 640, 3), np.uint8), 1, time.monotonic(), "field")
    result = FrameResult(1, 0.0, (480, 640), (), 0.1, "estimated", 1.0, unlike_share=0.94)
    window._on_update(LiveUpdate(frame, result, (), (), (), status))
    QApplication.processEvents()
    note = window.input_note.text()
    assert note.startswith("11 of 12 cells are provisional")
    assert "94%" not in note and "92%" not in note
    shown = [w.text() for w in window.findChildren(QLabel) if w.isVisible()]
    said = [t for t in shown if "unlike the model's training images" in t]
    assert said == [window.input_note.label.text()]
    assert "provisional" not in window.results.warning.text()
    close(window)


def test_the_status_bar_and_the_terminal_say_the_same_about_frames(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Before: the window said "dropped 90" (frames it never drew) where ``live`` said
    "classified X of Y frames"; the model taking the newest frame is not a loss."""
    window = make_window(qtbot, tmp_path, "demo", None)
    qtbot.waitUntil(lambda: window.session.status().classified > 3, timeout=20000)
    window._update_status()
    bar = window.status_label.text()
    st = window.session.status()
    terminal = status_line(st)
    for text in (bar, terminal):
        assert "dropped" not in text
        assert " frames (the newest each time)" in text and "classified " in text
    assert "camera " in bar and "shown " in bar  # the window adds how fast it shows them
    close(window)
