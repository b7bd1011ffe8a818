"""The snapshot service: writes snapshots and the slide report on its own thread, so the
window never waits on the disk (a 1080p snapshot takes 57-80 ms) and counting never waits
on the report.

``snapshot`` and ``finish_slide`` return at once with a ``Future``; the work is done in the
order asked, and each completion is announced (``on_saved``, ``on_finished``), carrying the
thumbnail a gallery shows, so nothing re-reads the PNG. The queue is bounded: a request
that finds it full is refused with one line, never piled up. A failure is one line through
the relay; the run goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micro_app.core.errors import MicroAppError
from micro_app.core.export import SnapshotPaths
from micro_app.core.session.counter import SlideCounter
from micro_app.core.session.sinks import SavedSnapshot, SnapshotSink
from micro_app.core.session.state import LiveUpdate

log = logging.getLogger("micro_app")
QUEUE_SIZE = 8  # requests waiting for the disk; more are refused, never piled up


@dataclass(frozen=True)
class SlideReport:
    files: dict[str, Path]  # "csv", "json", "report"


class SnapshotService(threading.Thread):
    def __init__(
        self,
        sinks: list[SnapshotSink],
        counter: SlideCounter,
        *,
        report: Callable[[str, BaseException], object],
        on_saved: Callable[[SavedSnapshot], None],
        on_finished: Callable[[SlideReport], None],
    ) -> None:
        super().__init__(name="snapshots", daemon=False)
        self.sinks = list(sinks)
        self._counter = counter
        self._report = report
        self._on_saved = on_saved
        self._on_finished = on_finished
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(QUEUE_SIZE)
        self._stop_event = threading.Event()

    # -- asked from any thread -------------------------------------------------------------
    def snapshot(
        self, update: LiveUpdate, source: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> Future[SnapshotPaths | None]:
        """Write ``update`` to every sink; the first sink's paths are the result (None when
        every sink failed) and are kept for the slide report."""
        doc = {
            "slide": self._counter.name,
            "review": self._counter.review(update.cell_ids),
            "input": update.frame.input_record(),  # the file a replayed frame came from
        }
        doc.update(extra or {})
        return self._submit(lambda: self._write(update, source, doc), "snapshot")

    def finish_slide(
        self, folder: Path, model_card: dict[str, Any] | None, settings: dict[str, Any]
    ) -> Future[dict[str, Path] | None]:
        """Write the slide's CSV, JSON and report, after the snapshots asked for before."""
        slide = self._counter.frozen()  # copied under the count's lock, written outside it

        def job() -> dict[str, Path] | None:
            from micro_app.core.report import finish_slide

            try:
                files = finish_slide(slide, folder, model_card=model_card, settings=settings)
            except OSError as exc:
                self._report(
                    "report",
                    MicroAppError(
                        f"slide report not saved ({exc}): check that {folder} is writable"
                    ),
                )
                return None
            self._on_finished(SlideReport(files))
            return files

        return self._submit(job, "slide report")

    def request_stop(self) -> None:
        """End once what is queued is written (at most ``QUEUE_SIZE`` requests)."""
        self._stop_event.set()

    # -- the writer thread -----------------------------------------------------------------
    def run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop_event.is_set():
                    return
                continue
            job()

    def _submit(self, work: Callable[[], Any], what: str) -> Future[Any]:
        future: Future[Any] = Future()

        def job() -> None:
            try:
                future.set_result(work())
            except Exception as exc:  # a bug: reported once, the writer goes on
                self._report(what, exc)
                future.set_result(None)

        if self.ident is None or not self.is_alive():  # not running: write now, here
            job()
            return future
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._report(
                what,
                MicroAppError(
                    f"{what} not saved: the disk is slower than the requests; "
                    "wait a moment and try again"
                ),
            )
            future.set_result(None)
        return future

    def _write(
        self, update: LiveUpdate, source: dict[str, Any], doc: dict[str, Any]
    ) -> SnapshotPaths | None:
        first = None
        for sink in self.sinks:
            try:
                written = sink.write(update, source=source, extra=doc)
            except (OSError, MicroAppError) as exc:
                self._report(
                    "snapshot",
                    MicroAppError(f"snapshot not saved ({exc}): check that {sink} is writable"),
                )
                continue
            if first is None:
                first = written
        if first is None:
            return None
        self._counter.add_snapshot(first.paths.sidecar)
        self._on_saved(first)
        return first.paths
