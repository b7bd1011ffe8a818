"""One live run in the core: ``LiveSession`` with its state, status, events and errors,
the slide's differential count (``SlideCounter``) and where snapshots go (``FolderSink``).
No Qt here: the window adapts the events to Qt signals in ``micro_app.gui.qt_session``."""

from micro_app.core.session.counter import SlideCounter
from micro_app.core.session.events import BACKENDS, SessionEvents, Signal
from micro_app.core.session.live_session import LiveSession
from micro_app.core.session.sinks import FolderSink, SnapshotSink, shown_result
from micro_app.core.session.state import (
    ErrorEvent,
    LiveUpdate,
    ModelState,
    SessionState,
    SessionStatus,
)

__all__ = [
    "BACKENDS",
    "ErrorEvent",
    "FolderSink",
    "LiveSession",
    "LiveUpdate",
    "ModelState",
    "SessionEvents",
    "SessionState",
    "SessionStatus",
    "Signal",
    "SlideCounter",
    "SnapshotSink",
    "shown_result",
]
