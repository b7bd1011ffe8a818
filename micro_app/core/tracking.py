"""Follow cells from frame to frame so that a cell in view for many frames counts once.

Matching is greedy by centre distance, relative to the cell's own size (no fixed pixel
counts): a cell matches the nearest live track whose centre lies within ``match_radius``
box widths. A track is *counted* once it was seen in ``min_hits`` frames, at least once
whole (``is_whole``: neither its nucleus nor its crop reaches the frame's edge): a cell cut
by the frame's edge is not counted until it comes into view whole, and a cell only ever
seen cut is never counted (half a cell reads as another class, or as none, or as unlike
every class). Its label is the class with the highest summed probability over its frames
(a vote that steadies the flicker of single frames). Once the cell has been seen whole,
only its whole views vote: the frames in which the frame's edge cut it do not dilute it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from micro_app.core.geometry import Box
from micro_app.core.results import ATYPICAL, UNCLASSIFIED, UNIDENTIFIED, CellResult, FrameResult


@dataclass
class Track:
    track_id: int
    box: Box
    first_seq: int
    last_seq: int
    hits: int = 1
    prob_sum: dict[str, float] = field(default_factory=dict)
    label_votes: dict[str, int] = field(default_factory=dict)
    # the same, over the frames in which the cell was whole (not cut by the frame's edge)
    whole_prob_sum: dict[str, float] = field(default_factory=dict)
    whole_votes: dict[str, int] = field(default_factory=dict)
    best_confidence: float = 0.0
    counted: bool = False

    def add(self, cell: CellResult, seq: int, whole: bool | None = None) -> None:
        self.box = cell.box
        self.last_seq = seq
        self.hits += 1
        self._accumulate(cell, whole)

    def _accumulate(self, cell: CellResult, whole: bool | None = None) -> None:
        """Add one view's vote; ``whole``: the view was not cut by the frame's edge (by
        default: its nucleus does not reach the edge)."""
        if whole is None:
            whole = not cell.touches_border
        sums = [(self.prob_sum, self.label_votes)]
        if whole:
            sums.append((self.whole_prob_sum, self.whole_votes))
        for probs, votes in sums:
            for k, v in cell.probabilities.items():
                probs[k] = probs.get(k, 0.0) + v
            votes[cell.label] = votes.get(cell.label, 0) + 1
        self.best_confidence = max(self.best_confidence, cell.confidence)

    @property
    def seen_whole(self) -> bool:
        """Seen at least once not cut by the frame's edge."""
        return bool(self.whole_votes)

    @property
    def _votes(self) -> tuple[dict[str, float], dict[str, int]]:
        if self.whole_votes:
            return self.whole_prob_sum, self.whole_votes
        return self.prob_sum, self.label_votes

    @property
    def probabilities(self) -> dict[str, float]:
        prob_sum = self._votes[0]
        total = sum(prob_sum.values())
        return {k: v / total for k, v in prob_sum.items()} if total else {}

    def label(self, threshold: float) -> str:
        """``atypical`` when the open-set check flagged the cell in at least half of its
        frames; else the class with the highest summed probability (``unidentified`` below
        the threshold)."""
        votes = self._votes[1]
        if 2 * votes.get(ATYPICAL, 0) >= max(1, sum(votes.values())):
            return ATYPICAL
        probs = self.probabilities
        if not probs:
            return max(votes, key=lambda k: votes[k], default=UNCLASSIFIED)
        best = max(probs, key=lambda k: probs[k])
        return best if probs[best] >= threshold else UNIDENTIFIED


def is_whole(cell: CellResult, image_size: tuple[int, int]) -> bool:
    """The cell is whole in a frame of ``image_size`` (height, width): neither its nucleus
    nor its crop (the square the model sees, clipped to the frame) reaches the frame's edge.
    A crop cut by the edge, even around a whole nucleus, reads as another class or as unlike
    every class."""
    h, w = image_size
    b = cell.box
    return not cell.touches_border and b.x0 > 0 and b.y0 > 0 and b.x1 < w and b.y1 < h


class CellTracker:
    def __init__(self, match_radius: float = 0.6, max_gap: int = 10, min_hits: int = 3) -> None:
        if match_radius <= 0 or max_gap < 0 or min_hits < 1:
            raise ValueError(
                f"invalid tracker settings: match_radius={match_radius}, max_gap={max_gap}, "
                f"min_hits={min_hits}"
            )
        self.match_radius = match_radius
        self.max_gap = max_gap
        self.min_hits = min_hits
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def new_id(self) -> int:
        """An id no track of this tracker has or will have (for cells counted without one)."""
        return next(self._ids)

    def reset(self) -> None:
        self.tracks.clear()

    def update(self, result: FrameResult) -> tuple[list[int], list[Track]]:
        """Assign each cell of ``result`` a track id; returns the ids (one per cell, in order)
        and the tracks that became counted with this frame (seen ``min_hits`` times, once
        whole at least)."""
        seq, size = result.frame_seq, result.image_size
        for tid in [t.track_id for t in self.tracks.values() if seq - t.last_seq > self.max_gap]:
            del self.tracks[tid]  # gone from view: a counted cell lives on in the slide session
        live = [t for t in self.tracks.values() if t.last_seq < seq]
        pairs: list[tuple[float, int, int]] = []
        for ci, cell in enumerate(result.cells):
            cx, cy = cell.box.center
            for t in live:
                tx, ty = t.box.center
                d = float(np.hypot(cx - tx, cy - ty))
                if d <= self.match_radius * max(cell.box.width, t.box.width):
                    pairs.append((d, ci, t.track_id))
        pairs.sort()
        ids: list[int | None] = [None] * len(result.cells)
        used: set[int] = set()
        for _, ci, tid in pairs:
            if ids[ci] is None and tid not in used:
                ids[ci] = tid
                used.add(tid)
                self.tracks[tid].add(result.cells[ci], seq, is_whole(result.cells[ci], size))
        newly: list[Track] = []
        for ci, cell in enumerate(result.cells):
            if ids[ci] is None:
                tid = next(self._ids)
                track = Track(tid, cell.box, seq, seq)
                track._accumulate(cell, is_whole(cell, size))
                self.tracks[tid] = track
                ids[ci] = tid
            track = self.tracks[ids[ci]]  # type: ignore[index]
            if not track.counted and track.hits >= self.min_hits and track.seen_whole:
                track.counted = True
                newly.append(track)
        return [int(i) for i in ids if i is not None], newly
