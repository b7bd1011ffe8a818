"""What the calibrate and teach dialogs share: a job on a worker thread with a progress
bar and a report, and a new model version the user then uses or discards."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QProgressBar, QPushButton, QTextBrowser, QWidget

from micro_app.adapt.library import NewVersion
from micro_app.core.errors import MicroAppError
from micro_app.gui.background import BackgroundTask


class AdaptDialog(QDialog):
    """Subclasses build their layout with ``self.progress``, ``self.report``,
    ``self.use_button`` and ``self.discard_button``, and keep buttons right in
    ``_update``. ``outcome`` is the job's result, an ``adapt.library.NewVersion``."""

    use_model = Signal(str)  # folder of the package to switch to

    def __init__(self, use_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outcome: NewVersion | None = None
        self.busy = False  # a job runs; set here, not read off the thread, which outlives
        # its last signal by a moment
        self.task = BackgroundTask(self)
        self.task.progress.connect(self._progress)
        self.task.finished.connect(self._finished)
        self.task.failed.connect(self._failed)
        for signal in (self.task.finished, self.task.failed, self.task.cancelled):
            signal.connect(self._idle)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.report = QTextBrowser()
        self.use_button = QPushButton(use_text)
        self.use_button.clicked.connect(self._use)
        self.discard_button = QPushButton("Discard it")
        self.discard_button.clicked.connect(self._discard)

    def run(self, job: Any, name: str) -> bool:
        """Start ``job`` on the worker thread (False: one is still running)."""
        started = self.task.start(job, name)
        self.busy = self.busy or started
        self._update()
        return started

    def _idle(self, *_: object) -> None:
        self.busy = False
        self._update()

    def _update(self) -> None:
        self.use_button.setEnabled(self.outcome is not None)
        self.discard_button.setEnabled(self.outcome is not None)

    def _progress(self, text: str, share: float) -> None:
        self.progress.setValue(round(share * 100))
        self.progress.setFormat(f"{text} (%p%)")

    def _finished(self, result: NewVersion) -> None:
        self.outcome = result
        self.report.setHtml(self.describe(result))
        self._update()

    def describe(self, result: NewVersion) -> str:
        raise NotImplementedError

    def say(self, line: str) -> None:
        """One line in the dialog's report (a skipped file, a folder without images)."""
        self.report.append(line)

    def _failed(self, message: str) -> None:
        self.report.setPlainText(message)
        self.progress.setValue(0)
        self._update()

    def _use(self) -> None:
        if self.outcome is not None:
            self.use_model.emit(str(self.outcome.package))
            self.accept()

    def _discard(self) -> None:
        """The new version was never used: remove it; the current model stays."""
        if self.outcome is not None:
            shutil.rmtree(Path(self.outcome.package), ignore_errors=True)
            self.report.setPlainText(f"Discarded {self.outcome.version}; the current model stays.")
            self.outcome = None
            self._update()

    def done(self, code: int) -> None:
        self.task.stop()
        super().done(code)


def read_fields(folder: Path, say: Callable[[str], None]) -> list[np.ndarray]:
    """The images of ``folder``; an unreadable file, or a folder with none, is one line
    through ``say`` (never an exception inside a Qt slot)."""
    from micro_app.core.imageio import expand_inputs, is_image, read_image_rgb

    try:
        paths = [p for p in expand_inputs([folder]) if is_image(p)]
    except (OSError, MicroAppError) as exc:
        say(f"{folder} could not be read ({exc}): choose another folder")
        return []
    images = []
    for p in paths:
        try:
            images.append(read_image_rgb(p))
        except (OSError, MicroAppError, ValueError) as exc:  # reported; the rest are used
            say(f"skipped {p.name}: {exc}")
    if not paths:
        say(f"{folder} holds no images (.png, .jpg, .tif, .bmp): choose another folder")
    return images
