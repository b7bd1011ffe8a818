"""The live session's events, and the one signal type that carries them.

Like pymmcore-plus's MDA runner, the core declares *what* it emits (``SessionEvents``: a
few named signals) with plain thread-safe callbacks (``Signal`` below, no dependency). One
backend only: psygnal, tried as a second one, stops the other listeners when one raises,
which this module promises never happens. The window adds its own Qt adapter
(``micro_app.gui.qt_session``), so that nothing in the core imports Qt.

Every signal is emitted from a worker thread (capture, inference, model jobs) unless noted.
A callback that raises is logged and never stops the worker or the other callbacks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("micro_app")


class Signal:
    """A thread-safe list of callbacks: ``connect``, ``disconnect``, ``emit(*args)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._slots: list[Callable[..., Any]] = []
        self._lock = threading.Lock()

    def connect(self, slot: Callable[..., Any]) -> Callable[..., Any]:
        with self._lock:
            self._slots.append(slot)
        return slot

    def disconnect(self, slot: Callable[..., Any]) -> None:
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        with self._lock:
            slots = list(self._slots)
        for slot in slots:
            try:
                slot(*args)
            except Exception:  # a listener's bug must not stop the worker that emits
                log.exception("a listener of %s failed", self.name)


class SessionEvents:
    """``frame_ready(Frame)``: a new camera frame (capture thread).
    ``result_ready(LiveUpdate)``: a frame classified and counted (inference thread).
    ``status_changed(SessionStatus)``: the run's or the model's state changed.
    ``error(ErrorEvent)``: any worker error, each occurrence, with where it came from.
    ``snapshot_saved(SavedSnapshot)``, ``slide_finished(SlideReport)``: written (writer
    thread)."""

    NAMES = (
        "frame_ready",
        "result_ready",
        "status_changed",
        "error",
        "snapshot_saved",
        "slide_finished",
    )

    def __init__(self) -> None:
        self.frame_ready = Signal("frame_ready")
        self.result_ready = Signal("result_ready")
        self.status_changed = Signal("status_changed")
        self.error = Signal("error")
        self.snapshot_saved = Signal("snapshot_saved")
        self.slide_finished = Signal("slide_finished")
