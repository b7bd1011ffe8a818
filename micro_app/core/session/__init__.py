"""One live run in the core: ``LiveSession`` with its state, status, events and errors,
the slide's differential count (``SlideCounter``) and where snapshots go (``FolderSink``).
No Qt here: the window adapts the events to Qt signals in ``micro_app.gui.qt_session``."""

from micro_app.core.session.counter import SlideCounter
from micro_app.core.session.events import SessionEvents, Signal
from micro_app.core.session.live_session import LiveSession
from micro_app.core.session.relay import install_hooks
from micro_app.core.session.sinks import FolderSink, SavedSnapshot, SnapshotSink, shown_result
from micro_app.core.session.snapshots import SlideReport
from micro_app.core.session.state import (
    ErrorEvent,
    LiveUpdate,
    ModelInfo,
    ModelState,
    SessionState,
    SessionStatus,
)

__all__ = [
    "ErrorEvent",
    "FolderSink",
    "LiveSession",
    "LiveUpdate",
    "ModelInfo",
    "ModelState",
    "SavedSnapshot",
    "SessionEvents",
    "SessionState",
    "SessionStatus",
    "Signal",
    "SlideCounter",
    "SlideReport",
    "SnapshotSink",
    "install_hooks",
    "shown_result",
]
