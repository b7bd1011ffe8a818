"""Frame sources: USB cameras, file replay, and the demo camera (real cells, or a drawn smear).

``open_source(spec)`` builds a source from a user's choice; the source is *not* opened here
(that happens on the capture thread, see :mod:`micro_app.core.capture`).

Spec forms:

* ``"demo"`` or ``"demo:<seed>"`` — the demo camera (:class:`DemoSource`) over the stage of
  real PBC cells every copy of the app ships (``resources/demo``: source checkout, wheel,
  installer); the synthetic smear only if that stage is missing; ``"demo:synthetic"``
  always the drawn smear (for tests);
* ``"camera:<index>"``, ``"camera"`` (index 0) or a plain whole number like ``"0"`` — a USB
  camera (:class:`OpenCVCamera`); write ``./0`` for a file called ``0``;
* ``http://…``, ``https://…``, ``rtsp://…`` — a network camera (:class:`StreamCamera`);
* anything else is a path: an image file, a folder of images, or a video file
  (:class:`FileSource`).
"""

from __future__ import annotations

import re
from pathlib import Path

from micro_app.core.errors import SourceError
from micro_app.core.imageio import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from micro_app.core.sources.base import (
    AUTO_EXPOSURE,
    EXPOSURE,
    FPS,
    GAIN,
    HEIGHT,
    WIDTH,
    FrameSource,
    Pacer,
    PropertyInfo,
    SourceInfo,
)
from micro_app.core.sources.camera_list import CameraInfo, list_cameras
from micro_app.core.sources.demo import WBC_KINDS, DemoSource, Stage, load_stage
from micro_app.core.sources.file_source import FileSource
from micro_app.core.sources.opencv_camera import OpenCVCamera
from micro_app.core.sources.stream import StreamCamera, is_stream_url

__all__ = [
    "AUTO_EXPOSURE",
    "EXPOSURE",
    "FPS",
    "GAIN",
    "HEIGHT",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "WBC_KINDS",
    "WIDTH",
    "CameraInfo",
    "DemoSource",
    "FileSource",
    "FrameSource",
    "OpenCVCamera",
    "Pacer",
    "PropertyInfo",
    "SourceInfo",
    "StreamCamera",
    "default_source_spec",
    "list_cameras",
    "open_source",
]

_CAMERA = re.compile(r"(?:camera|cam)(?::(?P<index>.*))?", re.IGNORECASE)


def open_source(
    spec: str,
    rate: float | None = None,
    loop: bool = True,
    *,
    realtime: bool = False,
    width: int | None = None,
    height: int | None = None,
) -> FrameSource:
    """Build (without opening) the source named by ``spec``; raises SourceError if it can't.

    ``rate`` paces demo and file sources (frames per second; None = as fast as possible) and
    is the frame-rate request for a camera. ``loop`` applies to file replay. ``realtime``
    plays a video at its own fps when ``rate`` is None. ``width``/``height`` size the demo
    frame or are the resolution request for a camera.
    """
    text = str(spec).strip()
    if not text:
        raise SourceError("no source given: use demo, camera:0 or a path to images or a video")
    lowered = text.lower()
    if is_stream_url(text):
        return StreamCamera(text)
    if lowered == "demo" or lowered.startswith("demo:"):
        seed_text = text[5:].strip() or "0"
        synthetic = seed_text.lower() == "synthetic"
        if synthetic:
            seed_text = "0"
        if not re.fullmatch(r"\d+", seed_text):
            raise SourceError(f"the demo seed must be a whole number like demo:1, got {text!r}")
        stage = None if synthetic else demo_stage()
        return DemoSource(width or 640, height or 480, rate=rate, seed=int(seed_text), stage=stage)
    match = _CAMERA.fullmatch(text)
    if match or text.isdigit():
        index_text = text if text.isdigit() else (match.group("index") if match else None)
        index_text = (index_text or "0").strip()
        if not index_text.isdigit():
            raise SourceError(f"a camera is chosen by a whole number like camera:0, got {text!r}")
        return OpenCVCamera(int(index_text), width=width, height=height, fps=rate)
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist: check the path")
    if not (path.is_dir() or path.is_file()):
        raise SourceError(f"{path} is neither a file nor a folder: choose images or a video")
    return FileSource(path, rate=rate, loop=loop, realtime=realtime)


def demo_stage() -> Stage | None:
    """The stage of real cells the app ships (``resources/demo``, built by
    ``scripts/make_demo_stage.py`` from PBC test-split crops), or the one in
    ``$MICRO_APP_DEMO_STAGE``; None when it is missing."""
    import os

    from micro_app.resources import app_root

    env = os.environ.get("MICRO_APP_DEMO_STAGE")
    return load_stage(Path(env) if env else app_root() / "resources" / "demo")


def default_source_spec() -> str:
    """``"camera:<first index>"`` if a camera is present, else ``"demo"`` (chosen up front,
    never as a silent replacement for a camera that failed)."""
    cameras = list_cameras()
    return f"camera:{cameras[0].index}" if cameras else "demo"
