"""The one error relay of a live run (napari's ``_relay_error``): every worker, background
task and uncaught exception reaches ``ErrorRelay.report``, which writes the log and emits one
``ErrorEvent`` per occurrence (a camera unplugged twice is said twice, with its count).

``install_hooks`` routes ``sys.excepthook`` and ``threading.excepthook`` to a relay, so an
exception nobody caught (in a Qt slot, a thread) is shown and logged instead of printed.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType

from micro_app.core.errors import MicroAppError
from micro_app.core.logs import FILE_ONLY
from micro_app.core.session.state import ErrorEvent

log = logging.getLogger("micro_app")
KEEP_EVENTS = 100  # the newest events kept for ``errors``
KEEP_COUNTS = 200  # distinct messages whose counts are kept (the oldest forgotten first)


def one_line(where: str, exc: BaseException) -> str:
    """What a user reads: the app's own errors as they are, a bug with where to look."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, MicroAppError):
        return message
    return f"{where} failed ({type(exc).__name__}: {message}); see the log file"


class ErrorRelay:
    def __init__(self, emit: Callable[[ErrorEvent], None]) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._events: list[ErrorEvent] = []
        self._total = 0

    def report(self, where: str, exc: BaseException) -> ErrorEvent:
        message = one_line(where, exc)
        # the event is how the user is told (banner, terminal line): the log file only here
        if isinstance(exc, MicroAppError):
            log.warning("%s: %s", where, message, extra=FILE_ONLY)
        else:  # a bug: its traceback goes to the log file
            trace = (type(exc), exc, exc.__traceback__)
            log.error("%s failed", where, exc_info=trace, extra=FILE_ONLY)
        with self._lock:
            n = self._counts.pop(message, 0) + 1
            self._counts[message] = n
            while len(self._counts) > KEEP_COUNTS:
                self._counts.popitem(last=False)
            event = ErrorEvent(where, message, n)
            self._events.append(event)
            del self._events[:-KEEP_EVENTS]
            self._total += 1
        self._emit(event)
        return event

    @property
    def events(self) -> list[ErrorEvent]:
        with self._lock:
            return list(self._events)

    @property
    def total(self) -> int:
        with self._lock:
            return self._total


def install_hooks(report: Callable[[str, BaseException], object]) -> Callable[[], None]:
    """Send uncaught exceptions (main thread, Qt slots, any thread) to ``report``; returns
    the function that puts the previous hooks back. Ctrl-C keeps its usual meaning."""
    before_sys, before_threading = sys.excepthook, threading.excepthook

    def sys_hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            before_sys(kind, exc, tb)
            return
        report("app", exc.with_traceback(tb))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "a thread"
        report(name, args.exc_value)

    sys.excepthook, threading.excepthook = sys_hook, thread_hook

    def uninstall() -> None:
        sys.excepthook, threading.excepthook = before_sys, before_threading

    return uninstall
