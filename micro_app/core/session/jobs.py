"""The session's jobs thread: model loads (and other slow jobs) one at a time, off the view.

A daemon thread: a model load cannot be interrupted, and quitting must not wait for one
(a load writes nothing). The queue is bounded; loads merge before they get here
(``ModelSlot``), so a full queue means a caller is flooding it, and it is refused.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from micro_app.core.errors import MicroAppError

log = logging.getLogger("micro_app")
Job = Callable[[], None]
QUEUE_SIZE = 16


class JobsThread(threading.Thread):
    def __init__(self, report: Callable[[str, BaseException], object]) -> None:
        super().__init__(name="session-jobs", daemon=True)
        self._queue: queue.Queue[Job] = queue.Queue(QUEUE_SIZE)
        self._stop_event = threading.Event()
        self._report = report

    def put(self, job: Job) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._report("job", MicroAppError("too many jobs are waiting: try again shortly"))

    def request_stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                job = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                job()
            except Exception as exc:  # a job's own errors are its to report; this is a bug
                self._report("job", exc)
