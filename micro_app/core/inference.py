"""The inference thread: takes the newest frame of a mailbox, runs the engine on it and hands
``(frame, result)`` on; it never queues a backlog.

The whole iteration is guarded: an error in the engine or in what is done with its result
(counting, publishing) is reported through ``on_error`` and the next frame is taken. If the
thread itself dies (a bug outside the iteration), ``on_died`` hears why, so the run can say
it failed instead of looking alive while nothing is classified.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from micro_app.core.engine import Engine
from micro_app.core.frame import Frame
from micro_app.core.mailbox import Mailbox
from micro_app.core.results import FrameResult

log = logging.getLogger("micro_app")


class InferenceThread(threading.Thread):
    def __init__(
        self,
        engine: Callable[[], Engine],
        frames: Mailbox[Frame],
        on_result: Callable[[Frame, FrameResult], None],
        on_error: Callable[[Exception], object],
        on_died: Callable[[BaseException], None] | None = None,
        after_seq: int = 0,
    ) -> None:
        """``engine``: gives the engine to use for the next frame (changes take effect from
        the next frame). ``after_seq``: frames up to this one are not taken (a restart
        does not classify the last frame of the previous run again)."""
        super().__init__(name="inference", daemon=False)
        self._engine = engine
        self._frames = frames
        self._on_result = on_result
        self._on_error = on_error
        self._on_died = on_died
        self._stop_event = threading.Event()
        self._after = after_seq
        self.processed = 0  # frames classified
        self.skipped = 0  # frames that arrived while a previous one was being processed
        self.fps = 0.0

    def request_stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the thread itself failed: say so, not silence
            log.exception("the inference thread died")
            if self._on_died is not None:
                self._on_died(exc)

    def _loop(self) -> None:
        last_seq: int | None = self._after or None
        last_t: float | None = None
        while not self._stop_event.is_set():
            got = self._frames.get(timeout=0.1, after_seq=last_seq)
            if got is None:
                if self._frames.closed:
                    return
                continue
            seq, frame = got
            if last_seq is not None and seq > last_seq + 1:
                self.skipped += seq - last_seq - 1
            last_seq = seq
            try:
                still = frame.position is not None and frame.position.still
                result = self._engine().process(
                    frame.image, frame.seq, frame.timestamp, still=still
                )
                self._on_result(frame, result)
            except Exception as exc:  # one place reports worker errors: the on_error relay
                log.exception("inference failed on frame %d", frame.seq)
                self._on_error(exc)
                continue
            now = time.monotonic()
            if last_t is not None:
                inst = 1.0 / max(now - last_t, 1e-6)
                self.fps = inst if self.fps == 0 else 0.9 * self.fps + 0.1 * inst
            last_t = now
            self.processed += 1
