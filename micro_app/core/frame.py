"""The frame that travels from a source through the mailbox to the inference thread."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured image.

    ``image`` is row-major ``(height, width, 3)`` uint8 in **RGB** order (sources convert
    OpenCV's BGR on read). ``seq`` counts frames delivered by the source since it opened,
    starting at 0; ``timestamp`` is ``time.monotonic()`` at capture.
    """

    image: np.ndarray
    seq: int
    timestamp: float
    source: str

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
