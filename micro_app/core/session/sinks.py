"""Where snapshots go: a sink writes one classified frame (the raw frame as OME-TIFF, the
annotated PNG with the labels the slide count shows, the JSON sidecar). The session is
given its sinks; the window and ``micro-app live`` pass a folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from micro_app.core.export import SnapshotPaths, tidy_snapshots, write_snapshot
from micro_app.core.overlay import OverlayOptions, draw_overlay
from micro_app.core.results import FrameResult

if TYPE_CHECKING:
    from micro_app.core.session.state import LiveUpdate


THUMBNAIL_WIDTH = 240


@dataclass(frozen=True)
class SavedSnapshot:
    """One snapshot written: its files, and the annotated image small enough for a gallery
    (made from memory, so nothing re-reads the PNG)."""

    paths: SnapshotPaths
    thumbnail: np.ndarray  # RGB uint8, ``THUMBNAIL_WIDTH`` wide at most


class SnapshotSink(Protocol):
    def write(
        self, update: LiveUpdate, *, source: dict[str, Any], extra: dict[str, Any]
    ) -> SavedSnapshot: ...


def thumbnail(image: np.ndarray, width: int = THUMBNAIL_WIDTH) -> np.ndarray:
    h, w = image.shape[:2]
    if w <= width:
        return image.copy()
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def shown_result(update: LiveUpdate) -> FrameResult:
    """The frame's result with each counted cell labelled as the slide count has it (its
    vote over frames, or the reviewer's correction), so exports match the window."""
    cells = tuple(
        cell if label == cell.label else replace(cell, label=label)
        for cell, label in zip(update.result.cells, update.labels, strict=True)
    )
    return replace(update.result, cells=cells)


class FolderSink:
    """Snapshots into ``folder``; ``settings`` (a dict, or a function giving the current
    one) is recorded in each sidecar."""

    def __init__(
        self,
        folder: Path,
        settings: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.settings = settings
        # what a run killed while saving left behind, put in order before this one writes
        self.tidied = tidy_snapshots(self.folder)

    def __str__(self) -> str:
        return str(self.folder)

    def write(
        self, update: LiveUpdate, *, source: dict[str, Any], extra: dict[str, Any]
    ) -> SavedSnapshot:
        result = shown_result(update)
        annotated = draw_overlay(update.frame.image, result, OverlayOptions(selected=None))
        settings = self.settings() if callable(self.settings) else self.settings
        paths = write_snapshot(
            self.folder,
            update.frame.image,
            result,
            annotated,
            source=source,
            settings=settings,
            extra=extra,
        )
        return SavedSnapshot(paths, thumbnail(annotated))
