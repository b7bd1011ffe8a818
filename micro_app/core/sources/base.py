"""The frame-source protocol, its small value types, and the pacing helper file/demo sources share.

A source is opened, read and closed on one thread (the capture thread, see
:mod:`micro_app.core.capture`). ``read()`` returns the next :class:`~micro_app.core.frame.Frame`,
``None`` at the end of a finite stream, and raises :class:`~micro_app.core.errors.SourceError`
when the device fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from micro_app.core.errors import SourceError
from micro_app.core.frame import Frame

# Names of the controllable properties, shared by every source and the GUI.
EXPOSURE = "exposure"
GAIN = "gain"
AUTO_EXPOSURE = "auto_exposure"
WIDTH = "width"
HEIGHT = "height"
FPS = "fps"


@dataclass(frozen=True)
class PropertyInfo:
    """One controllable property of a source, as the source reports it.

    ``value`` is the current value (``None`` if unknown), ``minimum``/``maximum`` the range when
    the source knows it, ``supported`` whether :meth:`FrameSource.set_property` can change it,
    and ``reason`` a short note for the user when it cannot (shown as a tooltip, for instance).
    """

    name: str
    value: float | None
    minimum: float | None = None
    maximum: float | None = None
    supported: bool = True
    reason: str = ""


@dataclass(frozen=True)
class SourceInfo:
    """Settings of a source worth recording next to results (a JSON sidecar)."""

    kind: str  # "camera", "demo", "image", "folder" or "video"
    name: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    exposure: float | None = None
    gain: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A flat dict of JSON-ready values (``extra`` keys merged in last)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "exposure": self.exposure,
            "gain": self.gain,
        }
        out.update(self.extra)
        return out


@runtime_checkable
class FrameSource(Protocol):
    """What the capture thread needs from a camera, a file replay or the demo smear."""

    @property
    def name(self) -> str:
        """Short human-readable name ("camera 0", "demo", a file name)."""
        ...

    def open(self) -> None:
        """Acquire the device or file; raises SourceError with a one-line message on failure."""
        ...

    def read(self) -> Frame | None:
        """Next RGB frame (``seq`` counts from 0 since ``open``); None at end of stream."""
        ...

    def close(self) -> None:
        """Release everything; safe to call twice and after a failed ``open``."""
        ...

    def properties(self) -> dict[str, PropertyInfo]:
        """The controllable properties, keyed by name, with current values."""
        ...

    def set_property(self, name: str, value: float) -> None:
        """Change a property; raises UnsupportedProperty when the source cannot."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings (see :class:`SourceInfo`)."""
        ...


def known_scale(source: FrameSource | None) -> float | None:
    """µm per pixel of a source that knows its own scale (the demo: it draws or lays out
    its cells at a set scale); None for cameras and recordings, whose scale comes from a
    calibrated objective or is estimated from the red cells of each field."""
    value = getattr(source, "known_um_per_px", None)
    return float(value) if isinstance(value, int | float) and value > 0 else None


def check_rate(rate: float | None) -> float | None:
    """Validate a frames-per-second pacing rate (None means "as fast as possible")."""
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise SourceError(
            f"frame rate must be a positive number of frames per second, got {rate!r}"
        )
    return float(rate)


class Pacer:
    """Sleeps so that successive :meth:`wait` calls return at ``rate`` per second.

    The first call returns at once. A caller that falls behind (slow consumer, long stall)
    is re-synchronised instead of bursting to catch up. ``rate=None`` never sleeps.
    Used inside ``read()``, so a paced source delays ``CaptureThread.stop`` by at most one period.
    """

    def __init__(self, rate: float | None) -> None:
        self.rate = check_rate(rate)
        self._next: float | None = None

    def reset(self) -> None:
        self._next = None

    def wait(self) -> None:
        if self.rate is None:
            return
        period = 1.0 / self.rate
        now = time.monotonic()
        if self._next is None:
            self._next = now + period
            return
        delay = self._next - now
        if delay > 0:
            time.sleep(delay)
            self._next += period
        else:
            # Behind schedule: start a fresh period from now rather than burst.
            self._next = now + period
