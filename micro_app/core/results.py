"""What the inference engine publishes for one frame, and its JSON form for sidecars."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from micro_app.core.appearance import UNLIKE_SHARE, unlike_message
from micro_app.core.geometry import Box

UNIDENTIFIED = "unidentified"
UNCLASSIFIED = "unclassified"  # located, but no cell model was loaded
ATYPICAL = "atypical"  # unlike every class the model knows (open-set check): review it
SHOWN = {ATYPICAL: "atypical — review"}  # how a label reads in the window and on exports


@dataclass(frozen=True)
class CellResult:
    """One located white cell and, when a cell model ran, its classification."""

    box: Box
    nucleus_box: Box
    label: str
    confidence: float
    probabilities: dict[str, float]
    touches_border: bool = False
    # distance from the nearest of the model's training sources, in units of its threshold
    # (``core.appearance``: above 1 is unlike them all); None: not checked
    appearance_score: float | None = None
    unlike_training: bool = False
    # distance from every class in the network's own features (``core.openset``)
    open_set_score: float | None = None
    atypical: bool = False

    @property
    def provisional(self) -> bool:
        """The cell looks unlike the model's training images (stain, camera): its class is
        shown and counted, but as provisional, never with a confidence."""
        return self.unlike_training

    @property
    def predicted(self) -> str:
        """The most probable class even when the cell is reported as unidentified."""
        if not self.probabilities:
            return self.label
        return max(self.probabilities, key=lambda k: self.probabilities[k])

    def to_dict(self, cell_id: int) -> dict[str, Any]:
        return {
            "id": cell_id,
            "box": self.box.as_list(),
            "nucleus_box": self.nucleus_box.as_list(),
            "label": self.label,
            "predicted": self.predicted,
            "confidence": round(self.confidence, 6),
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "touches_border": self.touches_border,
            "appearance_score": None
            if self.appearance_score is None
            else round(self.appearance_score, 4),
            "unlike_training": self.unlike_training,
            "provisional": self.provisional,
            "open_set_score": None
            if self.open_set_score is None
            else round(self.open_set_score, 4),
            "atypical": self.atypical,
        }


@dataclass(frozen=True)
class FieldResult:
    """A ``field`` model's verdict on the whole frame."""

    label: str
    confidence: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
        }


@dataclass(frozen=True)
class FrameResult:
    """Everything computed for one frame; ``frame_seq`` ties it to the frame it describes."""

    frame_seq: int
    timestamp: float
    image_size: tuple[int, int]  # (height, width)
    cells: tuple[CellResult, ...]
    um_per_px: float
    scale_source: str
    latency_ms: float
    model: dict[str, Any] | None = None
    field_result: FieldResult | None = None
    threshold: float = 0.0
    device: str = "none"
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    # share of this frame's checked inputs (cells, or the field) unlike the training images
    unlike_share: float | None = None
    # each cell as the model saw it (uint8, the model's input size), for review and teaching
    crops: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def unlike_training(self) -> bool:
        return self.unlike_share is not None and self.unlike_share > UNLIKE_SHARE

    @property
    def input_warning(self) -> str | None:
        """One line for the window and sidecars when the input is unlike the training data."""
        if not self.unlike_training or self.unlike_share is None:
            return None
        return unlike_message(self.unlike_share, field=self.field_result is not None)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.cells:
            out[c.label] = out.get(c.label, 0) + 1
        return out

    def cell_at(self, x: float, y: float) -> int | None:
        """Index of the cell whose box holds the point (the smallest such box)."""
        hits = [i for i, c in enumerate(self.cells) if c.box.contains(x, y)]
        if not hits:
            return None
        return min(hits, key=lambda i: self.cells[i].box.width * self.cells[i].box.height)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_seq": self.frame_seq,
            "image_size": {"height": self.image_size[0], "width": self.image_size[1]},
            "um_per_px": round(self.um_per_px, 6),
            "scale_source": self.scale_source,
            "latency_ms": round(self.latency_ms, 3),
            "device": self.device,
            "model": self.model,
            "unidentified_threshold": self.threshold,
            "field": self.field_result.to_dict() if self.field_result else None,
            "input_check": {
                "unlike_training_share": None
                if self.unlike_share is None
                else round(self.unlike_share, 4),
                "unlike_training": self.unlike_training,
                "warning": self.input_warning,
            },
            "counts": self.counts(),
            "cells": [c.to_dict(i) for i, c in enumerate(self.cells)],
        }


def label_from_probs(
    probs: np.ndarray, classes: tuple[str, ...], threshold: float
) -> tuple[str, float, dict[str, float]]:
    """Top class, its probability and the full distribution; ``unidentified`` below threshold."""
    k = int(np.argmax(probs))
    conf = float(probs[k])
    label = classes[k] if conf >= threshold else UNIDENTIFIED
    return label, conf, {c: float(p) for c, p in zip(classes, probs, strict=True)}
