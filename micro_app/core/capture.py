"""The capture thread: owns a frame source and feeds its frames into a newest-wins mailbox.

Open, every read, property changes and close all happen on this one thread, as OpenCV cameras
require. Other threads talk to it through :meth:`CaptureThread.request_property`,
:meth:`CaptureThread.stop` and read-only snapshots (``fps``, ``properties_snapshot()``,
``info_snapshot()``).

``on_error`` is called **on the capture thread**; a GUI must forward it to its main thread
(a queued signal). A fatal error (the source failed to open or read) is reported once and ends
the thread; a failed property change is reported and capture goes on. There is no fall-back
to another source.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from micro_app.core.errors import MicroAppError, SourceError
from micro_app.core.frame import Frame
from micro_app.core.mailbox import Mailbox
from micro_app.core.sources.base import FrameSource, PropertyInfo

log = logging.getLogger("micro_app")

ErrorHandler = Callable[[Exception], None]
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 5.0)  # seconds between tries to reopen a lost camera
BLACK_LEVEL = 4.0  # mean grey below this: no light reaches the camera
STILL_SECONDS = 5.0  # an unchanged picture for this long: the camera or its driver froze


class EndReason(str, enum.Enum):
    """Why a capture thread finished."""

    STOPPED = "stopped"  # stop() was called
    END_OF_STREAM = "end_of_stream"  # a finite source (file, non-looping) ran out
    ERROR = "error"  # the source raised; see CaptureThread.error


class CaptureThread(threading.Thread):
    """Reads ``source`` in a loop and puts each frame into ``mailbox`` (non-daemon thread)."""

    def __init__(
        self,
        source: FrameSource,
        mailbox: Mailbox[Frame],
        on_error: ErrorHandler | None = None,
        *,
        close_mailbox_on_exit: bool = False,
        fps_window: int = 30,
        on_opened: Callable[[], None] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
        on_finished: Callable[[EndReason], None] | None = None,
        on_reconnecting: Callable[[], None] | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        """``on_opened``, ``on_frame`` and ``on_finished`` are called on the capture thread:
        after the source opened (and after each reconnection), after each frame went into
        the mailbox, and last of all with the reason the thread ended. A source with
        ``reconnects`` (a camera) that stops sending pictures is not given up:
        ``on_reconnecting`` is called, and it is opened again after ``retry_delays``
        (the last delay repeats) until it answers or the thread is stopped."""
        super().__init__(name=f"capture:{source.name}", daemon=False)
        if fps_window < 2:
            raise ValueError(f"fps_window must be at least 2 frames, got {fps_window!r}")
        self.source = source
        self.mailbox = mailbox
        self._on_error = on_error
        self._on_opened = on_opened
        self._on_frame = on_frame
        self._on_finished = on_finished
        self._on_reconnecting = on_reconnecting
        self._delays = retry_delays
        self._picture = _PictureWatch(source.name)
        self._close_mailbox = close_mailbox_on_exit
        self._stop_flag = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}  # newest request per property wins
        self._stamps: deque[float] = deque(maxlen=fps_window)
        self._properties: dict[str, PropertyInfo] = {}
        self._info: dict[str, Any] = {}
        #: Set once the source opened successfully (snapshots are then filled in).
        self.opened = threading.Event()
        #: Set when the thread has closed the source and is about to exit.
        self.finished = threading.Event()
        #: Why the thread ended; None while it runs.
        self.ended_reason: EndReason | None = None
        #: The fatal error that ended the thread, if any.
        self.error: Exception | None = None
        #: Frames put into the mailbox so far.
        self.frames = 0

    # ----------------------------------------------------------------- other threads
    def request_stop(self) -> None:
        """Ask the loop to end (no join): it ends within one frame period."""
        self._stop_flag.set()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Ask the loop to end and join; True if the thread is no longer alive.

        The loop checks the flag between reads, so a blocking camera read or a paced file
        source delays the end by at most one frame period.
        """
        self._stop_flag.set()
        if self.ident is None:  # never started
            return True
        if threading.current_thread() is not self:
            self.join(timeout)
        alive = self.is_alive()
        if alive:
            log.warning("capture thread for %s did not stop within %s s", self.source.name, timeout)
        return not alive

    def request_property(self, name: str, value: float) -> None:
        """Queue a property change; it is applied on the capture thread before the next read."""
        with self._lock:
            self._pending.pop(name, None)  # re-insert so the order follows the newest requests
            self._pending[name] = float(value)

    @property
    def fps(self) -> float:
        """Frames per second over the last ``fps_window`` frames.

        0.0 until two frames arrived, and again once no frame came for 2 seconds (a stall).
        """
        with self._lock:
            if len(self._stamps) < 2 or time.monotonic() - self._stamps[-1] > 2.0:
                return 0.0
            span = self._stamps[-1] - self._stamps[0]
            return (len(self._stamps) - 1) / span if span > 0 else 0.0

    def properties_snapshot(self) -> dict[str, PropertyInfo]:
        """The source's properties as last read on the capture thread (empty before open)."""
        with self._lock:
            return dict(self._properties)

    def info_snapshot(self) -> dict[str, Any]:
        """The source's ``describe()`` as last read on the capture thread (empty before open)."""
        with self._lock:
            return dict(self._info)

    # ----------------------------------------------------------------- capture thread
    def run(self) -> None:
        reason = EndReason.STOPPED
        try:
            if not self._stop_flag.is_set():
                self.source.open()
                self._refresh_snapshots()
                self.opened.set()
                self._call(self._on_opened)
                reason = self._loop()
        except Exception as exc:  # every worker error goes to the one handler
            reason = EndReason.ERROR
            self._fail(exc)
        finally:
            if not self._close_source():
                reason = EndReason.ERROR
            self.ended_reason = reason
            if self._close_mailbox:
                self.mailbox.close()
            log.info("capture from %s ended: %s", self.source.name, reason.value)
            self.finished.set()
            self._call(self._on_finished, reason)

    def _loop(self) -> EndReason:
        reconnects = bool(getattr(self.source, "reconnects", False))
        while not self._stop_flag.is_set():
            self._apply_pending()
            try:
                frame = self.source.read()
            except SourceError as exc:
                if not reconnects:
                    raise
                if not self._reconnect(exc):
                    return EndReason.STOPPED
                continue
            if frame is None:
                return EndReason.END_OF_STREAM
            if reconnects:
                problem = self._picture.check(frame)
                if problem is not None:
                    self._report(SourceError(problem))
            self.mailbox.put(frame)
            self.frames += 1
            with self._lock:
                self._stamps.append(time.monotonic())
            self._call(self._on_frame, frame)
        return EndReason.STOPPED

    def _reconnect(self, lost: Exception) -> bool:
        """Close the lost source and open it again with back-off; False when stopped first."""
        log.warning("%s lost (%s): reconnecting", self.source.name, lost)
        self._report(SourceError(f"{self.source.name}: camera lost ({lost}); reconnecting"))
        self._call(self._on_reconnecting)
        with self._lock:
            self._stamps.clear()  # no frame rate while there are no frames
        attempt = 0
        while True:
            try:
                self.source.close()
            except Exception as exc:  # closing a lost device may fail: it is gone anyway
                log.debug("closing %s after it was lost: %s", self.source.name, exc)
            delay = self._delays[min(attempt, len(self._delays) - 1)]
            if self._stop_flag.wait(delay):
                return False
            attempt += 1
            try:
                self.source.open()
            except Exception as exc:  # still gone: try again later
                log.info("%s still lost (try %d): %s", self.source.name, attempt, exc)
                continue
            self._refresh_snapshots()
            log.info("%s is back after %d tries", self.source.name, attempt)
            self._call(self._on_opened)
            return True

    def _apply_pending(self) -> None:
        with self._lock:
            if not self._pending:
                return
            pending = list(self._pending.items())
            self._pending.clear()
        for name, value in pending:
            try:
                self.source.set_property(name, value)
            except (MicroAppError, ValueError) as exc:
                log.warning("could not set %s=%s on %s: %s", name, value, self.source.name, exc)
                self._report(exc)
        self._refresh_snapshots()

    def _refresh_snapshots(self) -> None:
        props = self.source.properties()
        info = self.source.describe()
        with self._lock:
            self._properties = props
            self._info = info

    def _close_source(self) -> bool:
        """Close the source; False if that failed and was the first error (now reported)."""
        try:
            self.source.close()
        except Exception as exc:
            if self.error is None:
                self._fail(exc)
                return False
            log.warning("closing %s after an error also failed: %s", self.source.name, exc)
        return True

    def _fail(self, exc: Exception) -> None:
        if self.error is not None:
            return
        self.error = exc
        # Device failures are expected events; anything else is a bug worth a traceback.
        trace = None if isinstance(exc, SourceError) else exc
        log.error("capture from %s failed: %s", self.source.name, exc, exc_info=trace)
        self._report(exc)

    def _call(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("a callback of the capture thread raised")

    def _report(self, exc: Exception) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(exc)
        except Exception:
            log.exception("the on_error handler of the capture thread raised")


class _PictureWatch:
    """Says once when a live camera's picture turns black (lamp off, shutter closed) or stops
    changing at all (a frozen camera or driver; a real camera always has some noise), and
    once more when it is back to normal."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._last: Any = None
        self._changed = time.monotonic()
        self._said: str | None = None

    def check(self, frame: Frame) -> str | None:
        small = frame.image[::16, ::16]
        now = time.monotonic()
        if self._last is None or small.shape != self._last.shape or (small != self._last).any():
            self._changed = now
        self._last = small
        problem = None
        if float(small.mean()) < BLACK_LEVEL:
            problem = f"{self.name} sends black pictures: check the lamp, the shutter and the cap"
        elif now - self._changed > STILL_SECONDS:
            problem = (
                f"the picture from {self.name} has not changed for {STILL_SECONDS:g} s: the "
                "camera or its driver may be frozen; unplug and plug it in again"
            )
        if problem == self._said:
            return None
        said_before, self._said = self._said, problem
        if problem is None:
            return f"{self.name}: the picture is back to normal" if said_before else None
        return problem
