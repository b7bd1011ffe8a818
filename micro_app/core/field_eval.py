"""How the whole pipeline (locate, crop, classify) does on another lab's smear fields.

Reads the BCCD layout: ``images/*.jpg`` and ``wbc_types.csv`` (one row per white cell:
file name, box, number of white cells in the field, and the cell type where the field has
exactly one). For each typed field the located cell whose centre lies in the typed box is
the one scored; a field where no located cell matches counts as wrong.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.engine import Engine
from micro_app.core.geometry import Box
from micro_app.core.imageio import read_image_rgb
from micro_app.core.results import UNIDENTIFIED, FrameResult


@dataclass(frozen=True)
class TypedField:
    image: Path
    box: Box
    wbc_type: str  # lower case, as the model classes are named


def load_typed_fields(root: Path) -> list[TypedField]:
    out = []
    with open(Path(root) / "wbc_types.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            kind = (row.get("wbc_type") or "").strip().lower()
            if not kind:
                continue
            x0, y0 = max(0, int(row["xmin"]) - 1), max(0, int(row["ymin"]) - 1)
            box = Box(x0, y0, int(row["xmax"]), int(row["ymax"]))
            out.append(TypedField(Path(root) / "images" / row["filename"], box, kind))
    return out


@dataclass
class FieldScore:
    n: int = 0
    located: int = 0
    correct: int = 0  # label (after the unidentified threshold) equals the type
    correct_top: int = 0  # most probable class equals the type, threshold ignored
    unidentified: int = 0
    confusion: dict[str, Counter[str]] = field(default_factory=dict)
    type_counts: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def top_accuracy(self) -> float:
        return self.correct_top / self.n if self.n else 0.0

    def baseline(self, label: str = "neutrophil") -> float:
        """Accuracy of always answering ``label``."""
        return self.type_counts[label] / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": self.n,
            "located": self.located,
            "accuracy": round(self.accuracy, 4),
            "top_class_accuracy": round(self.top_accuracy, 4),
            "unidentified": self.unidentified,
            "always_neutrophil": round(self.baseline(), 4),
            "types": dict(self.type_counts),
            "confusion": {t: dict(c) for t, c in self.confusion.items()},
        }


def matched_cell(result: FrameResult, typed: TypedField) -> int | None:
    """Index of the located cell that is the typed one: its nucleus centre lies in the
    typed box (the best-overlapping such cell), or None when none was located."""
    hits = [i for i, c in enumerate(result.cells) if typed.box.contains(*c.nucleus_box.center)]
    return max(hits, key=lambda i: result.cells[i].box.iou(typed.box)) if hits else None


def _matches(
    engine: Engine, fields_: list[TypedField]
) -> Iterator[tuple[TypedField, FrameResult, int | None]]:
    """Each field with the engine's result on it and the index of its typed cell."""
    for f in fields_:
        result = engine.process(read_image_rgb(f.image))
        yield f, result, matched_cell(result, f)


def typed_crops(engine: Engine, fields_: list[TypedField]) -> list[np.ndarray | None]:
    """The typed cell of each field cut as the engine's model sees it (None: not located)."""
    return [
        None if i is None or r.crops is None else r.crops[i]
        for _, r, i in _matches(engine, fields_)
    ]


def score_fields(engine: Engine, fields_: list[TypedField]) -> FieldScore:
    score = FieldScore()
    for f, result, i in _matches(engine, fields_):
        score.n += 1
        score.type_counts[f.wbc_type] += 1
        row = score.confusion.setdefault(f.wbc_type, Counter())
        if i is None:
            row["(not located)"] += 1
            continue
        cell = result.cells[i]
        score.located += 1
        row[cell.label] += 1
        score.correct += cell.label == f.wbc_type
        score.correct_top += cell.predicted == f.wbc_type
        score.unidentified += cell.label == UNIDENTIFIED
    return score
