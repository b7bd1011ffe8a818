"""Cameras that come back: a network camera (MJPEG over HTTP, served here on 127.0.0.1)
stops mid-stream and starts again, ten times; the live session says it lost the camera,
tries again on its own and resumes, every time."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from conftest import seq_of, wait_for

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.errors import SourceError
from micro_app.core.session import LiveSession, SessionState
from micro_app.core.sources import StreamCamera, open_source
from micro_app.status_text import status_line

pytestmark = pytest.mark.slow


class MjpegServer:
    """An MJPEG camera on 127.0.0.1 that can be switched off and on, on the same port."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.frames = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not getattr(self.server, "stopping", False):
                        img = np.full((120, 160, 3), 40 + (owner.frames * 7) % 200, np.uint8)
                        _, jpg = cv2.imencode(".jpg", img)
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}"
                        self.wfile.write(head.encode() + b"\r\n\r\n" + jpg.tobytes() + b"\r\n")
                        owner.frames += 1
                        time.sleep(0.03)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stopping = True  # type: ignore[attr-defined]
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def test_a_network_camera_address_opens_a_stream_and_hides_its_password() -> None:
    src = open_source("rtsp://admin:secret@10.0.0.7:554/live")
    assert isinstance(src, StreamCamera)
    assert src.name == "rtsp://admin:***@10.0.0.7:554/live" and "secret" not in str(src.describe())
    with pytest.raises(SourceError, match="is not a camera address"):
        StreamCamera("ftp://x")


def test_a_lost_network_camera_is_reported_and_comes_back_ten_times() -> None:
    server = MjpegServer()
    server.start()
    session = LiveSession(
        open_source(server.url), Engine(None, params=EngineParams()), retry_delays=(0.2, 0.5)
    )
    states: list[SessionState] = []
    losses: list[str] = []
    session.events.status_changed.connect(lambda st: states.append(st.state))
    session.events.error.connect(
        lambda e: losses.append(e.message) if "camera lost" in e.message else None
    )
    session.start()
    try:
        wait_for(
            lambda: session.state is SessionState.RUNNING and seq_of(session.latest_frame()) > 5
        )
        for k in range(10):
            server.stop()
            wait_for(lambda: session.state is SessionState.RECONNECTING)
            assert status_line(session.status()).count("reconnecting") == 1
            time.sleep(0.3)
            server.start()
            seq = seq_of(session.latest_frame())
            wait_for(
                lambda s=seq: (
                    session.state is SessionState.RUNNING and seq_of(session.latest_frame()) > s + 5
                )
            )
            assert len(losses) == k + 1  # each loss said once
    finally:
        session.stop()
        server.stop()
    assert states.count(SessionState.RECONNECTING) == 10
    assert "reconnecting" in losses[0] and "\n" not in losses[0]


def test_black_and_frozen_pictures_are_said_once_each() -> None:
    from micro_app.core import capture
    from micro_app.core.frame import Frame

    watch = capture._PictureWatch("camera 0")
    black = Frame(np.zeros((64, 64, 3), np.uint8), 0, 0.0, "camera 0")
    said = [watch.check(black) for _ in range(5)]
    assert sum(m is not None for m in said) == 1 and "black" in str(said[0])
    fine = Frame(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8), 1, 0.0, "c")
    assert "back to normal" in str(watch.check(fine))
    watch._changed -= capture.STILL_SECONDS + 1  # the same picture for longer than that
    assert "has not changed" in str(watch.check(fine))
