"""The live pipeline without a window: capture thread -> mailbox -> inference thread.

Prints a status line every second; writes snapshots on a timer when asked. The window
(``micro_app.gui``) connects to the same pieces.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from micro_app.core.capture import CaptureThread
from micro_app.core.engine import Engine, InferenceThread
from micro_app.core.export import write_snapshot
from micro_app.core.frame import Frame
from micro_app.core.mailbox import Mailbox
from micro_app.core.overlay import draw_overlay
from micro_app.core.results import FrameResult
from micro_app.core.sources import open_source


class LivePipeline:
    """Owns the two worker threads and the two mailboxes; ``stop()`` joins both."""

    def __init__(
        self,
        engine: Engine,
        source_spec: str,
        rate: float | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.source = open_source(source_spec, rate=rate, loop=True)
        self.frames: Mailbox[Frame] = Mailbox()
        self.results: Mailbox[tuple[Frame, FrameResult]] = Mailbox()
        self.errors: list[Exception] = []
        self._errors_lock = threading.Lock()
        self._on_error = on_error
        self.capture = CaptureThread(self.source, self.frames, on_error=self._error)
        self.inference = InferenceThread(engine, self.frames, self.results, on_error=self._error)

    def _error(self, exc: Exception) -> None:
        with self._errors_lock:
            self.errors.append(exc)
        if self._on_error is not None:
            self._on_error(exc)

    def start(self) -> None:
        self.capture.start()
        self.inference.start()

    def stop(self) -> None:
        self.capture.stop()
        self.frames.close()
        self.inference.stop()

    def latest_pair(self) -> tuple[Frame, FrameResult] | None:
        """The newest result and the frame it was computed on."""
        got = self.results.latest()
        return got[1] if got else None


def run_live(
    engine: Engine,
    source_spec: str,
    *,
    seconds: float | None = None,
    out: Path | None = None,
    snapshot_every: float | None = None,
    settings: dict[str, Any] | None = None,
    print_fn: Any = print,
) -> int:
    rate = None if source_spec.startswith("camera") else 15.0
    pipe = LivePipeline(engine, source_spec, rate=rate)
    if snapshot_every and out is None:
        out = Path("snapshots")
    pipe.start()
    t0 = time.monotonic()
    next_snap = t0 + snapshot_every if snapshot_every else None
    reported = 0
    try:
        while seconds is None or time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            with pipe._errors_lock:
                new_errors = pipe.errors[reported:]
                reported = len(pipe.errors)
            for exc in new_errors:
                print_fn(f"micro-app: {exc}")
            if not pipe.capture.is_alive() and pipe.frames.latest() is None:
                break
            pair = pipe.latest_pair()
            res = pair[1] if pair else None
            print_fn(
                f"{pipe.source.name}: camera {pipe.capture.fps:5.1f} fps, inference "
                f"{pipe.inference.fps:5.1f} fps, latency {res.latency_ms if res else 0:6.1f} ms, "
                f"dropped {pipe.frames.dropped}, {engine.device}, "
                f"cells {res.counts() if res else {}}"
            )
            if next_snap is not None and out is not None and time.monotonic() >= next_snap:
                pair = pipe.latest_pair()
                if pair:
                    frame, result = pair
                    paths = write_snapshot(
                        out,
                        frame.image,
                        result,
                        draw_overlay(frame.image, result),
                        source=pipe.source.describe(),
                        settings=settings,
                    )
                    print_fn(f"snapshot: {paths.sidecar}")
                next_snap += snapshot_every or 0
            if not pipe.capture.is_alive():
                break
    finally:
        pipe.stop()
    return 1 if pipe.errors else 0
