"""Replay of an image, a folder of images, or a video file as a frame source.

A folder's images are replayed in natural order (``img2`` before ``img10``). An unreadable
image inside a folder is skipped with a logged warning and listed in ``FileSource.skipped``
(a batch over hundreds of images should not stop for one bad file); a folder in which no
image can be read, or an unreadable single image or video, raises SourceError naming the file.

For image sources ``Frame.source`` is the path of the image file the frame came from, so code
downstream of a mailbox can still name its outputs; for videos it is the video's path.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app.core.errors import InputError, SourceError, UnsupportedProperty
from micro_app.core.frame import Frame, SlidePosition
from micro_app.core.imageio import (
    IMAGE_EXTENSIONS,
    list_images,
    read_image_rgb,
)
from micro_app.core.sources.base import FPS, Pacer, PropertyInfo, SourceInfo, check_rate

log = logging.getLogger("micro_app")

DEFAULT_IMAGE_RATE = 2.0  # frames per second for ``realtime`` replay of images
DEFAULT_VIDEO_RATE = 25.0  # when a video does not say its own fps


def read_image(path: Path) -> np.ndarray | None:
    """Read an image as RGB uint8, or None if it cannot be decoded."""
    try:
        return read_image_rgb(path)
    except InputError:
        return None


class FileSource:
    """Replays ``path`` (image, folder of images, or video) at ``rate`` frames per second.

    ``rate=None`` returns frames as fast as they can be read (batch mode) unless ``realtime``
    is set, in which case a video plays at its own fps and images at ``DEFAULT_IMAGE_RATE``.
    With ``loop=False`` ``read()`` returns None after the last frame.
    """

    def __init__(
        self,
        path: str | Path,
        rate: float | None = None,
        loop: bool = False,
        *,
        realtime: bool = False,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"{self.path} does not exist: check the path")
        self.loop = bool(loop)
        self.realtime = bool(realtime)
        self._rate = check_rate(rate)
        self._files: list[Path] = []
        if self.path.is_dir():
            self.kind = "folder"
            self._files = list_images(self.path)
            if not self._files:
                exts = ", ".join(sorted(IMAGE_EXTENSIONS))
                raise SourceError(f"{self.path} contains no images ({exts}): choose another folder")
        elif self.path.suffix.lower() in IMAGE_EXTENSIONS:
            self.kind = "image"
            self._files = [self.path]
        else:
            self.kind = "video"  # anything else is handed to OpenCV's video reader
        self.name = self.path.name or str(self.path)
        #: Image files that could not be read and were skipped.
        self.skipped: list[Path] = []
        self._bad: set[Path] = set()
        self._cached: np.ndarray | None = None  # a single image is decoded once
        #: File the last frame came from (the video itself for videos); None before the first.
        self.current_path: Path | None = None
        #: Index of the last frame within the file list or the video; -1 before the first.
        self.current_index = -1
        self._cap: cv2.VideoCapture | None = None
        self._video_fps: float | None = None
        self._video_frames: int | None = None
        self._shape: tuple[int, int] | None = None
        self._pacer = Pacer(self._rate)
        self._seq = 0
        self._opened = False

    # ------------------------------------------------------------------ info
    @property
    def rate(self) -> float | None:
        """The pacing rate in use (frames per second), None for as fast as possible."""
        return self._pacer.rate

    @property
    def frame_count(self) -> int | None:
        """Frames in one pass: number of images, or the video's count once open (if known)."""
        return len(self._files) if self.kind != "video" else self._video_frames

    def __len__(self) -> int:
        count = self.frame_count
        if count is None:
            raise TypeError(f"the frame count of {self.name} is not known (open it first)")
        return count

    # ------------------------------------------------------------------ FrameSource
    def open(self) -> None:
        self.close()
        self._seq, self.current_index, self.current_path = 0, -1, None
        rate = self._rate
        if self.kind == "video":
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                cap.release()
                raise SourceError(f"{self.path} cannot be read as a video: check the file")
            self._cap = cap
            fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self._video_fps = fps if 0 < fps < 1000 else None
            self._video_frames = count if count > 0 else None
            if rate is None and self.realtime:
                rate = self._video_fps or DEFAULT_VIDEO_RATE
        elif rate is None and self.realtime:
            rate = DEFAULT_IMAGE_RATE
        self._pacer = Pacer(rate)
        self._opened = True

    def read(self) -> Frame | None:
        if not self._opened:
            raise RuntimeError(f"{self.name} is not open: call open() first")
        image = self._read_video() if self.kind == "video" else self._read_image()
        if image is None:
            return None
        self._shape = (int(image.shape[0]), int(image.shape[1]))
        self._pacer.wait()
        index = None
        if self.kind == "video":  # a recording: the same view again within a few frames
            position = SlidePosition(str(self.path), t=float(self.current_index))
            index = self.current_index
        else:  # a still field: its cells are the same every time it is shown
            position = SlidePosition(str(self.current_path), still=True)
        path = str(self.current_path)
        frame = Frame(image, self._seq, time.monotonic(), path, position, path, index)
        self._seq += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._cached = None
        self._opened = False

    def properties(self) -> dict[str, PropertyInfo]:
        return {FPS: PropertyInfo(FPS, self.rate, 0.1, 1000.0)}

    def set_property(self, name: str, value: float) -> None:
        if name != FPS:
            raise UnsupportedProperty(
                f"a file replay cannot set {name!r}: only the replay rate (fps) can change"
            )
        self._pacer = Pacer(check_rate(value))

    def describe(self) -> dict[str, Any]:
        h, w = self._shape if self._shape else (None, None)
        extra: dict[str, Any] = {
            "path": str(self.path),
            "loop": self.loop,
            "frame_count": self.frame_count,
            "skipped": [str(p) for p in self.skipped],
        }
        if self.kind == "video":
            extra["video_fps"] = self._video_fps
        return SourceInfo(self.kind, self.name, w, h, self.rate, extra=extra).to_dict()

    # ------------------------------------------------------------------ helpers
    def _read_image(self) -> np.ndarray | None:
        n = len(self._files)
        for _ in range(n):  # at most one full pass looking for a readable file
            index = self.current_index + 1
            if index >= n:
                if not self.loop:
                    return None
                index = 0
            self.current_index = index
            path = self._files[index]
            if path in self._bad:
                continue
            image = self._cached if self._cached is not None else read_image(path)
            if image is not None:
                self.current_path = path
                if self.kind == "image":
                    self._cached = image
                    return image.copy()
                return image
            if self.kind == "image":
                raise SourceError(f"{path} cannot be read as an image: check the file")
            log.warning("skipping %s: it cannot be read as an image", path)
            self.skipped.append(path)
            self._bad.add(path)
        if len(self.skipped) == n:
            raise SourceError(f"none of the {n} images in {self.path} can be read: check the files")
        return None

    def _read_video(self) -> np.ndarray | None:
        assert self._cap is not None
        ok, bgr = self._cap.read()
        if not ok and self.loop and self.current_index >= 0:
            # Rewind; reopen if the container cannot seek.
            if not self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
                self._cap.release()
                self._cap = cv2.VideoCapture(str(self.path))
            self.current_index = -1
            ok, bgr = self._cap.read()
        if not ok:
            if self.current_index < 0:
                raise SourceError(f"{self.path} has no readable video frames: check the file")
            return None
        self.current_index += 1
        self.current_path = self.path
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
