"""The capture thread: owns the source, feeds the mailbox, reports errors once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from micro_app.core.capture import CaptureThread, EndReason
from micro_app.core.errors import SourceError, UnsupportedProperty
from micro_app.core.frame import Frame
from micro_app.core.mailbox import Mailbox
from micro_app.core.sources import DemoSource, FileSource, PropertyInfo


class FakeSource:
    """A tiny source that records which thread did what, and fails on request."""

    def __init__(
        self,
        frames: int | None = None,
        fail_at: int | None = None,
        fail_open: bool = False,
        error: Exception | None = None,
    ) -> None:
        self.name = "fake"
        self.frames, self.fail_at, self.fail_open = frames, fail_at, fail_open
        self.error = error or SourceError("fake camera unplugged: plug it back in")
        self.gain = 1.0
        self.threads: dict[str, set[int]] = {}
        self.closed = 0
        self._seq = 0

    def _mark(self, what: str) -> None:
        self.threads.setdefault(what, set()).add(threading.get_ident())

    def open(self) -> None:
        self._mark("open")
        if self.fail_open:
            raise SourceError("fake camera could not be opened: plug it in")
        self._seq = 0

    def read(self) -> Frame | None:
        self._mark("read")
        if self.fail_at is not None and self._seq >= self.fail_at:
            raise self.error
        if self.frames is not None and self._seq >= self.frames:
            return None
        time.sleep(0.002)
        frame = Frame(np.zeros((4, 4, 3), np.uint8), self._seq, time.monotonic(), self.name)
        self._seq += 1
        return frame

    def close(self) -> None:
        self._mark("close")
        self.closed += 1

    def properties(self) -> dict[str, PropertyInfo]:
        return {"gain": PropertyInfo("gain", self.gain, 1.0, 8.0)}

    def set_property(self, name: str, value: float) -> None:
        self._mark("set_property")
        if name != "gain":
            raise UnsupportedProperty(f"fake cannot set {name!r}: only gain")
        self.gain = value

    def describe(self) -> dict[str, Any]:
        return {"kind": "fake", "name": self.name, "gain": self.gain}


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


@pytest.fixture(autouse=True)
def no_capture_thread_left() -> Iterator[None]:
    yield
    left = [t for t in threading.enumerate() if isinstance(t, CaptureThread) and t.is_alive()]
    for t in left:
        t.stop(2)
    assert not left, f"capture threads left running: {left}"


def test_delivers_demo_frames_and_stops() -> None:
    box: Mailbox[Frame] = Mailbox()
    cap = CaptureThread(DemoSource(160, 120, rate=200), box)
    assert not cap.daemon
    cap.start()
    assert wait_for(lambda: box.seq >= 5)
    got = box.latest()
    assert got is not None and got[1].image.shape == (120, 160, 3)
    assert cap.opened.is_set()
    assert cap.properties_snapshot()["exposure"].value == 1.0
    assert cap.info_snapshot()["kind"] == "demo"
    assert cap.fps > 0
    assert cap.stop(5)
    assert not cap.is_alive()
    assert cap.finished.is_set()
    assert cap.ended_reason is EndReason.STOPPED


def test_open_read_close_all_on_the_capture_thread() -> None:
    src = FakeSource()
    cap = CaptureThread(src, Mailbox())
    cap.start()
    assert wait_for(lambda: cap.frames >= 3)
    assert cap.stop()
    ident = cap.ident
    assert src.threads["open"] == {ident}
    assert src.threads["read"] == {ident}
    assert src.threads["close"] == {ident}
    assert src.closed == 1


def test_read_error_goes_to_on_error_once_and_ends_thread() -> None:
    errors: list[Exception] = []
    src = FakeSource(fail_at=3)
    cap = CaptureThread(src, Mailbox(), on_error=errors.append)
    cap.start()
    cap.join(5)
    assert not cap.is_alive()
    assert len(errors) == 1 and errors[0] is src.error
    assert cap.ended_reason is EndReason.ERROR and cap.error is src.error
    assert cap.frames == 3
    assert src.closed == 1


def test_unexpected_exception_is_reported_too() -> None:
    errors: list[Exception] = []
    src = FakeSource(fail_at=0, error=RuntimeError("bug"))
    cap = CaptureThread(src, Mailbox(), on_error=errors.append)
    cap.start()
    cap.join(5)
    assert [str(e) for e in errors] == ["bug"]
    assert cap.ended_reason is EndReason.ERROR


def test_open_failure_is_reported_and_nothing_is_delivered() -> None:
    errors: list[Exception] = []
    box: Mailbox[Frame] = Mailbox()
    cap = CaptureThread(FakeSource(fail_open=True), box, on_error=errors.append)
    cap.start()
    cap.join(5)
    assert len(errors) == 1 and isinstance(errors[0], SourceError)
    assert box.seq == 0
    assert not cap.opened.is_set()


def test_end_of_stream_ends_cleanly() -> None:
    errors: list[Exception] = []
    box: Mailbox[Frame] = Mailbox()
    cap = CaptureThread(FakeSource(frames=5), box, errors.append, close_mailbox_on_exit=True)
    cap.start()
    assert cap.finished.wait(5)
    cap.join(5)
    assert cap.ended_reason is EndReason.END_OF_STREAM
    assert errors == []
    assert cap.frames == 5 and box.seq == 5
    assert box.closed
    assert box.get(timeout=0) is not None  # the last frame is still there for readers


def test_file_source_end_of_stream(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 8, 3), i * 40, np.uint8))
    box: Mailbox[Frame] = Mailbox()
    cap = CaptureThread(FileSource(tmp_path), box)
    cap.start()
    cap.join(5)
    assert cap.ended_reason is EndReason.END_OF_STREAM
    assert cap.frames == 3


def test_property_requests_are_applied_on_the_capture_thread() -> None:
    errors: list[Exception] = []
    src = FakeSource()
    cap = CaptureThread(src, Mailbox(), on_error=errors.append)
    cap.start()
    assert cap.opened.wait(5)
    cap.request_property("gain", 4.0)
    assert wait_for(lambda: cap.properties_snapshot()["gain"].value == 4.0)
    assert src.threads["set_property"] == {cap.ident}
    cap.request_property("zoom", 2.0)
    assert wait_for(lambda: len(errors) == 1)
    assert isinstance(errors[0], UnsupportedProperty)
    assert cap.is_alive(), "a refused property must not end capture"
    assert cap.stop()
    assert cap.ended_reason is EndReason.STOPPED


def test_stop_before_start_is_harmless() -> None:
    src = FakeSource()
    cap = CaptureThread(src, Mailbox())
    assert cap.stop()
    cap.start()  # starting after stop opens nothing
    cap.join(5)
    assert "open" not in src.threads
    assert cap.ended_reason is EndReason.STOPPED
