"""One shutdown policy for every thread the live run starts.

Each worker is started through ``Workers.start``, which remembers where in the code it was
started. ``stop_all`` asks every worker to stop (each says how: ``request_stop``) and then
waits for all of them together, up to one deadline, never one long join per thread. A
worker still running after the deadline is not forgotten: it stays listed (with where it
was started, for the log and for tests) until it ends, so a restart cannot run a second
copy of it beside the first (``alive(kind)``).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("micro_app")


class Stoppable(Protocol):
    name: str

    def request_stop(self) -> None: ...

    def is_alive(self) -> bool: ...

    def join(self, timeout: float | None = None) -> None: ...

    def start(self) -> None: ...


@dataclass
class _Entry:
    kind: str
    thread: Stoppable
    where: str


def started_at() -> str:
    """Where the code that asked for this thread is: the innermost caller outside the core
    (the window, a command, a test), as ``file:line in function``."""
    stack = traceback.extract_stack()[:-1]
    core = str(Path(__file__).parent)
    frame = next((f for f in reversed(stack) if not f.filename.startswith(core)), stack[-1])
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


class Workers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []

    def start(self, kind: str, thread: Stoppable) -> Stoppable:
        """Start ``thread`` and keep it until it has ended."""
        entry = _Entry(kind, thread, started_at())
        thread.started_at = entry.where  # type: ignore[attr-defined]  # for leak reports
        with self._lock:
            self._entries = [e for e in self._entries if e.thread.is_alive()]
            self._entries.append(entry)
        thread.start()
        return thread

    def alive(self, kind: str | None = None) -> list[Stoppable]:
        with self._lock:
            return [
                e.thread
                for e in self._entries
                if e.thread.is_alive() and (kind is None or e.kind == kind)
            ]

    def stop(self, thread: Stoppable) -> None:
        """Ask one worker to stop; it ends on its own (no join on the caller's thread)."""
        thread.request_stop()

    def stop_all(self, timeout: float) -> list[str]:
        """Ask every worker to stop, wait up to ``timeout`` s for all of them together; the
        ones still running are returned as ``name (started at …)`` and stay listed."""
        with self._lock:
            entries = list(self._entries)
        for e in entries:
            e.thread.request_stop()
        deadline = time.monotonic() + timeout
        for e in entries:
            if e.thread is threading.current_thread():
                continue
            e.thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._entries = [e for e in self._entries if e.thread.is_alive()]
            left = [f"{e.thread.name} (started at {e.where})" for e in self._entries]
        for line in left:
            log.warning("still stopping after %.1f s: %s", timeout, line)
        return left
