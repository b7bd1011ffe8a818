"""The live window, driven offscreen with pytest-qt on the demo source and a file source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import close_window as close

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.settings import AppSettings, load_settings
from micro_app.gui.controller import LiveController
from micro_app.gui.main_window import MainWindow

pytestmark = pytest.mark.slow


def make_window(qtbot, tmp_path: Path, spec: str, model: Path | None) -> MainWindow:  # type: ignore[no-untyped-def]
    engine = Engine(None, params=EngineParams(), smooth_scale=True)
    controller = LiveController(engine)
    window = MainWindow(
        AppSettings(source=spec),
        controller,
        sources=[("Demo", "demo")],
        snapshot_dir=tmp_path / "snaps",
        settings_dir=tmp_path / "cfg",
    )
    qtbot.addWidget(window)
    window.show()
    controller.start(spec)
    if model is not None:
        window.load_model(str(model))
        qtbot.waitUntil(lambda: controller.engine.classifier is not None, timeout=30000)
    return window


def test_demo_frames_overlays_snapshot_and_correction(
    qtbot, tmp_path: Path, tiny_package: Path, no_leaks: None
) -> None:  # type: ignore[no-untyped-def]
    window = make_window(qtbot, tmp_path, "demo", tiny_package)
    qtbot.waitUntil(
        lambda: window.current is not None and bool(window.session.cells), timeout=20000
    )
    frame, result = window.current  # type: ignore[misc]
    assert result.model is not None and result.model["name"] == "tiny-colour"
    # the overlay is drawn: the shown image differs from the raw frame inside a cell's box
    shown = np.asarray(window.view.image_item.image)
    assert shown.shape == frame.image.shape
    assert (shown != frame.image).any()
    # select the counted cell and correct it
    tid = next(iter(window.session.cells))
    qtbot.waitUntil(lambda: tid in window.track_ids, timeout=5000)
    i = window.track_ids.index(tid)
    x, y = window.current[1].cells[i].box.center  # type: ignore[index]
    window._on_click(x, y, False)
    assert window.results.correct_button.isEnabled()
    predicted = window.session.cells[tid].predicted
    new_label = next(c for c in ("red_cell", "green_cell", "blue_cell") if c != predicted)
    window.correct_selected(new_label)
    assert window.session.corrections() == {tid: {"predicted": predicted, "corrected": new_label}}
    # snapshot: three files, the review in the sidecar, a thumbnail in the gallery
    sidecar = window.snapshot()
    assert sidecar is not None and sidecar.is_file()
    doc = json.loads(sidecar.read_text())
    assert (tmp_path / "snaps" / doc["files"]["raw"]).is_file()
    assert (tmp_path / "snaps" / doc["files"]["annotated"]).is_file()
    assert any(c["corrected"] == new_label for c in doc["review"])
    assert window.gallery.list.count() == 1
    out = window.finish_slide()
    assert out is not None and out["report"].is_file()
    assert new_label in out["csv"].read_text()
    close(window)
    saved = load_settings(tmp_path / "cfg")
    assert saved.model_dir == str(tiny_package)


def test_a_cell_in_view_for_many_frames_counts_once(
    qtbot, tmp_path: Path, bccd_dir: Path, tiny_package: Path, no_leaks: None
) -> None:  # type: ignore[no-untyped-def]
    field = bccd_dir / "images" / "BloodImage_00030.jpg"  # one white cell
    window = make_window(qtbot, tmp_path, str(field), tiny_package)
    qtbot.waitUntil(
        lambda: window.current is not None and window.current[1].frame_seq > 25, timeout=30000
    )
    assert window.current is not None and len(window.current[1].cells) == 1
    assert window.session.status().total == 1
    close(window)


def test_source_error_is_shown_once_and_the_app_keeps_running(
    qtbot, tmp_path: Path, no_leaks: None
) -> None:  # type: ignore[no-untyped-def]
    window = make_window(qtbot, tmp_path, "demo", None)
    qtbot.waitUntil(lambda: window.current is not None, timeout=10000)
    window.controller.start(str(tmp_path / "missing.avi"))
    window.controller.start(str(tmp_path / "missing.avi"))
    assert window.banner_box.isVisibleTo(window)
    assert "does not exist" in window.banner.text()
    assert len(window._errors_shown) == 1
    window._choose_source("demo")  # back to work
    qtbot.waitUntil(lambda: window.current is not None, timeout=10000)
    close(window)


def test_threshold_slider_changes_the_live_mask(qtbot, tmp_path: Path, no_leaks: None) -> None:  # type: ignore[no-untyped-def]
    window = make_window(qtbot, tmp_path, "demo", None)
    qtbot.waitUntil(
        lambda: window.current is not None and bool(window.current[1].cells), timeout=10000
    )
    window.controls.hsv["Smin"].set_value(254)
    window.controls._preprocess_edited()
    seq = window.current[1].frame_seq  # type: ignore[index]
    qtbot.waitUntil(lambda: window.current[1].frame_seq > seq + 2, timeout=10000)  # type: ignore[index]
    assert window.current is not None and not window.current[1].cells  # nothing is that saturated
    assert window.settings.preprocess.lower_hsv[1] == 254
    close(window)


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env.update(extra)
    return env


def test_smoke_real_app_quits_on_a_timer(tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    env = _env(
        QT_QPA_PLATFORM="offscreen",
        MICRO_APP_CONFIG_DIR=str(tmp_path / "cfg"),
        MICRO_APP_LOG_DIR=str(tmp_path / "log"),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "micro_app",
            "--demo",
            "--screenshot",
            str(shot),
            "--quit-after",
            "4",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10000


def test_no_display_says_so_in_one_line(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("display detection differs off Linux")
    proc = subprocess.run(
        [sys.executable, "-m", "micro_app", "--demo"],
        env=_env(
            MICRO_APP_CONFIG_DIR=str(tmp_path / "cfg"), MICRO_APP_LOG_DIR=str(tmp_path / "log")
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "classify" in lines[0]
