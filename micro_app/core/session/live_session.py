"""``LiveSession``: one live run, owned in the core. The window and ``micro-app live`` build
one from objects (a frame source, an engine, a slide counter, snapshot sinks), start it,
listen to its events, read what it offers (status, model info, the count, a counted cell,
the newest frame and update with their sequence numbers) and ask it for things. They
never reach into its threads or its parts.

Its parts, one job each: this class (the run's life, state and status), ``SourceSlot``
(the source and its capture thread), ``ModelSlot`` (the one ordered path for every engine
and model change), ``SnapshotService`` (writing, on its own thread), ``SlideCounter`` (the
count), ``ErrorRelay`` (every error, one place), ``Workers`` (one shutdown policy).

Threads, newest frame wins: capture (owns the source; frames into a one-slot mailbox) ->
inference (the newest frame through the engine; counted; ``result_ready``) -> the window
polls the newest update. Loads run on the jobs thread, writing on the snapshot thread.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from micro_app.core.capture import RETRY_DELAYS, EndReason
from micro_app.core.engine import Engine
from micro_app.core.errors import MicroAppError
from micro_app.core.export import SnapshotPaths
from micro_app.core.frame import Frame
from micro_app.core.inference import InferenceThread
from micro_app.core.locate import LocateParams
from micro_app.core.mailbox import Mailbox
from micro_app.core.models.package import ModelPackage
from micro_app.core.preprocess import PreprocessParams
from micro_app.core.results import FrameResult
from micro_app.core.session.counter import SlideCounter
from micro_app.core.session.events import SessionEvents
from micro_app.core.session.jobs import Job, JobsThread
from micro_app.core.session.model_slot import ModelSlot
from micro_app.core.session.relay import ErrorRelay
from micro_app.core.session.sinks import SnapshotSink
from micro_app.core.session.snapshots import SnapshotService
from micro_app.core.session.source_slot import SourceSlot
from micro_app.core.session.state import (
    ErrorEvent,
    LiveUpdate,
    ModelInfo,
    SessionState,
    SessionStatus,
)
from micro_app.core.slide import CountStatus, SlideCell
from micro_app.core.sources.base import FrameSource, known_scale
from micro_app.core.workers import Workers


class LiveSession:
    def __init__(
        self,
        source: FrameSource | None,  # None: idle until ``set_source``
        engine: Engine,
        counter: SlideCounter | None = None,
        sinks: list[SnapshotSink] | None = None,
        *,
        backend: str = "auto",
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.events = SessionEvents()
        self._relay = ErrorRelay(self.events.error.emit)
        self._counter = counter or SlideCounter(threshold=engine.threshold)
        self._sinks = list(sinks or [])
        self._lock = threading.Lock()
        self._state = SessionState.IDLE
        self._reason = ""
        self._frames: Mailbox[Frame] = Mailbox()
        self._updates: Mailbox[LiveUpdate] = Mailbox()
        self._workers = Workers()
        self._source = SourceSlot(
            source,
            self._frames,
            self._workers,
            on_error=lambda exc: self.report_error("capture", exc),
            on_opened=lambda: self._set_state(SessionState.RUNNING),
            on_frame=self.events.frame_ready.emit,
            on_finished=self._capture_finished,
            on_reconnecting=lambda: self._set_state(SessionState.RECONNECTING),
            retry_delays=retry_delays,
        )
        self._inference: InferenceThread | None = None
        self._jobs: JobsThread | None = None
        self._snapshots = self._snapshot_service()
        self._stopping = False
        self._worker_died = False  # the inference thread died: the run stays failed
        self._slot = ModelSlot(
            engine,
            backend=backend,
            run_job=self.run_job,
            on_engine=lambda e: self._counter.set_threshold(e.threshold),
            on_state=lambda: self.events.status_changed.emit(self.status()),
            report=self.report_error,
            note=self.note,
        )
        self._slot.change(source_um_per_px=known_scale(source))

    # -- life -----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the source and start the threads (returns at once)."""
        if self._inference is not None:
            return
        for old in self._workers.alive("inference"):  # told to stop: ends after its frame
            old.join(5.0)
        if self._workers.alive("inference"):
            raise MicroAppError("the previous run is still stopping: try again in a moment")
        self._stopping = False
        self._reason = ""
        self._worker_died = False
        self._inference = InferenceThread(
            lambda: self._slot.engine,
            self._frames,
            on_result=self._on_result,
            on_error=lambda exc: self.report_error("inference", exc),
            on_died=self._inference_died,
            after_seq=self._frames.seq,
        )
        self._workers.start("inference", self._inference)
        self._jobs = JobsThread(self.report_error)
        self._workers.start("jobs", self._jobs)
        self._snapshots = self._snapshot_service()
        self._workers.start("snapshots", self._snapshots)
        if self._source.source is not None:
            self._set_state(SessionState.STARTING)
            self._source.start()

    def stop(self, wait: float = 5.0) -> list[str]:
        """Stop every thread, waiting up to ``wait`` s for all of them together (0: return
        at once). Returns the threads still stopping; none of them is forgotten, and the
        session can be started again."""
        self._stopping = True
        self._source.release()
        left = self._workers.stop_all(wait)
        self._inference, self._jobs = None, None
        self._set_state(SessionState.ENDED)
        return left

    def set_source(self, source: FrameSource) -> None:
        """Replace the source (another camera, a recording) without waiting for the old one
        to close; the slide count goes on."""
        running = self._inference is not None
        if running:
            self._set_state(SessionState.STARTING)
        self._source.replace(source, running)
        self._slot.change(source_um_per_px=known_scale(source))

    def _capture_finished(self, reason: EndReason, error: Exception | None) -> None:
        if reason is EndReason.ERROR:
            self._set_state(SessionState.FAILED, str(error or "the source failed"))
        elif not self._stopping and reason is EndReason.END_OF_STREAM:
            self._set_state(SessionState.ENDED)

    def _inference_died(self, exc: BaseException) -> None:
        self.report_error("inference", exc)
        self._set_state(SessionState.FAILED, f"inference stopped ({type(exc).__name__}: {exc})")
        self._worker_died = True

    def _snapshot_service(self) -> SnapshotService:
        return SnapshotService(
            self._sinks,
            self._counter,
            report=self.report_error,
            on_saved=self.events.snapshot_saved.emit,
            on_finished=self.events.slide_finished.emit,
        )

    # -- what the threads report -------------------------------------------------------------
    def _on_result(self, frame: Frame, result: FrameResult) -> None:
        ids, counted, labels, count = self._counter.add(frame, result)
        update = LiveUpdate(frame, result, ids, counted, labels, count)
        self._updates.put(update)
        self.events.result_ready.emit(update)

    def report_error(self, where: str, exc: BaseException) -> ErrorEvent:
        """The one relay: every worker, background task and uncaught error comes here."""
        return self._relay.report(where, exc)

    def note(self, message: str) -> None:
        """A notice that is not a failure (a GPU failed, the CPU took over), shown as one."""
        self.report_error("runtime", MicroAppError(message))

    def _set_state(self, state: SessionState, reason: str = "") -> None:
        with self._lock:
            if self._state is state and self._reason == reason:
                return
            if self._worker_died and state is not SessionState.ENDED:
                return  # the run failed for good: a camera reopening does not revive it
            self._state, self._reason = state, reason
        self.events.status_changed.emit(self.status())

    @property
    def state(self) -> SessionState:
        with self._lock:
            return self._state

    def run_job(self, job: Job) -> None:
        """Run ``job`` on the session's jobs thread (one at a time), now if not started."""
        jobs = self._jobs
        if jobs is None or not jobs.is_alive():
            job()
        else:
            jobs.put(job)

    # -- the model and the engine: one ordered path (``ModelSlot``) ----------------------------
    def load_model(self, folder: str | Path, backend: str | None = None) -> None:
        """Load a package on the jobs thread and swap it in; the status says "loading",
        then ready or failed with the reason (the previous model stays in use)."""
        fields: dict[str, Any] = {"model_folder": str(folder)}
        if backend is not None:
            fields["backend"] = backend
        self._slot.change(reload=True, **fields)

    def set_backend(self, backend: str) -> None:
        """Where models run; the model in use is loaded again there."""
        self._slot.change(backend=backend)

    def set_preprocess(self, params: PreprocessParams) -> None:
        self._slot.change(preprocess=params)

    def set_locate(self, params: LocateParams) -> None:
        self._slot.change(locate=params)

    def set_threshold(self, threshold: float | None) -> None:
        self._slot.change(threshold=threshold)

    def set_scale(self, um_per_px: float | None) -> None:
        """The calibrated scale of the objective in use; None goes back to the source's own
        scale, else to estimating it from the red cells of each field."""
        self._slot.change(calibrated_um_per_px=um_per_px)

    def model_info(self) -> ModelInfo:
        return self._slot.info()

    @property
    def engine(self) -> Engine:
        """The engine in use (read-only: change it through the methods above)."""
        return self._slot.engine

    def model_package(self) -> ModelPackage | None:
        """The package in use, for adapting it (set-up, teaching)."""
        clf = self._slot.engine.classifier
        return clf.package if clf is not None else None

    def field_engine(self) -> Engine:
        """A copy of the engine that estimates each image's scale on its own (fields from
        another microscope must not enter the live scale median)."""
        return self._slot.engine.derive(fresh_scale=True)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> SessionStatus:
        """A frozen snapshot; reads no device (the capture thread keeps the source's info)."""
        inference = self._inference
        update = self.latest_update()
        frame = self._frames.latest()
        info, camera_fps, frames = self._source.figures()
        if frame is not None:
            resolution: tuple[int, int] | None = (frame[1].width, frame[1].height)
        elif info.get("width") and info.get("height"):
            resolution = (int(info["width"]), int(info["height"]))
        else:
            resolution = None
        model = self._slot.info()
        with self._lock:
            return SessionStatus(
                state=self._state,
                model_state=model.state,
                model=f"{model.name} {model.version}" if model.name else "",
                model_message=model.message,
                model_folder=model.folder,
                backend=model.backend,
                device=model.device,
                source=self._source.name,
                resolution=resolution,
                camera_fps=camera_fps,
                inference_fps=inference.fps if inference is not None else 0.0,
                latency_ms=update[1].result.latency_ms if update is not None else 0.0,
                classified=inference.processed if inference is not None else 0,
                frames=frames,
                errors=self._relay.total,
                reason=self._reason,
                source_info=info,
            )

    def properties(self) -> dict[str, Any]:
        return self._source.properties()

    def request_property(self, name: str, value: float) -> None:
        self._source.request_property(name, value)

    def latest_frame(self) -> tuple[int, Frame] | None:
        """The newest camera frame with its sequence number (it only grows in a session)."""
        return self._frames.latest()

    def latest_update(self) -> tuple[int, LiveUpdate] | None:
        """The newest classified frame with its sequence number."""
        return self._updates.latest()

    # -- the slide's count and its review -------------------------------------------------------
    @property
    def slide_name(self) -> str:
        return self._counter.name

    def count_status(self) -> CountStatus:
        return self._counter.status()

    def counted_cell(self, cell_id: int) -> SlideCell | None:
        """A copy of a counted cell (None when that id is not counted)."""
        return self._counter.cell(cell_id)

    def counted_cells(self) -> list[SlideCell]:
        return self._counter.cells()

    def correct(self, cell_id: int, label: str) -> SlideCell:
        return self._counter.correct(cell_id, label)

    def new_slide(self, name: str = "") -> None:
        self._counter.new_slide(name)

    def set_target(self, target: int) -> None:
        self._counter.set_target(target)

    # -- writing: on the snapshot thread, announced when done ----------------------------------
    def snapshot(
        self, update: LiveUpdate | None = None, extra: dict[str, Any] | None = None
    ) -> Future[SnapshotPaths | None] | None:
        """Write the newest classified frame (or ``update``) to every sink, on the snapshot
        thread; None when there is nothing to write or nowhere to write it. Completion is
        the ``snapshot_saved`` event (and the future's result)."""
        if update is None:
            latest = self.latest_update()
            update = latest[1] if latest is not None else None
        if update is None or not self._sinks:
            return None
        return self._snapshots.snapshot(update, self._source.info(), extra)

    def finish_slide(
        self, folder: Path, settings: dict[str, Any]
    ) -> Future[dict[str, Path] | None]:
        """Write the slide's CSV, JSON and report after the snapshots asked for before;
        completion is the ``slide_finished`` event (and the future's result)."""
        model = self._slot.info()
        return self._snapshots.finish_slide(folder, model.card, settings)
