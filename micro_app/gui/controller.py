"""Qt side of the live pipeline: polls the core's mailboxes on a timer and relays errors.

The camera and inference threads are plain Python threads from the core. This object
lives on the GUI thread: a QTimer looks at the mailboxes and emits a signal only when a
sequence number changed (newest frame wins; nothing queues up). Worker errors arrive via a
signal, which Qt delivers on the GUI thread.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from micro_app.core.engine import Engine
from micro_app.core.errors import MicroAppError
from micro_app.core.live import LivePipeline

log = logging.getLogger("micro_app")


class LiveController(QObject):
    frame_ready = Signal(object)  # Frame
    result_ready = Signal(object, object)  # Frame, FrameResult
    error = Signal(str)
    source_ended = Signal(str)

    def __init__(self, engine: Engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.pipeline: LivePipeline | None = None
        self.spec = ""
        self._frame_seq = 0
        self._result_seq = 0
        self._display_times: deque[float] = deque(maxlen=30)
        self._ended_reported = False
        self._timer = QTimer(self)
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._poll)
        self.error.connect(lambda msg: log.warning("shown to user: %s", msg))
        self._relay = _ErrorRelay()
        self._relay.message.connect(self.error)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, spec: str, rate: float | None = None) -> None:
        """Open ``spec`` ("demo", "camera:N" or a path); a failure is reported, not raised."""
        self.stop()
        self.spec = spec
        self._frame_seq = self._result_seq = 0
        self._ended_reported = False
        if rate is None and not spec.startswith("camera"):
            rate = 30.0
        try:
            self.pipeline = LivePipeline(self.engine, spec, rate=rate, on_error=self._relay.relay)
        except MicroAppError as exc:  # a source that cannot be built: one line in the window
            self.error.emit(str(exc))
            return
        self.pipeline.start()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None

    def set_engine(self, engine: Engine) -> None:
        self.engine = engine
        if self.pipeline is not None:
            self.pipeline.inference.set_engine(engine)

    def request_property(self, name: str, value: float) -> None:
        if self.pipeline is not None:
            self.pipeline.capture.request_property(name, value)

    # -- polling ------------------------------------------------------------------------------
    def _poll(self) -> None:
        pipe = self.pipeline
        if pipe is None:
            return
        got = pipe.frames.latest()
        if got is not None and got[0] != self._frame_seq:
            self._frame_seq = got[0]
            self._display_times.append(time.monotonic())
            self.frame_ready.emit(got[1])
        res = pipe.results.latest()
        if res is not None and res[0] != self._result_seq:
            self._result_seq = res[0]
            self.result_ready.emit(*res[1])
        if (
            not self._ended_reported
            and pipe.capture.finished.is_set()
            and pipe.capture.error is None
        ):
            self._ended_reported = True
            self.source_ended.emit(f"{pipe.source.name}: end of the recording")

    # -- status -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        pipe = self.pipeline
        if pipe is None:
            return {"source": "none"}
        t = self._display_times
        display_fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
        if t and time.monotonic() - t[-1] > 2.0:
            display_fps = 0.0
        info = pipe.capture.info_snapshot()
        pair = pipe.latest_pair()
        return {
            "source": pipe.source.name,
            "resolution": f"{info.get('width') or '?'}x{info.get('height') or '?'}",
            "display_fps": display_fps,
            "camera_fps": pipe.capture.fps,
            "inference_fps": pipe.inference.fps,
            "latency_ms": pair[1].latency_ms if pair else 0.0,
            "dropped": pipe.frames.dropped,
            "device": self.engine.device if self.engine.classifier else "no model",
        }


class _ErrorRelay(QObject):
    """Called from worker threads; the signal crosses to the GUI thread by a queued connection."""

    message = Signal(str)

    def relay(self, exc: Exception) -> None:
        self.message.emit(str(exc) or type(exc).__name__)
