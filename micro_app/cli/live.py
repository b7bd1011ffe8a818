"""``micro-app live``: a live session in the terminal. One status line per second, each
worker error once per occurrence, snapshots on a timer when asked, and the slide's
differential count at the end (the same ``LiveSession`` the window runs on). Ctrl-C ends
the run with the differential counted so far; a source that never delivered a picture is
one line."""

from __future__ import annotations

import argparse
import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from micro_app.cli.engine import load_engine, say
from micro_app.cli.parser import INTERRUPTED, source_spec
from micro_app.core.engine import Engine
from micro_app.core.session import (
    ErrorEvent,
    FolderSink,
    LiveSession,
    SessionState,
    SlideCounter,
)
from micro_app.core.settings import load_settings
from micro_app.core.sources import FrameSource, list_cameras, open_source
from micro_app.core.startup import choose_source
from micro_app.status_text import differential_lines, status_line

Print = Callable[[str], Any]
LIVE_RATE = 15.0  # frames per second from a demo or a recording; a camera runs at its own
TICK = 0.1  # how often the command looks at the session (errors, state, Ctrl-C)
NEVER_STARTED = 2  # the source never sent a picture: a mistake, like a missing file


def live_source(spec: str) -> FrameSource:
    """The source named by ``spec``, not opened yet; raises SourceError (one line) if it
    cannot be built (a path that does not exist, a malformed camera index)."""
    return open_source(spec, rate=None if spec.startswith("camera") else LIVE_RATE, loop=True)


def run_live(
    engine: Engine,
    source: FrameSource,
    *,
    seconds: float | None = None,
    out: Path | None = None,
    snapshot_every: float | None = None,
    settings: dict[str, Any] | None = None,
    target: int = 100,
    watch: dict[str, float] | None = None,
    print_fn: Print = print,
    say_fn: Print = say,
) -> int:
    """Run until ``seconds`` have passed, the source ends or fails, or Ctrl-C. Exit code 0;
    1 after a worker error; 2 when the source never sent a picture (its error is the only
    line); 130 on Ctrl-C, after the differential counted so far and one line."""
    if snapshot_every and out is None:
        out = Path("snapshots")
    session = LiveSession(
        source,
        engine,
        SlideCounter(target, engine.threshold, watch),
        [FolderSink(out, settings)] if out is not None else [],
    )
    errors: queue.Queue[ErrorEvent] = queue.Queue()
    session.events.error.connect(errors.put)
    failed = interrupted = never_started = False

    def tell_errors() -> None:
        nonlocal failed
        while not errors.empty():
            e = errors.get()
            failed = True
            say_fn(e.message + (f" ({e.count}x)" if e.count > 1 else ""))

    session.start()
    t0 = time.monotonic()
    next_status = t0 + 1.0
    next_snap = t0 + snapshot_every if snapshot_every else None
    try:
        while seconds is None or time.monotonic() - t0 < seconds:
            left = None if seconds is None else seconds - (time.monotonic() - t0)
            time.sleep(TICK if left is None else max(0.0, min(TICK, left)))
            st = session.status()  # before the errors: a failure's error comes before its state
            tell_errors()
            if st.state is SessionState.FAILED and st.frames == 0:
                never_started = True
                break
            now = time.monotonic()
            if now >= next_status or st.state in (SessionState.ENDED, SessionState.FAILED):
                print_fn(f"{status_line(st)} | counted {session.count_status().total}")
                next_status += 1.0
            if next_snap is not None and now >= next_snap:
                written = session.snapshot()  # on the session's snapshot thread
                paths = written.result() if written is not None else None
                if paths is not None:
                    print_fn(f"snapshot: {paths.sidecar}")
                next_snap += snapshot_every or 0
            if st.state in (SessionState.ENDED, SessionState.FAILED):
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        session.stop()
    tell_errors()
    if never_started:
        return NEVER_STARTED
    status, classes = session.count_status(), session.model_info().classes
    for line in differential_lines(status, classes, "micro-app adapt"):
        print_fn(line)
    if interrupted:
        say_fn("stopped (Ctrl-C): the differential above is what was counted so far")
        return INTERRUPTED
    return 1 if failed else 0


def cmd_live(args: argparse.Namespace) -> int:
    settings = load_settings()
    spec = choose_source(source_spec(args), settings, list_cameras)
    source = live_source(spec)  # before the model: a wrong source is said at once
    engine, settings = load_engine(
        args.model,
        args.threshold,
        args.um_per_px,
        live=True,
        backend=args.backend,
        source_name=source.name,
        settings=settings,
    )
    return run_live(
        engine,
        source,
        seconds=args.seconds,
        out=args.out,
        snapshot_every=args.snapshot_every,
        settings=settings.to_dict(),
        target=settings.differential_target,
        watch=settings.watch,
    )
