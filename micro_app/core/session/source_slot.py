"""The source side of a live run: the frame source in use and the capture thread that owns
it. Replacing the source never waits for the old one to close: the old thread is asked to
stop and ends on its own, and from then on its callbacks change nothing (``_current``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from micro_app.core.capture import RETRY_DELAYS, CaptureThread, EndReason
from micro_app.core.frame import Frame
from micro_app.core.mailbox import Mailbox
from micro_app.core.sources.base import FrameSource
from micro_app.core.workers import Workers


class SourceSlot:
    def __init__(
        self,
        source: FrameSource | None,
        frames: Mailbox[Frame],
        workers: Workers,
        *,
        on_error: Callable[[Exception], object],
        on_opened: Callable[[], None],
        on_frame: Callable[[Frame], None],
        on_finished: Callable[[EndReason, Exception | None], None],
        on_reconnecting: Callable[[], None],
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.source = source
        self._frames = frames
        self._workers = workers
        self._on_error = on_error
        self._on_opened = on_opened
        self._on_frame = on_frame
        self._on_finished = on_finished
        self._on_reconnecting = on_reconnecting
        self._retry_delays = retry_delays
        self._capture: CaptureThread | None = None
        self._last: CaptureThread | None = None  # its figures stay in the status

    @property
    def name(self) -> str:
        return self.source.name if self.source is not None else "no source"

    def start(self) -> None:
        """Start capturing from the source (nothing without one)."""
        if self.source is None:
            return
        capture = CaptureThread(
            self.source,
            self._frames,
            on_error=self._current(self._on_error),
            on_opened=self._current(self._on_opened),
            on_frame=self._current(self._on_frame),
            on_finished=self._current(self._finished),
            on_reconnecting=self._current(self._on_reconnecting),
            retry_delays=self._retry_delays,
        )
        self._capture = self._last = capture
        self._workers.start("capture", capture)

    def release(self) -> None:
        """Ask the capture thread to stop, without waiting; it is no longer current."""
        old, self._capture = self._capture, None
        if old is not None:
            old.request_stop()

    def replace(self, source: FrameSource, running: bool) -> None:
        self.release()
        self.source = source
        if running:
            self.start()

    def _current(self, callback: Callable[..., object]) -> Callable[..., None]:
        """``callback`` as long as it comes from the current capture thread: an old one,
        being replaced or stopped, changes nothing of this run."""

        def call(*args: Any) -> None:
            if threading.current_thread() is self._capture:
                callback(*args)

        return call

    def _finished(self, reason: EndReason) -> None:
        capture = self._capture
        self._on_finished(reason, capture.error if capture is not None else None)

    # -- read without touching the device -------------------------------------------------
    def figures(self) -> tuple[dict[str, Any], float, int]:
        """The source's info, camera fps (0 once replaced) and frames delivered."""
        capture = self._capture or self._last
        if capture is None:
            return {}, 0.0, 0
        fps = capture.fps if capture is self._capture else 0.0
        return capture.info_snapshot(), fps, capture.frames

    def info(self) -> dict[str, Any]:
        capture = self._capture
        return capture.info_snapshot() if capture is not None else {}

    def properties(self) -> dict[str, Any]:
        capture = self._capture
        return capture.properties_snapshot() if capture is not None else {}

    def request_property(self, name: str, value: float) -> None:
        capture = self._capture
        if capture is not None:
            capture.request_property(name, value)
