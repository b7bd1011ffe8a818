"""What a live session is doing, as values: its state, the model's state, a frozen status
snapshot (read without touching the device), an error event, and one classified frame."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from micro_app.core.frame import Frame
from micro_app.core.results import FrameResult
from micro_app.core.slide import CountStatus


class SessionState(str, enum.Enum):
    IDLE = "idle"  # built, not started
    STARTING = "starting"  # the source is opening
    RUNNING = "running"  # frames are coming
    RECONNECTING = "reconnecting"  # the source was lost; trying to get it back
    ENDED = "ended"  # stopped, or a finite source ran out
    FAILED = "failed"  # the source could not be opened or failed for good


class ModelState(str, enum.Enum):
    NONE = "none"  # no model: cells are located, not classified
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"  # the last load failed; the previous model (if any) is still in use


MODEL_WORDS = {
    ModelState.NONE: "no model",
    ModelState.LOADING: "loading model…",
    ModelState.READY: "model ready",
    ModelState.FAILED: "model failed",
}


@dataclass(frozen=True)
class SessionStatus:
    state: SessionState
    model_state: ModelState
    model: str  # "name version", or "" without a model
    model_message: str  # why a load failed, or ""
    device: str  # where the model runs: "CPU", "GPU: …", or "none"
    source: str  # the source's name
    source_kind: str  # "camera", "demo", "image", "folder", "video", or ""
    resolution: tuple[int, int] | None  # (width, height) of the frames delivered
    camera_fps: float
    inference_fps: float
    latency_ms: float
    classified: int  # frames the model classified; it takes the newest, skipping the rest
    frames: int
    errors: int
    source_info: dict[str, Any] = field(default_factory=dict)

    @property
    def model_text(self) -> str:
        words = MODEL_WORDS[self.model_state]
        if self.model_state is ModelState.FAILED and self.model_message:
            words = f"model failed: {self.model_message}"
        if self.model_state is ModelState.READY and self.model:
            words = f"model {self.model}"
        return words

    def line(self, display_fps: float | None = None, not_shown: int = 0) -> str:
        """One line for a terminal (camera fps, frames classified) or a window's status bar
        (display fps, and ``not_shown``: camera frames the window never drew). The model
        classifying the newest frame and skipping the others is by design, not a loss."""
        res = f"{self.resolution[0]}x{self.resolution[1]}" if self.resolution else "no frame yet"
        if display_fps is None:
            rate = f"camera {self.camera_fps:.1f} fps"
            seen = f"classified {self.classified} of {self.frames} frames"
        else:
            rate = f"display {display_fps:.1f} fps"
            seen = f"dropped {not_shown}"
        return (
            f"{self.source} ({self.state.value}) | {res} | {rate} | "
            f"inference {self.inference_fps:.1f} fps | latency {self.latency_ms:.0f} ms | "
            f"{seen} | {self.model_text} | {self.device}"
        )


@dataclass(frozen=True)
class ErrorEvent:
    """One worker error as the user sees it: where it happened and one line."""

    source: str  # "capture", "inference", "model", "snapshot", ...
    message: str
    count: int  # how many times this message has occurred in this session
    when: float = field(default_factory=time.time)


@dataclass(frozen=True)
class LiveUpdate:
    """One classified frame with what the slide count made of it.

    ``cell_ids``: per cell of ``result``, the counted cell it is, else its track (not yet
    counted). ``labels``: what to show per cell, the counted cell's label (its vote over
    frames, or the reviewer's correction) when counted, else the frame's own."""

    frame: Frame
    result: FrameResult
    cell_ids: tuple[int, ...]
    counted: tuple[bool, ...]
    labels: tuple[str, ...]
    count: CountStatus
