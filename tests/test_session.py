"""``LiveSession`` without a window: its states, events, one error relay, model jobs, and
the status snapshot."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import wait_for

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.errors import SourceError
from micro_app.core.frame import Frame
from micro_app.core.models import load_package
from micro_app.core.session import (
    ErrorEvent,
    LiveSession,
    ModelState,
    SessionState,
    SessionStatus,
    Signal,
)
from micro_app.core.sources import open_source
from micro_app.core.sources.demo import DemoSource
from micro_app.status_text import model_text


class Recorder:
    def __init__(self, session: LiveSession) -> None:
        self.states: list[SessionState] = []
        self.models: list[ModelState] = []
        self.errors: list[ErrorEvent] = []
        self.updates = 0
        self.lock = threading.Lock()
        session.events.status_changed.connect(self.status)
        session.events.error.connect(self.error)
        session.events.result_ready.connect(self.update)

    def status(self, st: SessionStatus) -> None:
        with self.lock:
            if not self.states or self.states[-1] is not st.state:
                self.states.append(st.state)
            self.models.append(st.model_state)

    def error(self, e: ErrorEvent) -> None:
        with self.lock:
            self.errors.append(e)

    def update(self, _: Any) -> None:
        self.updates += 1


class BrokenSource(DemoSource):
    def open(self) -> None:
        raise SourceError("camera 3 could not be opened: is it plugged in?")


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "field.png"
    src = DemoSource(width=320, height=240, rate=None)
    src.open()
    frame = src.read()
    assert frame is not None
    cv2.imwrite(str(path), frame.image[..., ::-1])
    return path


def test_a_finite_source_starts_runs_and_ends(tmp_path: Path) -> None:
    session = LiveSession(
        open_source(str(_image(tmp_path)), rate=20.0, loop=False),
        Engine(None, params=EngineParams()),
    )
    rec = Recorder(session)
    session.start()
    wait_for(lambda: session.state is SessionState.ENDED)
    session.stop()
    assert rec.states[:3] == [SessionState.STARTING, SessionState.RUNNING, SessionState.ENDED]
    st = session.status()
    assert st.resolution == (320, 240) and st.frames == 1 and model_text(st) == "no model"
    assert rec.updates >= 1 and not rec.errors


def test_a_source_that_fails_is_one_error_and_a_failed_state() -> None:
    session = LiveSession(BrokenSource(rate=None), Engine(None, params=EngineParams()))
    rec = Recorder(session)
    session.start()
    wait_for(lambda: session.state is SessionState.FAILED)
    session.stop()
    assert [e.source for e in rec.errors] == ["capture"]
    assert "is it plugged in" in rec.errors[0].message and rec.errors[0].count == 1


def test_every_occurrence_of_an_error_is_an_event_with_its_count() -> None:
    session = LiveSession(None, Engine(None, params=EngineParams()))
    rec = Recorder(session)
    for _ in range(3):
        session.report_error("snapshot", OSError("disk full"))
    assert [e.count for e in rec.errors] == [1, 2, 3]
    # a bug (not one of the app's own errors) says where it happened and where to look
    session.report_error("inference", ZeroDivisionError("x"))
    assert "inference failed (ZeroDivisionError: x); see the log file" in rec.errors[-1].message


def test_a_listener_that_raises_stops_nothing() -> None:
    sig = Signal("test")
    got: list[int] = []

    def bad(_: int) -> None:
        raise RuntimeError("listener bug")

    sig.connect(bad)
    sig.connect(got.append)
    sig.emit(7)
    assert got == [7]


def test_models_load_on_the_jobs_thread_and_a_failure_keeps_the_previous_one(
    tmp_path: Path, tiny_package: Path
) -> None:
    session = LiveSession(DemoSource(rate=30.0), Engine(None, params=EngineParams()))
    rec = Recorder(session)
    session.start()
    session.load_model(tiny_package)
    wait_for(lambda: session.status().model_state is ModelState.READY)
    assert ModelState.LOADING in rec.models
    wait_for(lambda: (u := session.latest_update()) is not None and u[1].result.model is not None)
    broken = tmp_path / "broken"
    broken.mkdir()
    session.load_model(broken)  # no card: one line, the tiny model stays
    wait_for(lambda: session.status().model_state is ModelState.FAILED)
    st = session.status()
    assert st.model == "tiny-colour 0.0.1" and model_text(st).startswith("model failed: ")
    assert any(e.source == "model" for e in rec.errors)
    session.stop()


def test_cells_are_counted_once_classified_and_snapshots_carry_the_review(
    tmp_path: Path, tiny_package: Path
) -> None:
    from micro_app.core.session import FolderSink, SlideCounter

    session = LiveSession(
        open_source(str(_image(tmp_path)), rate=20.0, loop=True),
        Engine(load_package(tiny_package), params=EngineParams()),
        SlideCounter(),
        [FolderSink(tmp_path / "snaps", {"note": "test"})],
    )
    session.start()
    wait_for(lambda: session.count_status().total > 0)
    time.sleep(0.5)
    total = session.count_status().total
    assert total == len(session.latest_update()[1].result.cells)  # type: ignore[index]
    cid = session.counted_cells()[0].cell_id
    session.correct(cid, "green_cell")
    asked = session.snapshot()
    assert asked is not None
    paths = asked.result(20)  # written on the snapshot thread
    session.stop()
    assert session.count_status().total == total  # a still image replayed: counted once
    assert paths is not None and paths.sidecar.is_file()
    import json

    doc = json.loads(paths.sidecar.read_text())
    assert doc["settings"] == {"note": "test"}
    assert any(r["corrected"] == "green_cell" for r in doc["review"])


def test_the_status_never_reads_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """``status()`` is read from any thread: it must not call into the source."""
    src = DemoSource(rate=30.0)
    session = LiveSession(src, Engine(None, params=EngineParams()))
    session.start()
    wait_for(lambda: session.latest_frame() is not None)
    calls: list[str] = []
    monkeypatch.setattr(src, "describe", lambda: calls.append("describe") or {})
    monkeypatch.setattr(src, "properties", lambda: calls.append("properties") or {})
    for _ in range(5):
        st = session.status()
    session.stop()
    assert not calls and st.source_info.get("kind") == "demo"


def test_frames_are_published_newest_first(tmp_path: Path) -> None:
    session = LiveSession(DemoSource(rate=60.0), Engine(None, params=EngineParams()))
    frames: list[Frame] = []

    def keep(frame: Frame) -> None:
        frames.append(frame)

    session.events.frame_ready.connect(keep)
    session.start()
    wait_for(lambda: len(frames) > 10)
    session.stop()
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and isinstance(frames[0].image, np.ndarray)


def test_the_scale_is_the_calibrated_one_else_the_demo_s_own_else_estimated(
    tmp_path: Path,
) -> None:
    """The demo knows the scale it lays its cells out at; a camera does not. A calibrated
    objective always wins; clearing it goes back to the source's scale or the estimate."""
    demo = DemoSource(rate=None, px_per_um=8.0)
    session = LiveSession(demo, Engine(None, params=EngineParams()))
    assert session.engine.params.um_per_px == pytest.approx(1 / 8.0)
    session.set_scale(0.2)
    assert session.engine.params.um_per_px == 0.2
    session.set_scale(None)
    assert session.engine.params.um_per_px == pytest.approx(1 / 8.0)
    image = tmp_path / "field.png"
    cv2.imwrite(str(image), np.full((60, 80, 3), 200, np.uint8))
    session.set_source(open_source(str(image)))
    assert session.engine.params.um_per_px is None  # estimated from the red cells
    calibrated = LiveSession(demo, Engine(None, params=EngineParams(um_per_px=0.3)))
    assert calibrated.engine.params.um_per_px == 0.3
