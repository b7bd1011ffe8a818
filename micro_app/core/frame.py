"""The frame that travels from a source through the mailbox to the inference thread."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlidePosition:
    """Where a frame lies on the slide, when its source knows it (a replayed file, the demo
    stage; never a live camera). ``key`` names the slide or the file, ``(x, y)`` is the
    frame's top-left corner in slide pixels, and ``wrap`` is the slide's ``(width, height)``
    when positions repeat (the demo pans over a torus). ``still``: the frame is a still
    image (a field of a folder), so its cells are the same every time it is shown; ``t``:
    the frame's index in a recording. A cell counted at one position is not counted again
    when a looping source shows it again."""

    key: str
    x: float = 0.0
    y: float = 0.0
    wrap: tuple[int, int] | None = None
    still: bool = False
    t: float | None = None

    def to_slide(self, cx: float, cy: float) -> tuple[float, float]:
        x, y = cx + self.x, cy + self.y
        if self.wrap is not None:
            x, y = x % self.wrap[0], y % self.wrap[1]
        return x, y


@dataclass(frozen=True)
class Frame:
    """One captured image.

    ``image`` is row-major ``(height, width, 3)`` uint8 in **RGB** order (sources convert
    OpenCV's BGR on read). ``seq`` counts frames delivered by the source since it opened,
    starting at 0; ``timestamp`` is ``time.monotonic()`` at capture; ``position`` where the
    frame lies on the slide, when the source knows it; ``path`` the file it was read from
    (an image of a folder, or a video; None for a camera or the demo), and ``index`` its
    frame in that video.
    """

    image: np.ndarray
    seq: int
    timestamp: float
    source: str
    position: SlidePosition | None = None
    path: str | None = None
    index: int | None = None

    def input_record(self) -> dict[str, object] | None:
        """Which file the frame came from, as a snapshot's sidecar says it (the same
        ``{"path", "frame_index"}`` as ``micro-app classify``); None for a camera."""
        if self.path is None:
            return None
        return {"path": self.path, "frame_index": self.index}

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
