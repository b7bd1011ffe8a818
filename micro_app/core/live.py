"""``micro-app live``: a live session in the terminal. One status line per second, each
worker error once per occurrence, snapshots on a timer when asked, and the slide's
differential count at the end (the same ``LiveSession`` the window runs on)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from micro_app.core.engine import Engine
from micro_app.core.results import SHOWN
from micro_app.core.session import (
    ErrorEvent,
    FolderSink,
    LiveSession,
    SessionState,
    SlideCounter,
)
from micro_app.core.slide import CountStatus
from micro_app.core.sources import open_source

Print = Callable[[str], Any]


def differential_lines(status: CountStatus, classes: tuple[str, ...] = ()) -> list[str]:
    """The differential as a small table: every model class (0 when none was counted),
    then any other label (unidentified, corrections), then the warnings."""
    rows = list(classes) + sorted(k for k in status.counts if k not in classes)
    lines = [f"differential: {status.total} cells counted (target {status.target})"]
    for label in rows:
        n, p = status.counts.get(label, 0), status.provisional.get(label, 0)
        pct = status.percentages.get(label, 0.0)
        note = f"  ({p} provisional)" if p else ""
        lines.append(f"  {SHOWN.get(label, label):<18}{n:>5}  {pct:5.1f} %{note}")
    extra = [status.provisional_line()] if status.n_provisional else []
    lines += [f"  warning: {w}" for w in status.warnings + extra if w]
    return lines


def run_live(
    engine: Engine,
    source_spec: str,
    *,
    seconds: float | None = None,
    out: Path | None = None,
    snapshot_every: float | None = None,
    settings: dict[str, Any] | None = None,
    target: int = 100,
    watch: dict[str, float] | None = None,
    print_fn: Print = print,
) -> int:
    rate = None if source_spec.startswith("camera") else 15.0
    if snapshot_every and out is None:
        out = Path("snapshots")
    session = LiveSession(
        open_source(source_spec, rate=rate, loop=True),
        engine,
        SlideCounter(target, engine.threshold, watch),
        [FolderSink(out, settings)] if out is not None else [],
    )
    errors: queue.Queue[ErrorEvent] = queue.Queue()
    session.events.error.connect(errors.put)
    session.start()
    t0 = time.monotonic()
    next_snap = t0 + snapshot_every if snapshot_every else None
    failed = False
    try:
        while seconds is None or time.monotonic() - t0 < seconds:
            left = None if seconds is None else seconds - (time.monotonic() - t0)
            time.sleep(1.0 if left is None else max(0.05, min(1.0, left)))
            while not errors.empty():
                e = errors.get()
                failed = True
                again = f" ({e.count}x)" if e.count > 1 else ""
                print_fn(f"micro-app: {e.source}: {e.message}{again}")
            st = session.status()
            count = session.counter.status()
            print_fn(f"{st.line()} | counted {count.total}")
            if next_snap is not None and time.monotonic() >= next_snap:
                paths = session.snapshot()
                if paths is not None:
                    print_fn(f"snapshot: {paths.sidecar}")
                next_snap += snapshot_every or 0
            if st.state in (SessionState.ENDED, SessionState.FAILED):
                break
    finally:
        session.stop()
    clf = session.engine.classifier
    for line in differential_lines(session.counter.status(), clf.classes if clf else ()):
        print_fn(line)
    return 1 if failed else 0
