"""The window under injected faults (issue 19): a chosen source that fails is not
remembered, two queued model loads record the one that won, a background job's failure
reaches the banner like every other error, and closing waits for no model load."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import close_window, make_window, slow_model_loads

from micro_app.core.errors import InputError
from micro_app.core.session import ModelState, SessionState

pytestmark = pytest.mark.slow


def test_a_chosen_source_is_remembered_only_once_it_runs(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window(qtbot, tmp_path, "demo", None)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    window.choose_source(str(broken))  # opens on the capture thread, then fails there
    qtbot.waitUntil(lambda: window.session.state is SessionState.FAILED, timeout=10000)
    qtbot.wait(100)
    assert window.settings.source == "demo"  # before: the broken file was saved
    window.choose_source("demo")
    qtbot.waitUntil(lambda: window.session.state is SessionState.RUNNING, timeout=10000)
    qtbot.wait(100)
    assert window.settings.source == "demo"
    close_window(window)


def test_two_queued_loads_record_the_model_that_won(
    qtbot, tmp_path: Path, tiny_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Before: the window remembered the folder of the last load it asked for when it
    heard "ready" for the first, so two loads in a row recorded the wrong folder."""
    slow_model_loads(monkeypatch, 0.4)
    other = tmp_path / "other"
    shutil.copytree(tiny_package, other)
    window = make_window(qtbot, tmp_path, "demo", None)
    window.load_model(str(tiny_package))
    window.load_model(str(other))
    qtbot.waitUntil(lambda: window.session.status().model_state is ModelState.READY, timeout=30000)
    qtbot.waitUntil(lambda: window.model_path == str(other), timeout=5000)
    assert window.settings.model_dir == str(other)
    assert window.session.model_info().folder == str(other)
    close_window(window)


def test_a_background_job_that_fails_reaches_the_banner(
    qtbot, tmp_path: Path, tiny_package: Path
) -> None:  # type: ignore[no-untyped-def]
    """Before: a dialog's job reported on its own signal only; the banner and the
    session's error count never heard of it."""
    window = make_window(qtbot, tmp_path, "demo", tiny_package)
    dialog = window.adapt.calibrate()
    assert dialog is not None

    def job(progress: Any, cancel: Any) -> None:
        raise InputError("no white cells in these fields: choose fields with stained cells")

    dialog.run(job, "calibration")  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: "no white cells" in window.banner.text(), timeout=10000)
    assert window.session.status().errors >= 1
    dialog.done(0)
    close_window(window)


def test_a_folder_of_broken_files_in_the_set_up_is_one_line_each(
    qtbot, tmp_path: Path, tiny_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Before: a file that could not be read raised inside the Qt slot, with no message."""
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "fields"
    folder.mkdir()
    (folder / "field_1.png").write_bytes(b"not a png")
    window = make_window(qtbot, tmp_path, "demo", tiny_package)
    dialog = window.adapt.setup()
    assert dialog is not None
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    dialog._choose_folder()  # type: ignore[attr-defined]
    assert "skipped field_1.png" in dialog.report.toPlainText()  # type: ignore[attr-defined]
    dialog.done(0)
    close_window(window)
