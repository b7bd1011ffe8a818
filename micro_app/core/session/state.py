"""What a live session is doing, as values: its state, the model's state, a frozen status
snapshot (read without touching the device), an error event, and one classified frame."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from micro_app.core.engine import Engine
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


@dataclass(frozen=True)
class ModelInfo:
    """The model in use, as the window and the terminal read it (no model object)."""

    state: ModelState
    message: str  # why the last load failed, or ""
    folder: str | None  # the package folder in use, None without a model
    backend: str  # where models run: "auto", "onnx", ...
    device: str  # where this one runs: "CPU", "GPU: …", or "none"
    name: str = ""
    version: str = ""
    classes: tuple[str, ...] = ()
    scope: str = ""  # "cell" or "field"
    threshold: float = 0.5  # below this a cell is unidentified
    card: dict[str, Any] | None = None  # the card as a dict, None without a model

    @classmethod
    def of(
        cls, engine: Engine, folder: str | None, backend: str, state: ModelState, message: str
    ) -> ModelInfo:
        clf = engine.classifier
        if clf is None:
            return cls(state, message, None, backend, engine.device, threshold=engine.threshold)
        card = clf.card
        return cls(
            state,
            message,
            folder,
            backend,
            engine.device,
            card.name,
            card.version,
            tuple(clf.classes),
            card.scope,
            engine.threshold,
            card.to_dict(),
        )

    @property
    def training_data(self) -> dict[str, Any]:
        data = (self.card or {}).get("training_data")
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class SessionStatus:
    state: SessionState
    model_state: ModelState
    model: str  # "name version", or "" without a model
    model_message: str  # why a load failed, or ""
    model_folder: str | None  # the package folder in use
    backend: str  # where models run, as chosen ("auto", "onnx", ...)
    device: str  # where the model runs: "CPU", "GPU: …", or "none"
    source: str  # the source's name
    resolution: tuple[int, int] | None  # (width, height) of the frames delivered
    camera_fps: float
    inference_fps: float
    latency_ms: float
    classified: int  # frames the model classified; it takes the newest, skipping the rest
    frames: int
    errors: int
    reason: str = ""  # why the run failed, when it did
    source_info: dict[str, Any] = field(default_factory=dict)


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
