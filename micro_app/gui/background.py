"""Run a long job (calibration, teaching) on a worker thread; report back by signal.

The job is a plain function ``job(progress, cancel) -> result`` from the core; it never
touches a widget. Progress, the result and errors cross to the GUI thread as queued
signals; a failure is also relayed to the window's banner by whoever opens the dialog.
``stop()`` asks the job to cancel (a job that can stop raises ``Cancelled``) and waits a
few seconds at most; dialogs call it on close.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from micro_app.core.errors import MicroAppError

log = logging.getLogger("micro_app")
Job = Callable[[Callable[[str, float], None], threading.Event], Any]


class BackgroundTask(QObject):
    progress = Signal(str, float)  # text, share done 0..1
    finished = Signal(object)  # the job's result
    failed = Signal(str)  # one line for the user
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, job: Job, name: str = "background") -> bool:
        if self.running:
            return False
        self._cancel = threading.Event()
        cancel = self._cancel

        def work() -> None:
            from micro_app.adapt.teach import Cancelled

            try:
                result = job(self.progress.emit, cancel)
            except Cancelled:
                self.cancelled.emit()
            except MicroAppError as exc:
                self.failed.emit(str(exc))
            except Exception as exc:  # one place reports worker errors: the failed signal
                log.exception("%s failed", name)
                self.failed.emit(f"{name} failed ({exc}); see the log file for details")
            else:
                self.finished.emit(result)

        self._thread = threading.Thread(target=work, name=name, daemon=False)
        self._thread.start()
        return True

    def cancel(self) -> None:
        self._cancel.set()

    def stop(self, wait: float = 5.0) -> None:
        """Ask the job to stop and wait up to ``wait`` s: calibration and teaching stop at
        their next step; a step that cannot be cut (writing a package) ends on its own
        after the dialog has closed, and is logged, not waited for."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(wait)
            if self._thread.is_alive():
                log.info(
                    "%s is finishing its current step after the dialog closed", self._thread.name
                )
