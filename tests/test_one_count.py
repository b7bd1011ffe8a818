"""One set of numbers (issue 20): one folder of fields through ``micro-app classify``, a
live run on it (the ``LiveSession`` that ``micro-app live`` and the window run: a looping
folder counts each cell once) and the slide report agree on counts, shares, provisional
and unidentified cells; the window's table shows the same rows.

Before: ``live`` smoothed the scale over the frames it had seen while ``classify`` measured
each image's own, so a cell could be cut, scaled and classed differently (on the 247 BCCD
fields, 38 eosinophils and 22 atypical cells live against 44 and 17 in ``classify``); two
cells side by side in one field were counted once live; and ``classify`` printed no
differential at all (its share of unidentified cells was worked out from summary.csv)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from micro_app.cli.classify import classify_paths
from micro_app.cli.engine import load_engine
from micro_app.core.engine import Engine
from micro_app.core.imageio import list_images
from micro_app.core.models import default_model_dir
from micro_app.core.session import LiveSession, LiveUpdate, SlideCounter
from micro_app.core.settings import AppSettings
from micro_app.core.slide import CountStatus
from micro_app.core.sources import open_source
from micro_app.core.sources.smear import render_smear
from micro_app.status_text import differential_lines

# BCCD fields with what the numbers must carry: one white cell, two side by side, cells
# unlike the training images (provisional), unidentified and atypical cells
BCCD_FIELDS = (
    "BloodImage_00000.jpg",
    "BloodImage_00008.jpg",
    "BloodImage_00010.jpg",
    "BloodImage_00034.jpg",
    "BloodImage_00058.jpg",
    "BloodImage_00070.jpg",
    "BloodImage_00176.jpg",
    "BloodImage_00352.jpg",
    "BloodImage_00374.jpg",
)


def _live_count(folder: Path, engine: Engine, report_dir: Path) -> tuple[CountStatus, Path]:
    """Run a live session on the looping folder until every image was classified, then
    finish the slide (its report) and stop; the count and the report's JSON."""
    files = {str(p) for p in list_images(folder)}
    seen: set[str] = set()

    def classified(update: LiveUpdate) -> None:
        if update.result.model is not None:
            seen.add(update.frame.source)

    source = open_source(str(folder), rate=15.0, loop=True)
    session = LiveSession(source, engine, SlideCounter(100, engine.threshold))
    session.events.result_ready.connect(classified)
    session.start()
    try:
        end = time.monotonic() + 60
        while seen != files:
            assert time.monotonic() < end, f"not classified: {sorted(files - seen)}"
            time.sleep(0.05)
        count = session.count_status()
        written = session.finish_slide(report_dir, {}).result(timeout=30)
        assert written is not None
    finally:
        session.stop()
    return count, written["json"]


def _assert_one_set(classify: CountStatus, live: CountStatus, report_json: Path) -> None:
    assert live.counts == classify.counts
    assert live.total == classify.total and live.fields == classify.fields
    assert live.provisional == classify.provisional
    assert live.percentages == pytest.approx(classify.percentages)
    assert live.warnings == classify.warnings
    # what the terminals print is the same, line for line
    assert differential_lines(live) == differential_lines(classify)
    report = json.loads(report_json.read_text())
    assert report["counts"] == classify.counts and report["total"] == classify.total
    assert report["provisional"] == classify.provisional
    want = {k: round(v, 2) for k, v in classify.percentages.items()}
    assert report["percentages"] == pytest.approx(want)


def _engines(model: Path) -> tuple[Engine, Engine]:
    """The engines the two commands build: ``classify``'s and ``live``'s (which smooths
    the scale of a stream over its frames)."""
    settings = AppSettings()
    still, _ = load_engine(model, None, None, settings=settings)
    live, _ = load_engine(model, None, None, live=True, settings=settings)
    return still, live


@pytest.mark.slow
def test_bccd_fields_count_the_same_in_classify_live_and_the_report(
    tmp_path: Path, bccd_dir: Path
) -> None:
    model = default_model_dir()
    if model is None:
        pytest.skip("no shipped model in models/")
    folder = tmp_path / "fields"
    folder.mkdir()
    for name in BCCD_FIELDS:
        shutil.copy(bccd_dir / "images" / name, folder / name)
    still, live = _engines(model)
    batch = classify_paths(still, [folder], tmp_path / "classify")
    assert batch.ok and batch.count.fields == len(BCCD_FIELDS)
    count = batch.count
    # the fields carry what is compared (a new model may need other fields)
    assert count.total > len(BCCD_FIELDS) and count.n_provisional > 0
    assert count.counts.get("unidentified", 0) > 0
    # each image's own cells, none merged: the summary's rows are the counted cells
    assert count.total == batch.n_cells
    live_count, report = _live_count(folder, live, tmp_path / "report")
    _assert_one_set(count, live_count, report)


def _smear_fields(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        image, _ = render_smear(np.random.default_rng(100 + i), 480, 640, 8.0, 4)
        cv2.imwrite(str(folder / f"field_{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def test_drawn_fields_count_the_same_in_classify_live_and_the_report(
    tmp_path: Path, tiny_package: Path
) -> None:
    """Without ../shared: drawn fields and the tests' colour model, with a threshold high
    enough that some cells are unidentified."""
    folder = tmp_path / "fields"
    _smear_fields(folder, 5)
    settings: dict[str, Any] = {"threshold": 0.9}
    still, _ = load_engine(tiny_package, settings["threshold"], None, settings=AppSettings())
    live, _ = load_engine(
        tiny_package, settings["threshold"], None, live=True, settings=AppSettings()
    )
    batch = classify_paths(still, [folder], tmp_path / "classify")
    count = batch.count
    assert count.total == batch.n_cells > 0 and count.fields == 5
    assert count.counts.get("unidentified", 0) > 0
    live_count, report = _live_count(folder, live, tmp_path / "report")
    _assert_one_set(count, live_count, report)
