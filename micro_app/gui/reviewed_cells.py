"""A counted cell a person labelled, kept in the lab's labelled-cell store for teaching:
what is read of the live run's slide, the key it is stored under (once per cell), and the
store entry with the label the person gave."""

from __future__ import annotations

from typing import Protocol

from micro_app.adapt.labelled import LabelledStore
from micro_app.core.slide import SlideCell


class ReviewedSlide(Protocol):
    """What teaching reads of the live run's slide (``LiveSession`` offers it)."""

    @property
    def slide_name(self) -> str: ...

    def counted_cell(self, cell_id: int) -> SlideCell | None: ...

    def counted_cells(self) -> list[SlideCell]: ...

    def correct(self, cell_id: int, label: str) -> object: ...


def review_key(session: ReviewedSlide, cell_id: int) -> str:
    """The labelled-store key of a counted cell: the same cell is stored once."""
    return f"{session.slide_name}#{cell_id}"


def remember(
    store: LabelledStore, session: ReviewedSlide, cell_id: int, label: str, model: str
) -> bool:
    """Store a reviewed cell's crop with the label a person gave it; False when the cell
    has no crop or the label is not a model class (the caller filters classes)."""
    cell = session.counted_cell(cell_id)
    if cell is None or cell.crop is None:
        return False
    store.add(
        cell.crop,
        label,
        source="confirmed" if label == cell.predicted else "correction",
        predicted=cell.predicted,
        slide=session.slide_name,
        model=model,
        key=review_key(session, cell_id),
    )
    return True
