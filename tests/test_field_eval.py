"""Scoring the whole pipeline on another lab's typed fields (BCCD)."""

from __future__ import annotations

from pathlib import Path

import pytest

from micro_app.core.engine import Engine
from micro_app.core.field_eval import load_typed_fields, score_fields
from micro_app.core.models import load_package

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_typed_fields_are_read(bccd_dir: Path) -> None:
    fields = load_typed_fields(bccd_dir)
    assert len(fields) >= 15
    types = {f.wbc_type for f in fields}
    assert {"neutrophil", "eosinophil", "lymphocyte", "monocyte"} <= types
    assert types <= {"neutrophil", "eosinophil", "lymphocyte", "monocyte", "basophil"}
    assert all(f.image.is_file() for f in fields)


def test_every_typed_cell_is_located_and_scored(bccd_dir: Path, tiny_package: Path) -> None:
    fields = load_typed_fields(bccd_dir)
    score = score_fields(Engine(load_package(tiny_package)), fields)
    assert score.n == len(fields)
    assert score.located == score.n  # the locator finds every typed white cell
    # the colour model knows none of the four types: nothing can be right
    assert score.correct == 0 and score.accuracy == 0.0
    assert 0.4 < score.baseline() < 0.8  # most typed BCCD cells are neutrophils
    assert sum(sum(c.values()) for c in score.confusion.values()) == score.n
