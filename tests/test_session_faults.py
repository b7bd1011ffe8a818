"""Faults injected into a live run (issue 19): each test failed before its fix.

A counting bug, a dead worker, changes made during a model load, two queued loads, an old
camera's callbacks, a straggling thread at a restart, a report that held the count, a
source whose close hangs, an error nobody caught."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import slow_model_loads, wait_for

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.errors import SourceError
from micro_app.core.locate import LocateParams
from micro_app.core.session import (
    ErrorEvent,
    FolderSink,
    LiveSession,
    ModelState,
    SessionState,
    SlideCounter,
    install_hooks,
)
from micro_app.core.session.relay import KEEP_COUNTS, KEEP_EVENTS, ErrorRelay
from micro_app.core.sources.demo import DemoSource
from micro_app.core.workers import Workers


def _errors(session: LiveSession) -> list[ErrorEvent]:
    got: list[ErrorEvent] = []
    session.events.error.connect(got.append)
    return got


class _BadCounter(SlideCounter):
    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def add(self, frame: Any, result: Any) -> Any:
        if self.broken:
            raise ZeroDivisionError("counting bug")
        return super().add(frame, result)


def test_a_counting_bug_is_reported_and_inference_goes_on(tiny_package: Path) -> None:
    """Before: the code after ``engine.process`` was outside the try; the thread died,
    no error event came, the state stayed "running"."""
    from micro_app.core.models import load_package

    counter = _BadCounter()
    session = LiveSession(DemoSource(rate=30.0), Engine(load_package(tiny_package)), counter)
    errors = _errors(session)
    session.start()
    try:
        wait_for(lambda: len(errors) >= 2)
        assert errors[0].source == "inference" and "ZeroDivisionError" in errors[0].message
        counter.broken = False  # the thread is alive: once the bug is gone, frames count
        wait_for(lambda: session.latest_update() is not None)
    finally:
        session.stop()


def test_a_dead_inference_thread_fails_the_run_with_its_reason() -> None:
    session = LiveSession(DemoSource(rate=30.0), Engine(None))
    errors = _errors(session)

    def broken_get(*_: Any, **__: Any) -> Any:
        raise RuntimeError("mailbox bug")

    session._frames.get = broken_get  # type: ignore[method-assign]
    session.start()
    try:
        wait_for(lambda: session.state is SessionState.FAILED)
        st = session.status()
        assert "inference stopped" in st.reason and "mailbox bug" in st.reason
        assert any(e.source == "inference" for e in errors)
    finally:
        session.stop()


def test_changes_made_during_a_model_load_are_kept(
    monkeypatch: pytest.MonkeyPatch, tiny_package: Path
) -> None:
    """Before: the load captured the engine it started from and installed a copy of it,
    so a threshold and a scale set during the load reverted."""
    slow_model_loads(monkeypatch, 0.6)
    session = LiveSession(DemoSource(rate=30.0), Engine(None, params=EngineParams()))
    session.start()
    try:
        session.load_model(tiny_package)
        assert session.status().model_state is ModelState.LOADING
        session.set_threshold(0.83)
        session.set_scale(0.21)
        session.set_locate(LocateParams(min_nucleus_um=3.5))
        assert session.engine.params.threshold == 0.83  # the engine in use, during the load
        wait_for(lambda: session.status().model_state is ModelState.READY)
        engine = session.engine
        assert engine.classifier is not None
        assert engine.params.threshold == 0.83 and engine.params.um_per_px == 0.21
        assert engine.locate.min_nucleus_um == 3.5
        assert session.model_info().threshold == 0.83
    finally:
        session.stop()


def test_queued_loads_merge_and_the_newest_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_package: Path
) -> None:
    """Before: two queued loads made the window record the wrong model folder."""
    import shutil

    loaded = slow_model_loads(monkeypatch, 0.4)
    second, third = tmp_path / "second", tmp_path / "third"
    shutil.copytree(tiny_package, second)
    shutil.copytree(tiny_package, third)
    session = LiveSession(DemoSource(rate=30.0), Engine(None, params=EngineParams()))
    session.start()
    try:
        session.load_model(tiny_package)
        session.load_model(second)
        session.load_model(third)
        wait_for(lambda: session.status().model_state is ModelState.READY)
        assert session.status().model_folder == str(third)
        assert session.model_info().folder == str(third)
        assert str(second) not in loaded  # asked and overtaken before it began: never loaded
    finally:
        session.stop()


class _SlowFailing(DemoSource):
    """Opens after a while and fails: an old camera still opening when it is replaced."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__(rate=30.0)
        self.release = release

    def open(self) -> None:
        self.release.wait(10)
        raise SourceError("the old camera failed late")


def test_an_old_capture_thread_changes_nothing_of_the_new_run() -> None:
    release = threading.Event()
    session = LiveSession(_SlowFailing(release), Engine(None))
    errors = _errors(session)
    session.start()
    try:
        session.set_source(DemoSource(rate=30.0))
        wait_for(lambda: session.state is SessionState.RUNNING)
        release.set()  # the old camera now fails: the new run must not hear it
        time.sleep(0.5)
        assert session.state is SessionState.RUNNING and not errors
    finally:
        session.stop()


class _HangingClose(DemoSource):
    def __init__(self, release: threading.Event) -> None:
        super().__init__(rate=30.0)
        self.release = release

    def close(self) -> None:
        self.release.wait(10)
        super().close()


def test_replacing_a_source_does_not_wait_for_the_old_one_to_close() -> None:
    """Before: ``set_source`` joined the capture thread for up to 5 s on the GUI thread."""
    release = threading.Event()
    session = LiveSession(_HangingClose(release), Engine(None))
    session.start()
    try:
        wait_for(lambda: session.state is SessionState.RUNNING)
        t0 = time.monotonic()
        session.set_source(DemoSource(rate=30.0, seed=3))
        returned_after = time.monotonic() - t0
        assert not release.is_set() and returned_after < 2.5  # the old close still hangs
        wait_for(lambda: session.state is SessionState.RUNNING)
    finally:
        release.set()
        session.stop()


def test_a_restart_never_runs_two_inference_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``stop()`` forgot a thread whose join timed out, and ``start()`` began a
    second inference thread beside it."""
    engine = Engine(None)
    entered = threading.Event()
    real = Engine.process

    def slow(self: Engine, *a: Any, **kw: Any) -> Any:
        entered.set()
        time.sleep(1.0)
        return real(self, *a, **kw)

    monkeypatch.setattr(Engine, "process", slow)
    session = LiveSession(DemoSource(rate=30.0), engine)
    session.start()
    entered.wait(10)
    left = session.stop(wait=0.05)
    assert any(name.startswith("inference (started at ") for name in left)
    session.start()
    try:
        alive = [t for t in threading.enumerate() if t.name == "inference" and t.is_alive()]
        assert len(alive) == 1
    finally:
        assert session.stop(wait=10) == []


def test_the_slide_report_does_not_hold_the_count(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Before: finish-slide wrote the report holding the counter's lock, so counting (the
    inference thread) stalled for as long as the disk took."""
    import micro_app.core.report as report

    inside, release = threading.Event(), threading.Event()

    def slow_finish(*a: Any, **kw: Any) -> dict[str, Path]:
        inside.set()
        release.wait(10)
        return {}

    monkeypatch.setattr(report, "finish_slide", slow_finish)
    session = LiveSession(None, Engine(None), sinks=[FolderSink(tmp_path)])
    session.start()
    try:
        future = session.finish_slide(tmp_path, {})
        assert inside.wait(10)
        done = threading.Event()
        threading.Thread(target=lambda: (session.count_status(), done.set())).start()
        assert done.wait(5)  # the count answers while the report is being written
        release.set()
        assert future.result(10) == {}
    finally:
        release.set()
        session.stop()


def test_uncaught_errors_reach_the_relay_and_counts_stay_bounded() -> None:
    got: list[tuple[str, BaseException]] = []
    uninstall = install_hooks(lambda where, exc: got.append((where, exc)))
    try:
        t = threading.Thread(target=lambda: 1 / 0, name="worker-x")
        t.start()
        t.join()
        import sys

        try:
            raise KeyError("slot bug")
        except KeyError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        uninstall()
    assert [(w, type(e)) for w, e in got] == [("worker-x", ZeroDivisionError), ("app", KeyError)]
    events: list[ErrorEvent] = []
    relay = ErrorRelay(events.append)
    for i in range(KEEP_COUNTS + 50):
        relay.report("capture", SourceError(f"camera {i} lost"))
    relay.report("capture", SourceError("camera 0 lost"))  # forgotten: counted from 1 again
    assert len(relay.events) == KEEP_EVENTS and relay.total == KEEP_COUNTS + 51
    assert events[-1].count == 1 and len(relay._counts) == KEEP_COUNTS


def test_workers_list_where_a_straggler_was_started() -> None:
    stop = threading.Event()

    class Stubborn(threading.Thread):
        def request_stop(self) -> None:  # asked, but it finishes its long step first
            pass

        def run(self) -> None:
            stop.wait(10)

    workers = Workers()
    workers.start("stubborn", Stubborn(name="stubborn"))
    left = workers.stop_all(0.05)
    assert len(left) == 1 and "test_session_faults.py" in left[0]
    assert workers.alive("stubborn")
    stop.set()
    assert workers.stop_all(5) == []


def test_calibration_stops_when_cancelled_and_writes_nothing(
    tmp_path: Path, tiny_package: Path
) -> None:
    """Before: the calibration job ignored the dialog's cancel and ran to the end."""
    import numpy as np

    from micro_app.adapt.library import Cancelled
    from micro_app.adapt.microscope import calibrate
    from micro_app.core.models import load_package

    cancel = threading.Event()
    cancel.set()
    crops = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(Cancelled):
        calibrate(
            load_package(tiny_package),
            crops,
            tmp_path / "out",
            n_images=1,
            min_cells=1,
            cancel=cancel,
        )
    assert not (tmp_path / "out").exists()


def test_the_jobs_queue_is_bounded_and_says_so() -> None:
    from micro_app.core.session.jobs import QUEUE_SIZE, JobsThread

    reported: list[str] = []
    jobs = JobsThread(lambda where, exc: reported.append(str(exc)))
    release = threading.Event()
    jobs.start()
    try:
        jobs.put(lambda: release.wait(10) and None)
        time.sleep(0.3)  # the first job is running: the queue fills behind it
        for _ in range(QUEUE_SIZE + 3):
            jobs.put(lambda: None)
        assert reported and all("too many jobs" in r for r in reported)
    finally:
        release.set()
        jobs.request_stop()
        jobs.join(5)
