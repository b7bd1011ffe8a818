"""Adapting in the window, offscreen: calibrate on fields, teach from review corrections,
use the new version, and go back to the shipped one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import close_window as close
from conftest import make_window
from PySide6.QtWidgets import QApplication

from micro_app.adapt.labelled import LabelledStore
from micro_app.adapt.library import list_versions
from micro_app.adapt.teach import TeachConfig
from micro_app.core.imageio import list_images, read_image_rgb
from micro_app.core.models import default_model_dir
from micro_app.core.models.card import ModelCard
from micro_app.gui.calibrate_scope_dialog import CalibrateScopeDialog
from micro_app.gui.main_window import MainWindow
from micro_app.gui.teach_dialog import TeachDialog
from micro_app.gui.versions_dialog import VersionsDialog

pytestmark = pytest.mark.slow


def _window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    folder = default_model_dir()
    assert folder is not None
    window = make_window(
        qtbot,
        tmp_path,
        "demo",
        folder,
        labelled=LabelledStore(tmp_path / "labelled"),
        library_root=tmp_path / "library",
    )
    window.adapt.teach_config = TeachConfig(epochs=1)
    assert window.adapt.store.root == tmp_path / "labelled"  # the (empty) store passed in
    return window


def _version(window: MainWindow) -> str:
    clf = window.session.engine.classifier
    return clf.card.version if clf else ""


@pytest.mark.realdata
def test_calibrate_in_the_window_then_use_it(qtbot, tmp_path: Path, bccd_dir: Path) -> None:  # type: ignore[no-untyped-def]
    window = _window(qtbot, tmp_path)
    qtbot.waitUntil(lambda: window.current is not None, timeout=20000)
    dialog = window.adapt.calibrate()
    assert isinstance(dialog, CalibrateScopeDialog)
    assert not dialog.run_button.isEnabled()  # no cells yet
    dialog.add_current_field()
    assert dialog.n_images == 1
    # one button collects several live fields (a new frame each time)
    dialog._collect_timer.setInterval(100)
    dialog.start_collecting()
    assert not dialog.run_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog._collect_timer.isActive(), timeout=20000)
    assert dialog.n_images == 11
    dialog._clear()
    dialog.add_current_field()
    fields = list_images(bccd_dir / "images")
    dialog.add_images([read_image_rgb(p) for p in fields])
    assert len(dialog.crops) >= len(fields) and dialog.run_button.isEnabled()
    assert f"{len(fields) + 1} fields" in dialog.count.text()  # the live field and the folder
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.outcome is not None, timeout=300000)
    assert "Not validated" in dialog.report.toPlainText()
    assert dialog.use_button.isEnabled()
    dialog.use_button.click()
    qtbot.waitUntil(lambda: _version(window).endswith("-adapt1"), timeout=90000)
    card = window.session.engine.classifier.card  # type: ignore[union-attr]
    assert card.extra["adaptation"]["kind"] == "calibration"
    # the window hears "model ready" by a queued signal, then remembers the model
    qtbot.waitUntil(lambda: "adapt1" in (window.settings.model_dir or ""), timeout=10000)
    close(window)


def test_teach_from_review_choose_and_go_back(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = _window(qtbot, tmp_path)

    def classified() -> list[int]:  # counted after the model loaded: they carry a crop
        return [c.cell_id for c in window.session.counted_cells() if c.crop is not None]

    qtbot.waitUntil(lambda: len(classified()) >= 3, timeout=90000)
    shipped = _version(window)
    # a correction in review is kept, with the crop the model saw, for teaching
    store = window.adapt.store
    assert len(store) == 0, [c.key for c in store.cells()]
    tid = classified()[0]
    window.review.selected_id = tid
    window.review.correct("lymphocyte")
    assert len(store) == 1, [c.key for c in store.cells()]
    kept = store.cells()[0]
    assert kept.label == "lymphocyte" and kept.key.endswith(f"#{tid}")
    assert kept.source in ("correction", "confirmed")
    dialog = window.adapt.teach()
    assert isinstance(dialog, TeachDialog)
    # too few cells: one clear line, and the button is ready again
    assert dialog.start()
    qtbot.waitUntil(lambda: "label at least" in dialog.report.toPlainText(), timeout=20000)
    qtbot.waitUntil(lambda: dialog.teach_button.isEnabled(), timeout=5000)
    assert dialog.outcome is None and not dialog.use_button.isEnabled()
    # the teach view: pick a class that has slide cells and none labelled yet (not the
    # correction's), select them all, label them
    for k in range(dialog.class_combo.count()):
        dialog.class_combo.setCurrentIndex(k)
        dialog._show_class()
        kinds = {dialog.grid.item(i).data(256)[0] for i in range(dialog.grid.count())}
        if kinds == {"slide"}:
            break
    dialog.grid.selectAll()
    n = dialog.label_selected("neutrophil")
    assert n >= 1 and len(store) == 1 + n
    # label more until there are enough cells to teach with (stored earlier, say)
    crop = store.image(store.cells()[0])
    for i in range(6):
        store.add(crop, ("neutrophil", "monocyte")[i % 2], source="teach")
    # a class the lab adds: blast is offered, others by name (a known one's look-alike is
    # refused in one line); cells labelled with it teach the model a ninth output
    labels = [dialog.class_combo.itemText(k) for k in range(dialog.class_combo.count())]
    assert any(t.startswith("blast (new class)") for t in labels)
    assert dialog.add_class("Monocytes") is None
    assert "looks like the model's class 'monocyte'" in dialog.class_note.text()
    assert dialog.add_class("Plasma cell") == "plasma cell"
    assert dialog.label_combo.findText("plasma cell") >= 0
    for i in range(5):
        store.add(np.roll(crop, 3 * i, axis=0), "blast", source="teach")
    dialog.refresh()
    assert "held back" in dialog.summary.text()
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.outcome is not None, timeout=300000)
    text = dialog.report.toPlainText()
    assert "held-back" in text and "→" in text
    assert "New class blast" in text
    taught = dialog.outcome.package  # type: ignore[union-attr]
    assert ModelCard.read(taught).classes[-1] == "blast"
    # nothing has replaced the model until the user chooses
    assert _version(window) == shipped
    dialog.use_button.click()
    qtbot.waitUntil(lambda: _version(window).endswith("-adapt1"), timeout=90000)
    assert [v.card.version for v in list_versions(tmp_path / "library")] == [_version(window)]
    # every version stays: go back to the shipped model
    versions = window.adapt.versions()
    assert isinstance(versions, VersionsDialog) and versions.list.count() == 2
    assert "(in use)" in versions.list.currentItem().text()
    versions.list.setCurrentRow(0)
    assert versions.selected() is not None and versions.selected().card.version == shipped  # type: ignore[union-attr]
    versions.use_button.click()
    qtbot.waitUntil(lambda: _version(window) == shipped, timeout=90000)
    QApplication.processEvents()
    close(window)
