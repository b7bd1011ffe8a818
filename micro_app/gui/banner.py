"""The error banner above the live view: every occurrence of an error is shown (a camera
unplugged twice is said twice, with a count), and the app keeps running."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget


class ErrorBanner(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setStyleSheet("background:#fce8e6;color:#a50e0e;padding:6px;border-radius:4px")
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(dismiss)
        self.counts: dict[str, int] = {}
        self.shown = 0  # errors shown since the window opened
        self.hide()

    def show_error(self, message: str, count: int | None = None) -> None:
        """Show ``message``; ``count`` is how often it occurred (counted here if None)."""
        n = count if count is not None else self.counts.get(message, 0) + 1
        self.counts[message] = n
        self.shown += 1
        again = f" (×{n}, last at {time.strftime('%H:%M:%S')})" if n > 1 else ""
        self.label.setText(message + again)
        self.show()

    def text(self) -> str:
        return self.label.text()


class UnlikeNote(QWidget):
    """The calm amber line shown while the cells look unlike the model's training images,
    with the way out: set the model up for this microscope."""

    def __init__(self) -> None:
        super().__init__()
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setStyleSheet("background:#fef7e0;color:#8a4b00;padding:6px;border-radius:4px")
        self.setup_button = QPushButton("Set up this microscope…")
        self.setup_button.setToolTip(
            "About ten minutes: collect fields, calibrate, confirm some cells, teach"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.setup_button)
        self.hide()

    def show_note(self, text: str | None) -> None:
        if text is None:
            self.hide()
            return
        end = "" if text.rstrip().endswith((".", "!", "?")) else "."
        self.label.setText(
            text.rstrip() + end + " Cells are shown and counted as provisional (a '?', no "
            "percentage)."
        )
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
