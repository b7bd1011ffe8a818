"""A network camera by URL: an MJPEG stream over HTTP(S) or RTSP, as many microscope
cameras serve one. OpenCV's FFmpeg reader does the work, with time-outs so that a camera
that goes quiet is noticed within seconds rather than blocking the capture thread."""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import cv2

from micro_app.core.errors import SourceError, UnsupportedProperty
from micro_app.core.frame import Frame
from micro_app.core.imageio import to_rgb
from micro_app.core.sources.base import PropertyInfo, SourceInfo

log = logging.getLogger("micro_app")
SCHEMES = ("http", "https", "rtsp", "rtsps")
TIMEOUT_MS = 5000


def is_stream_url(text: str) -> bool:
    return re.match(r"(?i)^(https?|rtsps?)://[^/\s]+", text.strip()) is not None


def _without_password(url: str) -> str:
    """The URL as shown and recorded: a password in it is never printed or saved."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ""
    netloc = f"{user}{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class StreamCamera:
    kind = "stream"
    reconnects = True  # the capture thread keeps trying when the stream is lost

    def __init__(self, url: str, max_failures: int = 3) -> None:
        if not is_stream_url(url):
            raise SourceError(
                f"{url!r} is not a camera address: use http://, https:// or rtsp://host/…"
            )
        self.url = url.strip()
        self.name = _without_password(self.url)
        self.max_failures = max_failures
        self._cap: cv2.VideoCapture | None = None
        self._seq = 0
        self._size: tuple[int, int] | None = None

    def open(self) -> None:
        self.close()
        params = [
            int(cv2.CAP_PROP_OPEN_TIMEOUT_MSEC),
            TIMEOUT_MS,
            int(cv2.CAP_PROP_READ_TIMEOUT_MSEC),
            TIMEOUT_MS,
        ]
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"the network camera {self.name} does not answer: check the address, the "
                "network cable and that the camera is on"
            )
        self._cap = cap
        log.info("opened the network camera %s", self.name)

    def read(self) -> Frame | None:
        if self._cap is None:
            raise RuntimeError(f"{self.name} is not open: call open() first")
        for _ in range(self.max_failures):
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                self._size = (int(bgr.shape[1]), int(bgr.shape[0]))
                frame = Frame(to_rgb(bgr), self._seq, time.monotonic(), self.name)
                self._seq += 1
                return frame
            time.sleep(0.05)
        raise SourceError(f"the network camera {self.name} stopped sending pictures")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def properties(self) -> dict[str, PropertyInfo]:
        why = "a network camera is set up on the camera itself (its web page)"
        return {
            name: PropertyInfo(name, None, supported=False, reason=why)
            for name in ("exposure", "gain", "auto_exposure")
        }

    def set_property(self, name: str, value: float) -> None:
        raise UnsupportedProperty(
            f"{self.name} cannot set {name} from here: change it on the camera's own page"
        )

    def describe(self) -> dict[str, Any]:
        w, h = self._size if self._size else (None, None)
        return SourceInfo("stream", self.name, w, h, extra={"url": self.name}).to_dict()
