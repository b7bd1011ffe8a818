"""USB cameras through ``cv2.VideoCapture``, and a best-effort list of the cameras present.

The camera is opened in :meth:`OpenCVCamera.open`, never in ``__init__``: open, read, property
changes and release must all run on the capture thread. Which of exposure, gain and auto
exposure a camera supports is found out after opening by setting each to its current value and
reading it back; unsupported ones are reported by :meth:`~OpenCVCamera.properties` and refused
by :meth:`~OpenCVCamera.set_property` with UnsupportedProperty.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np

from micro_app.core.errors import SourceError, UnsupportedProperty
from micro_app.core.frame import Frame
from micro_app.core.imageio import to_rgb
from micro_app.core.sources.base import (
    AUTO_EXPOSURE,
    EXPOSURE,
    FPS,
    GAIN,
    HEIGHT,
    WIDTH,
    PropertyInfo,
    SourceInfo,
)

log = logging.getLogger("micro_app")

_PROPS = {
    EXPOSURE: cv2.CAP_PROP_EXPOSURE,
    GAIN: cv2.CAP_PROP_GAIN,
    AUTO_EXPOSURE: cv2.CAP_PROP_AUTO_EXPOSURE,
    WIDTH: cv2.CAP_PROP_FRAME_WIDTH,
    HEIGHT: cv2.CAP_PROP_FRAME_HEIGHT,
    FPS: cv2.CAP_PROP_FPS,
}
_PROBED = (EXPOSURE, GAIN, AUTO_EXPOSURE)  # support found by set-and-read-back at open


def backends_for(platform: str | None = None) -> list[int]:
    """OpenCV capture backends to try, in order, on ``platform`` (default: this OS)."""
    platform = platform or sys.platform
    if platform.startswith("win"):
        return [cv2.CAP_DSHOW, cv2.CAP_MSMF]
    if platform.startswith("linux"):
        return [cv2.CAP_V4L2]
    if platform == "darwin":
        return [cv2.CAP_AVFOUNDATION]
    return [cv2.CAP_ANY]


def backend_name(api: int) -> str:
    try:
        return str(cv2.videoio_registry.getBackendName(api))
    except cv2.error:
        return f"backend {api}"


def _auto_exposure_raw(api: int) -> tuple[float, float]:
    """(off, on) values of CAP_PROP_AUTO_EXPOSURE, which differ between backends."""
    if api == cv2.CAP_V4L2:
        return 1.0, 3.0  # V4L2_EXPOSURE_MANUAL, V4L2_EXPOSURE_APERTURE_PRIORITY
    if api == cv2.CAP_DSHOW:
        return 0.25, 0.75
    return 0.0, 1.0


def _close_enough(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-3 * max(1.0, abs(a), abs(b))


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved = 0


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings ("can't open camera by index", "backend is generally
    available but can't be used") while a camera is probed or opened: the app says what
    went wrong in one line of its own. OpenCV's log level is global: the outermost of
    overlapping blocks (a camera opening while the cameras are listed) restores it."""
    global _quiet_depth, _quiet_saved
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                cv2.utils.logging.setLogLevel(_quiet_saved)


class OpenCVCamera:
    """A camera by index; ``width``/``height``/``fps`` are requests the driver may round."""

    kind = "camera"
    reconnects = True  # the capture thread keeps trying when the camera is lost

    def __init__(
        self,
        index: int,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        *,
        backends: Sequence[int] | None = None,
        max_failures: int = 5,
    ) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise SourceError(f"a camera index is a whole number from 0 up, got {index!r}")
        self.index = index
        self.name = f"camera {index}"
        self.requested = {WIDTH: width, HEIGHT: height, FPS: fps}
        self.backends = list(backends) if backends else backends_for()
        self.max_failures = max_failures
        self._cap: cv2.VideoCapture | None = None
        self._api: int | None = None
        self._supported: dict[str, bool] = {}
        self._first: np.ndarray | None = None
        self._seq = 0

    @property
    def backend(self) -> str | None:
        return backend_name(self._api) if self._api is not None else None

    # ------------------------------------------------------------------ FrameSource
    def open(self) -> None:
        self.close()
        with _quiet_opencv():  # a missing camera is one line of ours, not two of OpenCV's
            for api in self.backends:
                cap = cv2.VideoCapture(self.index, api)
                if cap.isOpened():
                    self._cap, self._api = cap, api
                    break
                cap.release()
        if self._cap is None:
            tried = ", ".join(backend_name(a) for a in self.backends)
            raise SourceError(
                f"{self.name} could not be opened ({tried}): check that it is plugged in "
                "and not in use by another program"
            )
        for name, value in self.requested.items():
            if value is not None:
                self._cap.set(_PROPS[name], float(value))
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self.close()
            raise SourceError(
                f"{self.name} opened but sent no picture: check that no other program uses it"
            )
        self._first, self._seq = bgr, 0
        got = (int(bgr.shape[1]), int(bgr.shape[0]))
        want = (self.requested[WIDTH], self.requested[HEIGHT])
        if any(w is not None and w != g for w, g in zip(want, got, strict=True)):
            log.warning("%s delivers %dx%d instead of the requested size", self.name, *got)
        self._supported = {name: self._probe(_PROPS[name]) for name in _PROBED}
        log.info("opened %s with %s at %dx%d", self.name, self.backend, *got)

    def read(self) -> Frame | None:
        cap = self._require_open()
        bgr, self._first = self._first, None
        failures = 0
        while bgr is None:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                bgr = None
                failures += 1
                if failures >= self.max_failures:
                    raise SourceError(
                        f"{self.name} stopped sending pictures: check the USB cable and "
                        "that no other program uses the camera"
                    )
                time.sleep(0.02)
        frame = Frame(to_rgb(bgr), self._seq, time.monotonic(), self.name)
        self._seq += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._first = None

    def properties(self) -> dict[str, PropertyInfo]:
        if self._cap is None:
            why = "the camera is not open yet"
            return {n: PropertyInfo(n, None, supported=False, reason=why) for n in _PROPS}
        out: dict[str, PropertyInfo] = {}
        for name in _PROPS:
            supported = self._supported.get(name, True)
            reason = "" if supported else f"{self.name} ({self.backend}) does not support it"
            value = self._get(name) if supported or name in (WIDTH, HEIGHT, FPS) else None
            out[name] = PropertyInfo(name, value, supported=supported, reason=reason)
        return out

    def set_property(self, name: str, value: float) -> None:
        if name not in _PROPS:
            raise UnsupportedProperty(
                f"cameras have no property {name!r}: use one of {', '.join(_PROPS)}"
            )
        cap = self._require_open()
        if not self._supported.get(name, True):
            raise UnsupportedProperty(
                f"{self.name} ({self.backend}) does not support {name}: the driver ignores it"
            )
        prop = _PROPS[name]
        raw = float(value)
        if name == AUTO_EXPOSURE:
            raw = _auto_exposure_raw(self._api or 0)[1 if value else 0]
        before = cap.get(prop)
        accepted = cap.set(prop, raw)
        after = cap.get(prop)
        if not accepted or (not _close_enough(raw, before) and _close_enough(after, before)):
            hint = "turn auto exposure off first, or " if name in (EXPOSURE, GAIN) else ""
            raise UnsupportedProperty(
                f"{self.name} ignored {name}={value:g} and kept {after:g}: "
                f"{hint}the camera does not allow changing it"
            )
        if not _close_enough(raw, after):
            log.info("%s set %s to %g when asked for %g", self.name, name, after, raw)

    def describe(self) -> dict[str, Any]:
        p = {name: info.value for name, info in self.properties().items()}
        extra = {"index": self.index, "backend": self.backend, "auto_exposure": p[AUTO_EXPOSURE]}
        w, h = (int(v) if v else None for v in (p[WIDTH], p[HEIGHT]))
        info = SourceInfo("camera", self.name, w, h, p[FPS], p[EXPOSURE], p[GAIN], extra)
        return info.to_dict()

    # ------------------------------------------------------------------ helpers
    def _require_open(self) -> cv2.VideoCapture:
        if self._cap is None:
            raise RuntimeError(f"{self.name} is not open: call open() first")
        return self._cap

    def _probe(self, prop: int) -> bool:
        """Supported if the driver reports a value and accepts it written back unchanged."""
        cap = self._require_open()
        value = cap.get(prop)
        return value != -1 and bool(cap.set(prop, value))

    def _get(self, name: str) -> float:
        raw = float(self._require_open().get(_PROPS[name]))
        if name == AUTO_EXPOSURE:
            off, on = _auto_exposure_raw(self._api or 0)
            return 1.0 if raw > (off + on) / 2 else 0.0
        return raw
