"""The error banner above the live view: every occurrence of an error is shown (a camera
unplugged twice is said twice, with a count), and the app keeps running."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from micro_app.core.slide import CountStatus


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


IN_VIEW = (
    "The cells in view look unlike the model's training images (stain, camera, lamp or "
    "magnification differ): their classes are provisional until the model is set up for "
    "this microscope"
)


class UnlikeNote(QWidget):
    """The calm amber line shown while the cells look unlike the model's training images,
    with the way out: set the model up for this microscope. The one place the window says
    it, with the count's own figure (the one ``micro-app live`` and the report print)."""

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

    def show_count(self, in_view: bool, status: CountStatus) -> None:
        """Shown while the cells in view look unlike the training images (``in_view``,
        the window's calm moving check) or the count holds provisional cells; it says
        the count's figure once there is one, and no figure before."""
        line = status.provisional_line()
        if line is None and not in_view:
            self.hide()
            return
        self.show_note(line or IN_VIEW)

    def show_note(self, text: str | None) -> None:
        if text is None:
            self.hide()
            return
        end = "" if text.rstrip().endswith((".", "!", "?")) else "."
        shown = text.rstrip() + end + " On the view they carry a '?'."
        if self.label.text() != shown:
            self.label.setText(shown)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
