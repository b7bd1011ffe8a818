"""The live session's events, and the signal backend that carries them.

Like pymmcore-plus's MDA runner, the core declares *what* it emits (``SessionEvents``: a
few named signals) and picks *how* at run time: plain callbacks (``Signal`` below, no
dependency) or psygnal when it is installed. The window adds its own Qt adapter
(``micro_app.gui.qt_session``), so that nothing in the core imports Qt.

Every signal is emitted from a worker thread (capture, inference, model jobs) unless noted.
A callback that raises is logged and never stops the worker or the other callbacks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("micro_app")
BACKENDS = ("auto", "plain", "psygnal")


class SignalInstance(Protocol):
    def connect(self, slot: Callable[..., Any]) -> Any: ...

    def disconnect(self, slot: Callable[..., Any]) -> Any: ...

    def emit(self, *args: Any) -> Any: ...


class Signal:
    """A thread-safe list of callbacks: ``connect``, ``disconnect``, ``emit(*args)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._slots: list[Callable[..., Any]] = []
        self._lock = threading.Lock()

    def connect(self, slot: Callable[..., Any]) -> Callable[..., Any]:
        with self._lock:
            self._slots.append(slot)
        return slot

    def disconnect(self, slot: Callable[..., Any]) -> None:
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        with self._lock:
            slots = list(self._slots)
        for slot in slots:
            try:
                slot(*args)
            except Exception:  # a listener's bug must not stop the worker that emits
                log.exception("a listener of %s failed", self.name)


class SessionEvents:
    """``frame_ready(Frame)``: a new camera frame (capture thread).
    ``result_ready(LiveUpdate)``: a frame classified and counted (inference thread).
    ``status_changed(SessionStatus)``: the run's or the model's state changed.
    ``error(ErrorEvent)``: any worker error, each occurrence, with where it came from."""

    NAMES = ("frame_ready", "result_ready", "status_changed", "error")

    def __init__(self, backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"signal backend must be one of {BACKENDS}, got {backend!r}")
        make = _psygnal_factory() if backend in ("auto", "psygnal") else None
        if backend == "psygnal" and make is None:
            raise ValueError("the psygnal backend was asked for, but psygnal is not installed")
        self.backend = "psygnal" if make is not None else "plain"
        for name in self.NAMES:
            setattr(self, name, make(name) if make is not None else Signal(name))

    frame_ready: SignalInstance
    result_ready: SignalInstance
    status_changed: SignalInstance
    error: SignalInstance


def _psygnal_factory() -> Callable[[str], SignalInstance] | None:
    try:
        from psygnal import SignalInstance as PsygnalInstance
    except ImportError:
        return None

    def make(name: str) -> SignalInstance:
        # one untyped argument; a listener's exception is logged, as with ``Signal``
        inst = PsygnalInstance((object,), name=name, check_nargs_on_connect=False)
        return _Guarded(inst)

    return make


class _Guarded:
    """psygnal re-raises a listener's exception in the emitting thread; log it instead."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect(self, slot: Callable[..., Any]) -> Any:
        return self._inner.connect(slot)

    def disconnect(self, slot: Callable[..., Any]) -> Any:
        return self._inner.disconnect(slot)

    def emit(self, *args: Any) -> None:
        try:
            self._inner.emit(*args)
        except Exception:
            log.exception("a listener of %s failed", self._inner.name)
