"""The live window, driven offscreen with pytest-qt on the demo source and a file source.
Each fault listed in the live-session issue has a test here that fails without its fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import close_window as close
from conftest import make_window

from micro_app.core.engine import Engine
from micro_app.core.imageio import read_image_rgb
from micro_app.core.models import load_package
from micro_app.core.session import ModelState
from micro_app.core.settings import load_settings

pytestmark = pytest.mark.slow


def test_demo_frames_overlays_snapshot_and_correction(
    qtbot, tmp_path: Path, tiny_package: Path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window(qtbot, tmp_path, "demo", tiny_package)
    counter = window.session
    qtbot.waitUntil(
        lambda: window.current is not None and bool(counter.counted_cells()), timeout=20000
    )
    u = window.current
    assert u is not None and u.result.model is not None and u.result.model["name"] == "tiny-colour"
    # boxes and labels are vector items over the frame; the pixels are the camera's own
    # (labels burned into the pixels ghosted when the view scaled the image)
    shown = np.asarray(window.view.image_item.image)
    assert shown.shape == u.frame.image.shape
    h = shown.shape[0]
    assert np.array_equal(shown[: h - 60], u.frame.image[: h - 60])
    # the demo knows its scale, so the scale bar is drawn in the lower right corner
    assert u.result.scale_source == "calibrated"
    assert not np.array_equal(shown[h - 60 :], u.frame.image[h - 60 :])
    drawn = window.view.overlay.shown
    assert len(drawn) == len(u.result.cells) and all(d.text for d in drawn)
    # select the counted cell and correct it
    cid = counter.counted_cells()[0].cell_id
    qtbot.waitUntil(lambda: cid in window.current.cell_ids, timeout=5000)  # type: ignore[union-attr]
    u = window.current
    i = u.cell_ids.index(cid)  # type: ignore[union-attr]
    x, y = u.result.cells[i].box.center  # type: ignore[union-attr]
    window.review.click(x, y, False)
    assert window.results.correct_button.isEnabled()
    predicted = counter.counted_cell(cid).predicted  # type: ignore[union-attr]
    new_label = next(c for c in ("red_cell", "green_cell", "blue_cell") if c != predicted)
    window.review.correct(new_label)
    fixed = [(c.cell_id, c.predicted, c.corrected) for c in counter.counted_cells() if c.corrected]
    assert fixed == [(cid, predicted, new_label)]
    # the overlay now shows the corrected label on that cell, as the differential counts it
    qtbot.waitUntil(
        lambda: (
            cid in window.current.cell_ids  # type: ignore[union-attr]
            and window.current.labels[window.current.cell_ids.index(cid)] == new_label
        ),  # type: ignore[union-attr]
        timeout=5000,
    )
    # snapshot: three files, the review in the sidecar, a thumbnail in the gallery
    asked = window.snapshot()
    assert asked is not None
    paths = asked.result(20)  # written on the session's snapshot thread
    assert paths is not None and paths.sidecar.is_file()
    sidecar = paths.sidecar
    doc = json.loads(sidecar.read_text())
    assert (tmp_path / "snaps" / doc["files"]["raw"]).is_file()
    assert (tmp_path / "snaps" / doc["files"]["annotated"]).is_file()
    assert any(c["corrected"] == new_label for c in doc["review"])
    # the thumbnail comes from memory with the "saved" event, not from the PNG
    qtbot.waitUntil(lambda: window.gallery.list.count() == 1, timeout=5000)
    out = window.finish_slide().result(20)
    assert out is not None and out["report"].is_file()
    assert new_label in out["csv"].read_text()
    close(window)
    saved = load_settings(tmp_path / "cfg")
    assert saved.model_dir == str(tiny_package)


def test_a_cell_in_view_for_many_frames_counts_once(
    qtbot, tmp_path: Path, bccd_dir: Path, tiny_package: Path
) -> None:  # type: ignore[no-untyped-def]
    field = bccd_dir / "images" / "BloodImage_00030.jpg"  # one white cell
    window = make_window(qtbot, tmp_path, str(field), tiny_package)
    qtbot.waitUntil(
        lambda: window.current is not None and window.current.frame.seq > 25, timeout=30000
    )
    assert window.current is not None and len(window.current.result.cells) == 1
    assert window.session.count_status().total == 1
    close(window)


def test_a_looping_folder_counts_its_cells_once_and_only_once_classified(
    qtbot, tmp_path: Path, bccd_dir: Path, tiny_package: Path
) -> None:  # type: ignore[no-untyped-def]
    """Before: cells located while the model loaded stayed as 'unclassified' in the
    differential, and a looping folder counted its cells again on every pass."""
    folder = tmp_path / "fields"
    folder.mkdir()
    names = ("BloodImage_00030.jpg", "BloodImage_00001.jpg", "BloodImage_00003.jpg")
    for name in names:
        shutil.copy(bccd_dir / "images" / name, folder / name)
    engine = Engine(load_package(tiny_package))
    one_pass = sum(len(engine.process(read_image_rgb(folder / n)).cells) for n in names)
    # slow enough that inference takes every frame (newest wins would skip some)
    window = make_window(qtbot, tmp_path, str(folder), None, rate=8.0)
    counter = window.session
    qtbot.waitUntil(
        lambda: window.current is not None and window.current.frame.seq > 4, timeout=20000
    )
    assert window.current.result.cells and counter.count_status().total == 0  # type: ignore[union-attr]
    window.load_model(str(tiny_package))
    qtbot.waitUntil(lambda: window.session.engine.classifier is not None, timeout=30000)
    start = window.current.frame.seq  # type: ignore[union-attr]
    qtbot.waitUntil(
        lambda: window.current.frame.seq > start + 3 * len(names),  # type: ignore[union-attr]
        timeout=30000,
    )
    st = counter.count_status()
    assert st.total == one_pass and "unclassified" not in st.counts
    close(window)


def test_the_differential_lists_every_class_and_the_overlay_agrees_with_it(
    qtbot, tmp_path: Path, tiny_package: Path
) -> None:  # type: ignore[no-untyped-def]
    """Before: the overlay said one class while the differential had no row for it."""
    window = make_window(qtbot, tmp_path, "demo", tiny_package)
    counter = window.session
    qtbot.waitUntil(lambda: bool(counter.counted_cells()), timeout=20000)
    table = window.results.table
    rows = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert rows[:3] == ["red_cell", "green_cell", "blue_cell"]  # zero rows included
    qtbot.waitUntil(lambda: any(window.current.counted), timeout=10000)  # type: ignore[union-attr]
    u = window.current
    for i, cid in enumerate(u.cell_ids):  # type: ignore[union-attr]
        if u.counted[i]:  # type: ignore[union-attr]
            slide_label = counter.counted_cell(cid).label  # type: ignore[union-attr]
            assert u.labels[i] == slide_label  # type: ignore[union-attr]
            assert window.view.overlay.shown[i].text.split()[0] == slide_label
            assert slide_label in rows
    close(window)


def test_the_empty_cell_panel_suggests_no_class(qtbot, tmp_path: Path, tiny_package: Path) -> None:  # type: ignore[no-untyped-def]
    """Before: with no cell selected the correction box showed a greyed 'basophil'."""
    window = make_window(qtbot, tmp_path, "demo", tiny_package)
    combo = window.results.correct_combo
    assert combo.count() > 0 and not combo.isEnabled()
    assert combo.currentIndex() == -1 and combo.currentText() == ""
    assert "select a counted cell" in combo.placeholderText()
    close(window)


def test_the_status_bar_gives_a_folders_resolution_and_the_legend_is_off_the_plot(
    qtbot, tmp_path: Path, bccd_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    """Before: '?x?' for a folder; the plot's legend covered its lines."""
    window = make_window(qtbot, tmp_path, str(bccd_dir / "images"), None)
    qtbot.waitUntil(lambda: window.session.latest_frame() is not None, timeout=20000)
    window._update_status()
    text = window.status_label.text()
    assert "640x480" in text and "?x?" not in text and "no model" in text
    assert window.results.plot.getPlotItem().legend is None
    assert "latency ms" in window.results.legend.text()
    close(window)


def test_source_error_is_shown_every_time_and_the_app_keeps_running(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Before: a second occurrence of the same error was never shown."""
    window = make_window(qtbot, tmp_path, "demo", None)
    qtbot.waitUntil(lambda: window.session.latest_frame() is not None, timeout=10000)
    missing = str(tmp_path / "missing.avi")
    window.choose_source(missing)
    qtbot.waitUntil(lambda: window.banner.shown == 1, timeout=5000)
    assert window.banner.isVisibleTo(window) and "does not exist" in window.banner.text()
    window.choose_source(missing)
    qtbot.waitUntil(lambda: window.banner.shown == 2, timeout=5000)
    assert "×2" in window.banner.text()
    seq = window.session.latest_frame()[0]  # type: ignore[index]
    qtbot.waitUntil(lambda: window.session.latest_frame()[0] > seq + 5, timeout=10000)  # type: ignore[index]
    close(window)


def test_a_model_that_fails_to_load_is_said_and_the_previous_one_stays(
    qtbot, tmp_path: Path, tiny_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Before: any exception other than the app's own left 'loading model…' forever."""
    import micro_app.core.models as models

    window = make_window(qtbot, tmp_path, "demo", tiny_package)

    def broken(folder: object, **_: object) -> None:
        raise ZeroDivisionError("a bug while loading")

    monkeypatch.setattr(models, "load_package", broken)
    window.load_model(str(tiny_package))
    qtbot.waitUntil(lambda: window.session.status().model_state is ModelState.FAILED, timeout=20000)
    assert window.session.engine.classifier.card.name == "tiny-colour"  # type: ignore[union-attr]
    window._update_status()
    assert "model failed: a bug while loading" in window.status_label.text()
    assert window.banner.shown >= 1 and "ZeroDivisionError" in window.banner.text()
    close(window)


def test_threshold_slider_changes_the_live_mask(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window(qtbot, tmp_path, "demo", None)
    qtbot.waitUntil(
        lambda: window.current is not None and bool(window.current.result.cells), timeout=10000
    )
    window.controls.hsv["Smin"].set_value(254)
    window.controls._preprocess_edited()
    seq = window.current.frame.seq  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: window.current.frame.seq > seq + 2, timeout=10000)  # type: ignore[union-attr]
    assert window.current is not None and not window.current.result.cells
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


def test_the_unlike_note_reads_as_sentences(qtbot) -> None:  # type: ignore[no-untyped-def]
    from micro_app.core.slide import CountStatus
    from micro_app.gui.banner import UnlikeNote

    note = UnlikeNote()
    qtbot.addWidget(note)
    note.show()
    counted = CountStatus({"neutrophil": 3}, 3, 100, {}, provisional={"neutrophil": 2})
    note.show_count(True, counted)
    assert "2 of 3 cells are provisional" in note.text()
    assert note.text().endswith("review them. On the view they carry a '?'.")
    note.show_note("Check the stain.")
    assert note.text().startswith("Check the stain. On the view")
