"""A slide's count written out: one CSV row per counted cell and a JSON summary.

Both keep the model's prediction beside the user's correction. The report
(``core.report.finish_slide``) writes them next to its page; neither ever overwrites a file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from micro_app.core.atomic import atomic_write_bytes, atomic_write_json
from micro_app.core.slide import SlideSession

# the CSV's first columns; one ``p_<class>`` column per class follows, sorted by name
CELL_COLUMNS = (
    "cell_id",
    "label",
    "predicted",
    "corrected",
    "confidence",
    "frame_seq",
    "time",
    "x0",
    "y0",
    "x1",
    "y1",
    "unlike_training",
)


def cells_csv(slide: SlideSession) -> str:
    """Every counted cell, in the order counted, with its probabilities per class."""
    classes = sorted({k for c in slide.cells.values() for k in c.probabilities})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*CELL_COLUMNS, *[f"p_{k}" for k in classes]])
    for c in sorted(slide.cells.values(), key=lambda c: c.cell_id):
        w.writerow(
            [
                c.cell_id,
                c.label,
                c.predicted,
                c.corrected or "",
                f"{c.confidence:.6f}",
                c.frame_seq,
                c.time,
                *c.box.as_list(),
                int(c.unlike_training),
                *[f"{c.probabilities.get(k, 0.0):.6f}" for k in classes],
            ]
        )
    return buf.getvalue()


def slide_record(slide: SlideSession) -> dict[str, Any]:
    """The slide's summary as JSON-ready data: counts, warnings, corrections, snapshots."""
    st = slide.status()
    return {
        "slide": slide.name,
        "started": slide.started,
        "target": slide.target,
        "counts": st.counts,
        "total": st.total,
        "percentages": {k: round(v, 2) for k, v in st.percentages.items()},
        # per label, the counted cells unlike the model's training images: their class is
        # provisional and they are in no percentage
        "provisional": st.provisional,
        "warnings": [*st.warnings, *filter(None, [st.provisional_line()])],
        "corrections": {str(k): v for k, v in slide.corrections().items()},
        "snapshots": [str(p) for p in slide.snapshots],
    }


def write_cells_csv(slide: SlideSession, path: Path) -> Path:
    return atomic_write_bytes(path, cells_csv(slide).encode("utf-8"), overwrite=False)


def write_slide_json(slide: SlideSession, path: Path) -> Path:
    return atomic_write_json(path, slide_record(slide), overwrite=False)
