"""The slide's differential count, owned by the live session and safe to use from any
thread: the inference thread adds each classified frame, the window or the terminal reads
the count, corrects cells, writes the review into snapshots and finishes the slide."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from micro_app.core.frame import Frame
from micro_app.core.results import FrameResult
from micro_app.core.slide import CountStatus, SlideCell, SlideSession
from micro_app.core.tracking import CellTracker


class SlideCounter:
    def __init__(
        self,
        target: int = 100,
        threshold: float = 0.5,
        watch: dict[str, float] | None = None,
        name: str = "",
    ) -> None:
        self._lock = threading.RLock()
        self._watch = watch
        self._slide = SlideSession(name, target, threshold, watch)

    # -- the inference thread ---------------------------------------------------------
    def add(
        self, frame: Frame, result: FrameResult
    ) -> tuple[tuple[int, ...], tuple[bool, ...], tuple[str, ...], CountStatus]:
        """Count one frame: per cell its id, whether it is counted and the label to show."""
        with self._lock:
            ids = self._slide.add_result(result, frame.image, frame.position)
            counted, labels = [], []
            for i, cell in enumerate(result.cells):
                rec = self._slide.cells.get(ids[i]) if i < len(ids) else None
                counted.append(rec is not None)
                labels.append(rec.label if rec is not None else cell.label)
            return tuple(ids), tuple(counted), tuple(labels), self._slide.status()

    # -- review and the slide's life ----------------------------------------------------
    @property
    def name(self) -> str:
        with self._lock:
            return self._slide.name

    def status(self) -> CountStatus:
        with self._lock:
            return self._slide.status()

    def cell(self, cell_id: int) -> SlideCell | None:
        """A copy of a counted cell (None when that id is not counted)."""
        with self._lock:
            cell = self._slide.cells.get(cell_id)
            return copy.copy(cell) if cell is not None else None

    def cells(self) -> list[SlideCell]:
        with self._lock:
            return [copy.copy(c) for c in self._slide.cells.values()]

    def correct(self, cell_id: int, label: str) -> SlideCell:
        with self._lock:
            self._slide.correct(cell_id, label)
            return copy.copy(self._slide.cells[cell_id])

    def corrections(self) -> dict[int, dict[str, str]]:
        with self._lock:
            return self._slide.corrections()

    def review(self, cell_ids: tuple[int, ...] | list[int]) -> list[dict[str, Any]]:
        """What a snapshot's sidecar records of the review: per cell of the frame, its id
        on the slide, whether it is counted and how the reviewer corrected it."""
        with self._lock:
            out = []
            for i, cid in enumerate(cell_ids):
                rec = self._slide.cells.get(cid)
                out.append(
                    {
                        "id": i,
                        "track_id": cid,
                        "counted": rec is not None,
                        "label": rec.label if rec else None,
                        "corrected": rec.corrected if rec else None,
                    }
                )
            return out

    def new_slide(self, name: str = "") -> None:
        with self._lock:
            old = self._slide
            self._slide = SlideSession(name, old.target, old.threshold, self._watch, CellTracker())

    def set_target(self, target: int) -> None:
        with self._lock:
            if target < 1:
                raise ValueError(f"differential target must be at least 1 cell, got {target}")
            self._slide.target = target

    def set_threshold(self, threshold: float) -> None:
        with self._lock:
            self._slide.threshold = threshold

    def add_snapshot(self, sidecar: Path) -> None:
        with self._lock:
            self._slide.snapshots.append(sidecar)

    def frozen(self) -> SlideSession:
        """A copy of the slide as it is now, for writing its report without holding the
        count (the inference thread goes on counting meanwhile)."""
        with self._lock:
            slide = copy.copy(self._slide)
            slide.cells = {k: copy.copy(c) for k, c in self._slide.cells.items()}
            slide.snapshots = list(self._slide.snapshots)
            slide.watch = dict(self._slide.watch)
            return slide
