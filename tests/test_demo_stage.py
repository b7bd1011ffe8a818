"""The demo every copy of the app opens on: a stage of real PBC cells (CC BY 4.0) shipped in
``resources/demo``, a healthy differential that a short live session counts without an alert
or a provisional cell. The drawn smear is ``demo:synthetic``, for tests."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from micro_app.core.slide import DEFAULT_WATCH
from micro_app.core.sources import DemoSource, open_source
from micro_app.core.sources.demo import STAGE_SPEED, load_stage
from micro_app.resources import app_root

STAGE = app_root() / "resources" / "demo"


def test_demo_pans_over_the_real_cells_the_source_checkout_ships() -> None:
    src = open_source("demo", rate=None)
    assert isinstance(src, DemoSource) and src.stage is not None
    assert "PBC" in src.stage.credit and "CC BY 4.0" in src.stage.credit
    assert src.describe()["stage"] == "real cells (PBC, CC BY 4.0)"
    assert src.name == "demo"  # the drawn smear is "demo (drawn smear)"
    size = sum(f.stat().st_size for f in STAGE.iterdir())
    assert size <= 3_000_000, f"resources/demo holds {size / 1e6:.1f} MB, over the 3 MB allowed"
    src.open()
    try:
        seen: Counter[str] = Counter()
        for _ in range(60):
            frame = src.read()
            assert frame is not None and frame.image.shape == (480, 640, 3)
            seen.update(kind for _box, kind in src.last_truth)
    finally:
        src.close()
    assert seen, "no stage cell came into view"
    # a healthy differential: mostly neutrophils and lymphocytes, nothing the count watches
    kinds = Counter(c.kind for c in src.stage.cells)
    assert kinds["neutrophil"] + kinds["lymphocyte"] >= 0.7 * len(src.stage.cells)
    assert 1 <= kinds["basophil"] <= kinds["monocyte"] and kinds["eosinophil"] >= 1
    assert not set(kinds) & set(DEFAULT_WATCH)
    # the same pan speed in the window (30 frames a second) and in live (15)
    window, live = open_source("demo", rate=30), open_source("demo", rate=15)
    assert window.step * 30 == pytest.approx(live.step * 15) == STAGE_SPEED
    assert open_source("demo:synthetic").stage is None  # the drawn smear, for tests
    assert DemoSource().stage is None


def test_a_stage_is_read_as_jpeg_and_as_the_png_of_older_bundles(tmp_path: Path) -> None:
    assert load_stage(tmp_path) is None  # no stage here
    image = np.full((300, 400, 3), (240, 220, 195), np.uint8)
    meta = {
        "px_per_um": 6.85,
        "credit": "PBC",
        "cells": [{"x": 50.0, "y": 60.0, "kind": "lymphocyte", "box": [0, 0, 100, 120]}],
    }
    old = tmp_path / "old"
    old.mkdir()
    cv2.imwrite(str(old / "stage.png"), image[..., ::-1])
    (old / "stage.json").write_text(json.dumps(meta))
    new = tmp_path / "new"
    new.mkdir()
    cv2.imwrite(str(new / "stage.jpg"), image[..., ::-1])
    (new / "stage.json").write_text(json.dumps({**meta, "image": "stage.jpg"}))
    for folder in (old, new):
        stage = load_stage(folder)
        assert stage is not None and stage.image.shape == (300, 400, 3)
        assert np.abs(stage.image.astype(int) - image).max() <= 2  # RGB, as written
        assert [c.kind for c in stage.cells] == ["lymphocyte"] and stage.credit == "PBC"
    (new / "stage.jpg").unlink()
    assert load_stage(new) is None  # the image it names is gone


@pytest.mark.slow
def test_a_short_live_session_on_the_demo_raises_no_alert_and_no_provisional_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from micro_app.cli.engine import load_engine
    from micro_app.cli.live import live_source, run_live

    monkeypatch.setenv("MICRO_APP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MICRO_APP_LOG_DIR", str(tmp_path / "logs"))
    source = live_source("demo")
    engine, _ = load_engine(None, None, None, live=True, source_name=source.name)
    lines: list[str] = []
    said: list[str] = []
    assert run_live(engine, source, seconds=10, print_fn=lines.append, say_fn=said.append) == 0
    at = next(i for i, line in enumerate(lines) if line.startswith("differential:"))
    table = lines[at:]
    counted = int(table[0].split()[1])
    assert counted >= 3, table
    assert not [line for line in table if "warning" in line or "provisional" in line], table
    assert not said, said
