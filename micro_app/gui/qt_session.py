"""The Qt side of a ``LiveSession``: its events as Qt signals on the GUI thread.

State changes, errors and finished writes are relayed as they come: a Qt signal emitted
from a worker thread reaches slots on the GUI thread by a queued connection. Frames and
classified frames are not queued one by one (a busy GUI would build a backlog): a timer
looks at the session's newest frame and update and emits only when the sequence number
changed, as pymmcore-widgets' image preview does.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from micro_app.core.session import LiveSession

POLL_MS = 10


class QtSession(QObject):
    frame_ready = Signal(object)  # Frame, the newest
    update_ready = Signal(object)  # LiveUpdate, the newest
    status_changed = Signal(object)  # SessionStatus
    error = Signal(object)  # ErrorEvent, every occurrence
    snapshot_saved = Signal(object)  # SavedSnapshot
    slide_finished = Signal(object)  # SlideReport

    def __init__(self, session: LiveSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._frame_seq = 0
        self._update_seq = 0
        self._shown: deque[float] = deque(maxlen=30)
        self.intervals_ms: deque[float] = deque(maxlen=5000)  # between frames handed to the view
        self.not_shown = 0  # camera frames never handed to the view (the window fell behind)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        # keep the bound relays: disconnecting needs the very objects connected
        ev = session.events
        self._relays: list[tuple[Any, Any]] = [
            (ev.status_changed, self.status_changed.emit),
            (ev.error, self.error.emit),
            (ev.snapshot_saved, self.snapshot_saved.emit),
            (ev.slide_finished, self.slide_finished.emit),
        ]
        for signal, slot in self._relays:
            signal.connect(slot)

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        self.session.start()
        self._timer.start()

    def stop(self, wait: float = 5.0) -> list[str]:
        """Stop polling, stop the session (all its threads within ``wait`` s together) and
        let go of its events; returns the threads still stopping."""
        self._timer.stop()
        left = self.session.stop(wait)
        for signal, slot in self._relays:
            signal.disconnect(slot)
        self._relays = []
        return left

    @property
    def polling(self) -> bool:
        return self._timer.isActive()

    # -- newest wins -------------------------------------------------------------------------
    def _poll(self) -> None:
        got = self.session.latest_frame()
        if got is not None and got[0] != self._frame_seq:
            if self._frame_seq and got[0] > self._frame_seq + 1:  # came and went between polls
                self.not_shown += got[0] - self._frame_seq - 1
            self._frame_seq = got[0]
            now = time.monotonic()
            if self._shown:
                self.intervals_ms.append((now - self._shown[-1]) * 1000)
            self._shown.append(now)
            self.frame_ready.emit(got[1])
        upd = self.session.latest_update()
        if upd is not None and upd[0] != self._update_seq:
            self._update_seq = upd[0]
            self.update_ready.emit(upd[1])

    def display_fps(self) -> float:
        """Frames handed to the view per second over the last 30; 0 after a 2 s stall."""
        t = self._shown
        if len(t) < 2 or time.monotonic() - t[-1] > 2.0 or t[-1] <= t[0]:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])
