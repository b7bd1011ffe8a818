"""``LiveSession``: one live run, owned in the core. The window and ``micro-app live`` build
one from objects (a frame source, an engine, a slide counter, snapshot sinks), start it,
listen to its events, read its status, and ask it for things (another source, another
model, a snapshot, a correction, the slide report). They never reach into its threads.

Threads, newest frame wins:
- capture: owns the source; each frame goes into a one-slot mailbox (``frame_ready``);
- inference: takes the newest frame, runs the engine, counts the classified cells on the
  slide, publishes a ``LiveUpdate`` (``result_ready``);
- jobs: loads and swaps models (and runs other long jobs) one at a time, so a slow
  TensorFlow load never stalls the view; a failed load keeps the previous model.
Every worker error reaches one relay (``_relay``) with where it came from; each occurrence
is an ``error`` event. ``stop()`` joins every thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from micro_app.core.capture import RETRY_DELAYS, CaptureThread, EndReason
from micro_app.core.engine import Engine, InferenceThread
from micro_app.core.errors import MicroAppError
from micro_app.core.export import SnapshotPaths
from micro_app.core.frame import Frame
from micro_app.core.locate import LocateParams
from micro_app.core.mailbox import Mailbox
from micro_app.core.preprocess import PreprocessParams
from micro_app.core.results import FrameResult
from micro_app.core.session.counter import SlideCounter
from micro_app.core.session.events import SessionEvents
from micro_app.core.session.sinks import SnapshotSink
from micro_app.core.session.state import (
    ErrorEvent,
    LiveUpdate,
    ModelState,
    SessionState,
    SessionStatus,
)
from micro_app.core.sources.base import FrameSource, known_scale

log = logging.getLogger("micro_app")
Job = Callable[[], None]


class LiveSession:
    def __init__(
        self,
        source: FrameSource | None,  # None: idle until ``set_source``
        engine: Engine,
        counter: SlideCounter | None = None,
        sinks: list[SnapshotSink] | None = None,
        *,
        events: SessionEvents | None = None,
        signal_backend: str = "auto",
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.events = events or SessionEvents(signal_backend)
        self._retry_delays = retry_delays  # between tries to reopen a lost camera
        self.counter = counter or SlideCounter(threshold=engine.threshold)
        self.sinks = list(sinks or [])
        self._source = source
        self._engine = engine
        # the calibrated objective's scale; without one, a source's own (the demo's)
        self._calibrated_um_per_px = engine.params.um_per_px
        self._lock = threading.Lock()
        self._state = SessionState.IDLE
        self._model_state = ModelState.READY if engine.classifier else ModelState.NONE
        self._model_message = ""
        self._error_counts: dict[str, int] = {}
        self.errors: list[ErrorEvent] = []
        self.frames: Mailbox[Frame] = Mailbox()
        self.updates: Mailbox[LiveUpdate] = Mailbox()
        self._results: Mailbox[tuple[Frame, FrameResult]] = Mailbox()
        self._capture: CaptureThread | None = None
        self._last_capture: CaptureThread | None = None
        self._inference: InferenceThread | None = None
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._jobs_thread: threading.Thread | None = None
        self._stopping = False
        self.backend = "auto"  # where models loaded by ``load_model`` run
        self._apply_scale()

    # -- life -----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the source and start the threads (returns at once)."""
        if self._inference is not None:
            return
        self._stopping = False
        if self.frames.closed:  # started again after a stop
            self.frames = Mailbox()
        self._inference = InferenceThread(
            self._engine,
            self.frames,
            self._results,
            on_error=self._relay("inference"),
            on_result=self._on_result,
        )
        self._inference.start()
        self._jobs_thread = threading.Thread(target=self._run_jobs, name="session-jobs")
        self._jobs_thread.start()
        if self._source is not None:
            self._start_capture()

    def stop(self) -> None:
        """Stop and join every thread; the session can be started again."""
        self._stopping = True
        self._stop_capture()
        self.frames.close()
        if self._inference is not None:
            self._inference.stop()
            self._inference = None
        if self._jobs_thread is not None:
            self._jobs.put(None)
            self._jobs_thread.join(timeout=120)
            self._jobs_thread = None
        self._set_state(SessionState.ENDED)

    def set_source(self, source: FrameSource) -> None:
        """Replace the source (another camera, a recording); the slide count goes on."""
        self._stop_capture()
        self._source = source
        self._apply_scale()
        if self._inference is not None:
            self._start_capture()

    def _start_capture(self) -> None:
        assert self._source is not None
        self._set_state(SessionState.STARTING)
        self._capture = CaptureThread(
            self._source,
            self.frames,
            on_error=self._relay("capture"),
            on_opened=lambda: self._set_state(SessionState.RUNNING),
            on_frame=self.events.frame_ready.emit,
            on_finished=self._capture_finished,
            on_reconnecting=lambda: self._set_state(SessionState.RECONNECTING),
            retry_delays=self._retry_delays,
        )
        self._capture.start()

    def _stop_capture(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.stop()
            self._last_capture = capture  # its figures stay in the status

    def _capture_finished(self, reason: EndReason) -> None:
        if threading.current_thread() is not self._capture:
            return  # a source being replaced or stopped: its end is expected
        if reason is EndReason.ERROR:
            self._set_state(SessionState.FAILED)
        elif not self._stopping and reason is EndReason.END_OF_STREAM:
            self._set_state(SessionState.ENDED)

    # -- what the threads report -------------------------------------------------------------
    def _on_result(self, frame: Frame, result: FrameResult) -> None:
        ids, counted, labels, count = self.counter.add(frame, result)
        update = LiveUpdate(frame, result, ids, counted, labels, count)
        self.updates.put(update)
        self.events.result_ready.emit(update)

    def _relay(self, where: str) -> Callable[[Exception], None]:
        def relay(exc: Exception) -> None:
            message = str(exc) or type(exc).__name__
            if not isinstance(exc, MicroAppError):
                message = f"{where} failed ({type(exc).__name__}: {message}); see the log file"
            with self._lock:
                n = self._error_counts[message] = self._error_counts.get(message, 0) + 1
                event = ErrorEvent(where, message, n)
                self.errors.append(event)
                del self.errors[:-100]
            self.events.error.emit(event)

        return relay

    def note(self, message: str) -> None:
        """A one-line notice from a worker that is not a failure (a GPU that failed and the
        device that took over): an ``error`` event from ``runtime``, so it is shown."""
        self._relay("runtime")(MicroAppError(message))

    def report_error(self, where: str, exc: Exception) -> None:
        """For the session's users (a snapshot that could not be written, ...): the same relay."""
        self._relay(where)(exc)

    def _set_state(self, state: SessionState) -> None:
        with self._lock:
            if self._state is state:
                return
            self._state = state
        self.events.status_changed.emit(self.status())

    @property
    def state(self) -> SessionState:
        with self._lock:
            return self._state

    # -- the model and the engine's parameters ----------------------------------------------
    @property
    def engine(self) -> Engine:
        inference = self._inference
        return inference.engine if inference is not None else self._engine

    def _use_engine(self, engine: Engine) -> None:
        self._engine = engine
        if self._inference is not None:
            self._inference.set_engine(engine)
        self.counter.set_threshold(engine.threshold)

    def update_engine(
        self,
        *,
        preprocess: PreprocessParams | None = None,
        locate: LocateParams | None = None,
        threshold: float | None = None,
    ) -> Engine:
        """Change preprocessing, locating or the confidence threshold, from the next frame."""
        eng = self.engine
        params = eng.params if threshold is None else replace(eng.params, threshold=threshold)
        new = eng.derive(preprocess=preprocess, locate=locate, params=params)
        self._use_engine(new)
        return new

    def set_scale(self, um_per_px: float | None) -> Engine:
        """The calibrated scale of the objective in use; None goes back to estimating it
        from the red cells of each field."""
        self._calibrated_um_per_px = um_per_px
        return self._apply_scale()

    def _apply_scale(self) -> Engine:
        """The engine's scale: the calibrated one, else the source's own, else None (the
        red cells of each field give it)."""
        um = self._calibrated_um_per_px or known_scale(self._source)
        eng = self.engine
        if eng.params.um_per_px == um:
            return eng
        new = eng.derive(params=replace(eng.params, um_per_px=um))
        self._use_engine(new)
        return new

    def load_model(self, folder: str | Path, backend: str | None = None) -> None:
        """Load a model package on the jobs thread and swap it in; the status says
        "loading model…", then "model ready" or "model failed: <reason>" (the previous
        model stays in use). ``backend``: where it runs (default: the session's choice)."""
        if backend is not None:
            self.backend = backend
        with self._lock:
            self._model_state, self._model_message = ModelState.LOADING, ""
        self.events.status_changed.emit(self.status())

        def job() -> None:
            from micro_app.core.models import load_package

            try:
                base = self.engine
                package = load_package(folder, keras=False)
                engine = Engine(
                    package,
                    base.preprocess,
                    base.locate,
                    base.params,
                    smooth_scale=True,
                    backend=self.backend,
                    on_message=self.note,
                )
                if engine.classifier is not None:
                    engine.classifier.warm_up()
            except Exception as exc:  # any failure: one line, the old model stays
                if not isinstance(exc, MicroAppError):
                    log.exception("loading the model %s failed", folder)
                with self._lock:
                    self._model_state = ModelState.FAILED
                    self._model_message = str(exc) or type(exc).__name__
                self._relay("model")(exc)
                self.events.status_changed.emit(self.status())
                return
            self._use_engine(engine)
            with self._lock:
                self._model_state = ModelState.READY
            self.events.status_changed.emit(self.status())

        self.run_job(job)

    def run_job(self, job: Job) -> None:
        """Run ``job`` on the session's jobs thread (one at a time), now if not started."""
        if self._jobs_thread is None:
            job()
        else:
            self._jobs.put(job)

    def _run_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception as exc:  # a job's own errors are its to report; this is a bug
                log.exception("a session job failed")
                self._relay("job")(exc)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> SessionStatus:
        """A frozen snapshot; reads no device (the capture thread keeps the source's info)."""
        capture, inference = self._capture or self._last_capture, self._inference
        update = self.latest_update()
        frame = self.frames.latest()
        info = capture.info_snapshot() if capture is not None else {}
        if frame is not None:
            resolution: tuple[int, int] | None = (frame[1].width, frame[1].height)
        elif info.get("width") and info.get("height"):
            resolution = (int(info["width"]), int(info["height"]))
        else:
            resolution = None
        clf = self.engine.classifier
        with self._lock:
            return SessionStatus(
                state=self._state,
                model_state=self._model_state,
                model=f"{clf.card.name} {clf.card.version}" if clf else "",
                model_message=self._model_message,
                device=self.engine.device,
                source=self._source.name if self._source is not None else "no source",
                source_kind=str(info.get("kind") or ""),
                resolution=resolution,
                camera_fps=capture.fps if capture is self._capture and capture else 0.0,
                inference_fps=inference.fps if inference is not None else 0.0,
                latency_ms=update.result.latency_ms if update is not None else 0.0,
                classified=inference.processed if inference is not None else 0,
                frames=capture.frames if capture is not None else 0,
                errors=len(self.errors),
                source_info=info,
            )

    def properties(self) -> dict[str, Any]:
        capture = self._capture
        return capture.properties_snapshot() if capture is not None else {}

    def request_property(self, name: str, value: float) -> None:
        if self._capture is not None:
            self._capture.request_property(name, value)

    def latest_frame(self) -> tuple[int, Frame] | None:
        return self.frames.latest()

    def latest_update(self) -> LiveUpdate | None:
        got = self.updates.latest()
        return got[1] if got else None

    # -- review, snapshots, the slide ---------------------------------------------------------
    def correct(self, cell_id: int, label: str) -> None:
        self.counter.correct(cell_id, label)

    def snapshot(
        self, update: LiveUpdate | None = None, extra: dict[str, Any] | None = None
    ) -> SnapshotPaths | None:
        """Write the newest classified frame (or ``update``) to every sink; the first sink's
        paths are returned and kept for the slide report. A sink that fails is reported
        (``error`` event) and None returned; the session goes on."""
        update = update or self.latest_update()
        if update is None or not self.sinks:
            return None
        info = self._capture.info_snapshot() if self._capture is not None else {}
        doc = {"slide": self.counter.name, "review": self.counter.review(update.cell_ids)}
        first: SnapshotPaths | None = None
        for sink in self.sinks:
            try:
                paths = sink.write(update, source=info, extra={**doc, **(extra or {})})
            except (OSError, MicroAppError) as exc:
                self._relay("snapshot")(
                    MicroAppError(f"snapshot not saved ({exc}): check that {sink} is writable")
                )
                continue
            first = first or paths
        if first is not None:
            self.counter.add_snapshot(first.sidecar)
        return first

    def finish_slide(self, folder: Path, settings: dict[str, Any]) -> dict[str, Path] | None:
        clf = self.engine.classifier
        try:
            return self.counter.finish(
                folder, model_card=clf.card.summary() if clf else None, settings=settings
            )
        except OSError as exc:
            self._relay("report")(
                MicroAppError(f"slide report not saved ({exc}): check that {folder} is writable")
            )
            return None
