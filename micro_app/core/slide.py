"""One slide's differential count: every counted cell once, with its review corrections.

The live session feeds each classified ``FrameResult`` to ``SlideSession.add_result``; the
tracker decides when a cell is counted. A cell is counted only once the model has
classified it, and when the source knows where a frame lies on the slide (a replayed file,
the demo stage) a cell is counted once per slide position: a looping source shows it again
without counting it again. A user's correction is kept beside the model's prediction and
both go into every export (``core.slide_export`` writes the CSV and the JSON).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from micro_app.core.frame import SlidePosition
from micro_app.core.geometry import Box
from micro_app.core.results import UNCLASSIFIED, FrameResult
from micro_app.core.tracking import CellTracker, Track

# watched classes and the share of counted cells above which the status warns: blasts and
# immature cells are not expected in healthy peripheral blood; many unidentified cells mean
# the model is unsure of this slide
DEFAULT_WATCH = {
    "unidentified": 0.10,
    "ig": 0.05,
    "blast": 0.01,
    "erythroblast": 0.05,
    # unlike every class the model knows (blasts, plasma cells, smudge cells, artefacts)
    "atypical": 0.02,
}
# classes whose warning asks for a person: a blast in peripheral blood is referred
REFER = ("blast",)
THUMB = 64


@dataclass
class SlideCell:
    cell_id: int
    predicted: str
    confidence: float
    probabilities: dict[str, float]
    box: Box
    frame_seq: int
    time: str
    thumbnail: np.ndarray | None = None
    corrected: str | None = None
    unlike_training: bool = False  # looked unlike the model's training images in some frame
    crop: np.ndarray | None = None  # the cell as the model saw it when it was counted

    @property
    def label(self) -> str:
        return self.corrected or self.predicted


@dataclass
class CountStatus:
    """A slide's count. ``percentages`` are shares of the cells whose class stands: a
    provisional cell is counted (``total``, ``counts``, ``provisional``) but in no share."""

    counts: dict[str, int]
    total: int
    target: int
    percentages: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    # per label, the counted cells that looked unlike the model's training images: their
    # class is provisional until the model is set up for this microscope
    provisional: dict[str, int] = field(default_factory=dict)
    fields: int = 0  # still fields (images of a folder) classified: what the count is from

    @property
    def n_provisional(self) -> int:
        return sum(self.provisional.values())

    def provisional_line(self, where: str = "") -> str | None:
        """The one line about provisional cells, or None when there are none. ``where`` is
        the caller's own pointer to the set-up (a menu, a command), said in brackets."""
        n = self.n_provisional
        if not n:
            return None
        how = f" ({where})" if where else ""
        return (
            f"{n} of {self.total} cells are provisional: they look unlike the model's "
            "training images, so their classes are not to be trusted as they stand and they "
            f"are in no percentage; set the model up for this microscope{how} and review them"
        )

    def shown_share(self, label: str) -> float | None:
        """A row's share in % as every front end shows it; None for a row of provisional
        cells only (no percentage: their class is not to be trusted yet)."""
        if self.counts.get(label) and label not in self.percentages:
            return None
        return self.percentages.get(label, 0.0)

    @property
    def n_standing(self) -> int:
        """The counted cells whose class stands: the base of every share."""
        return self.total - self.n_provisional

    @property
    def done(self) -> bool:
        return self.total >= self.target


def watch_message(label: str, n: int, total: int, share: float, aside: int = 0) -> str:
    """The warning for a watched class above its share of the counted cells (``aside``:
    the provisional cells, in no share)."""
    if label in REFER:
        return f"{n} {label}{'s' if n != 1 else ''} in {total} cells: refer for review"
    cells = f"{total} cells" + (f" ({aside} provisional ones aside)" if aside else "")
    return f"{label}: {100.0 * n / total:.1f}% of {cells}, above the {share:.0%} alert"


class SlideSession:
    def __init__(
        self,
        name: str = "",
        target: int = 100,
        threshold: float = 0.5,
        watch: dict[str, float] | None = None,
        tracker: CellTracker | None = None,
    ) -> None:
        if target < 1:
            raise ValueError(f"differential target must be at least 1 cell, got {target}")
        self.name = name or "slide_" + _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.target = target
        self.threshold = threshold
        self.watch = dict(DEFAULT_WATCH if watch is None else watch)
        self.tracker = tracker or CellTracker()
        self.cells: dict[int, SlideCell] = {}
        self.snapshots: list[Path] = []
        # counted cells by slide position: key -> [(x, y, t, radius, cell id)]
        self._places: dict[str, list[tuple[float, float, float | None, float, int]]] = {}
        self._alias: dict[int, int] = {}  # a new track of an already counted cell -> its id
        self._fields: set[tuple[str, float | None]] = set()  # the still fields classified
        self.started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")

    # -- live updates ----------------------------------------------------------------------
    def add_result(
        self,
        result: FrameResult,
        image: np.ndarray | None = None,
        position: SlidePosition | None = None,
    ) -> list[int]:
        """Track the cells of one classified frame; returns the cell id of each cell (in
        order): the id of the counted cell it is, or its track id while not yet counted.
        A frame no model classified counts nothing (its cells have no class yet)."""
        if result.model is None or any(c.label == UNCLASSIFIED for c in result.cells):
            return []
        if position is not None and position.still:
            return self._add_still(result, image, position)
        track_ids, newly = self.tracker.update(result)
        for track in newly:
            known = self._known_place(track.box.center, track.box.width, position)
            if known is not None:
                self._alias[track.track_id] = known
                continue
            cell = self._record(track, result, image)
            if result.crops is not None:
                cell.crop = result.crops[track_ids.index(track.track_id)]
            self.cells[track.track_id] = cell
            self._remember_place(track.box.center, track.box.width, position, track.track_id)
        # while a counted cell stays in view its vote keeps improving
        for tid, res in zip(track_ids, result.cells, strict=False):
            if tid in self.cells:
                self._refresh(self.cells[tid], self.tracker.tracks[tid])
                self.cells[tid].unlike_training |= res.unlike_training
        return [self._alias.get(t, t) for t in track_ids]

    def _add_still(
        self, result: FrameResult, image: np.ndarray | None, position: SlidePosition
    ) -> list[int]:
        """A still field (an image of a folder): each cell is what it is the first time it
        is shown; a cell at a place counted at an earlier showing is that cell (two cells
        side by side in one field are two cells, as ``micro-app classify`` counts them)."""
        ids = []
        self._fields.add((position.key, position.t))
        earlier = list(self._places.get(position.key, ()))
        for i, c in enumerate(result.cells):
            known = self._known_place(c.box.center, c.box.width, position, earlier)
            if known is None:
                cid = self.tracker.new_id()
                track = Track(cid, c.box, result.frame_seq, result.frame_seq)
                track._accumulate(c)
                cell = self._record(track, result, image)
                if result.crops is not None:
                    cell.crop = result.crops[i]
                cell.unlike_training = c.unlike_training
                self.cells[cid] = cell
                self._remember_place(c.box.center, c.box.width, position, cid)
                known = cid
            ids.append(known)
        return ids

    # a recording's frames within this many frames of each other may show the same cell
    T_WINDOW = 30.0

    def _known_place(
        self,
        centre: tuple[float, float],
        width: float,
        position: SlidePosition | None,
        places: list[tuple[float, float, float | None, float, int]] | None = None,
    ) -> int | None:
        """The counted cell at this slide position, if one was counted there (among
        ``places``, default all of this key's)."""
        if position is None:
            return None
        x, y = position.to_slide(*centre)
        if places is None:
            places = self._places.get(position.key, [])
        for px, py, pt, radius, cell_id in places:
            if pt is not None and position.t is not None and abs(pt - position.t) > self.T_WINDOW:
                continue
            dx, dy = abs(x - px), abs(y - py)
            if position.wrap is not None:
                dx, dy = min(dx, position.wrap[0] - dx), min(dy, position.wrap[1] - dy)
            if dx * dx + dy * dy <= max(radius, self.tracker.match_radius * width) ** 2:
                return cell_id
        return None

    def _remember_place(
        self,
        centre: tuple[float, float],
        width: float,
        position: SlidePosition | None,
        cell_id: int,
    ) -> None:
        if position is None:
            return
        x, y = position.to_slide(*centre)
        radius = self.tracker.match_radius * width
        self._places.setdefault(position.key, []).append((x, y, position.t, radius, cell_id))

    def _record(self, track: Track, result: FrameResult, image: np.ndarray | None) -> SlideCell:
        thumb = None
        if image is not None:
            b = track.box
            crop = image[max(0, b.y0) : b.y1, max(0, b.x0) : b.x1]
            if crop.size:
                thumb = cv2.resize(crop, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
        cell = SlideCell(
            cell_id=track.track_id,
            predicted="",
            confidence=0.0,
            probabilities={},
            box=track.box,
            frame_seq=result.frame_seq,
            time=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            thumbnail=thumb,
        )
        self._refresh(cell, track)
        return cell

    def _refresh(self, cell: SlideCell, track: Track) -> None:
        cell.probabilities = track.probabilities
        cell.predicted = track.label(self.threshold)
        cell.confidence = max(cell.probabilities.values(), default=0.0)

    # -- review ----------------------------------------------------------------------------
    def correct(self, cell_id: int, label: str) -> None:
        if cell_id not in self.cells:
            raise KeyError(f"cell {cell_id} is not counted on this slide")
        cell = self.cells[cell_id]
        cell.corrected = None if label == cell.predicted else label

    def corrections(self) -> dict[int, dict[str, str]]:
        return {
            c.cell_id: {"predicted": c.predicted, "corrected": c.corrected}
            for c in self.cells.values()
            if c.corrected
        }

    # -- counts ----------------------------------------------------------------------------
    def status(self) -> CountStatus:
        """The count. A provisional cell (unlike the training images, not reviewed) is
        counted but in no share: the percentages, and the alerts on them, are of the cells
        whose class stands; a blast is referred however it looked. Cells unlike the
        training images are said once, by ``CountStatus.provisional_line``."""
        counts: dict[str, int] = {}
        provisional: dict[str, int] = {}
        for c in self.cells.values():
            counts[c.label] = counts.get(c.label, 0) + 1
            if c.unlike_training and not c.corrected:  # a reviewer's class is not provisional
                provisional[c.label] = provisional.get(c.label, 0) + 1
        total = sum(counts.values())
        standing = {k: v - provisional.get(k, 0) for k, v in counts.items()}
        base = sum(standing.values())
        pct = {k: 100.0 * v / base for k, v in standing.items() if v}
        warnings = []
        for label, share in self.watch.items():
            if label in REFER:
                if total and counts.get(label, 0) / total > share:
                    warnings.append(watch_message(label, counts[label], total, share))
            elif base and standing.get(label, 0) / base > share:
                aside = total - base
                warnings.append(watch_message(label, standing[label], base, share, aside))
        fields = len(self._fields)
        return CountStatus(counts, total, self.target, pct, warnings, provisional, fields)
