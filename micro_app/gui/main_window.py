"""The main window: live view in the middle, controls left, results right, snapshots below.

It draws a ``LiveSession`` (through its Qt adapter) and forwards what the user asks for to
the session: another source, another model, a threshold, a correction, a snapshot, the
slide report. Counting, model loading and error relaying live in the session.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from micro_app import LAUNCHED
from micro_app.adapt.labelled import LabelledStore
from micro_app.adapt.library import library_dir
from micro_app.adapt.setup import microscope_key
from micro_app.core.appearance import UnlikeMonitor
from micro_app.core.atomic import atomic_write_json
from micro_app.core.errors import MicroAppError
from micro_app.core.session import (
    ErrorEvent,
    LiveUpdate,
    ModelState,
    SessionStatus,
)
from micro_app.core.settings import AppSettings, save_settings
from micro_app.gui.about import about_html
from micro_app.gui.adapt_actions import AdaptActions
from micro_app.gui.banner import ErrorBanner, UnlikeNote
from micro_app.gui.controls import ControlsPanel
from micro_app.gui.drawing import drawn_cells, frame_image
from micro_app.gui.gallery import Gallery
from micro_app.gui.live_view import LiveView
from micro_app.gui.qt_session import QtSession
from micro_app.gui.results_panel import ResultsPanel
from micro_app.gui.review import CellReview
from micro_app.gui.settings_actions import SettingsActions
from micro_app.gui.slide_actions import SlideActions
from micro_app.status_text import model_text, status_line

log = logging.getLogger("micro_app")


class MainWindow(QMainWindow, SettingsActions, SlideActions):
    def __init__(
        self,
        settings: AppSettings,
        qt: QtSession,
        *,
        sources: list[tuple[str, str]],
        snapshot_dir: Path,
        settings_dir: Path | None = None,
        model_path: str = "",
        labelled: LabelledStore | None = None,
        library_root: Path | None = None,
    ) -> None:
        """``qt``: the session's Qt adapter (``qt.session`` is the ``LiveSession``);
        ``labelled``: where the cells people label in review are kept for teaching;
        ``library_root``: where adapted model versions are written (both default to the
        user's data folder)."""
        super().__init__()
        self.settings = settings
        self.qt = qt
        self.session = qt.session
        self.settings_dir = settings_dir
        self.snapshot_dir = snapshot_dir
        self.model_path = model_path
        self.show_overlay = True
        self.show_mask = False
        self._props_shown = False
        self.first_cell_s: float | None = None  # launch to the first classified cell shown
        self._unlike = UnlikeMonitor()
        self.setWindowTitle("micro_app")
        self.resize(1600, 1000)
        self.adapt = AdaptActions(
            self,
            self.session,
            # not ``labelled or ...``: an empty store is falsy (it has a length)
            labelled if labelled is not None else LabelledStore(LabelledStore.default_root()),
            library_root if library_root is not None else library_dir(),
        )
        self._build(sources)
        self.review = CellReview(
            self,
            self.session,
            self.results,
            remember=self.adapt.remember_review,
            say=self.say,
            redraw=self._redraw,
        )
        self._connect()
        self._menus()
        self._model_view()
        self.results.show_count(self.session.count_status())
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(1000)
        self._status_timer.timeout.connect(self._update_status)
        self._status_timer.start()

    # -- layout -----------------------------------------------------------------------------
    def _build(self, sources: list[tuple[str, str]]) -> None:
        self.view = LiveView()
        self.banner = ErrorBanner()
        # amber, not red: the input differs from the training images (stain, camera, scale)
        self.input_note = UnlikeNote()
        self.gallery = Gallery()
        self.gallery.folder = self.snapshot_dir
        central = QWidget()
        col = QVBoxLayout(central)
        for w, stretch in ((self.banner, 0), (self.input_note, 0), (self.view, 1)):
            col.addWidget(w, stretch)
        col.addWidget(self.gallery)
        self.setCentralWidget(central)
        self.controls = ControlsPanel(self.settings.preprocess, self.session.model_info().threshold)
        self.controls.set_sources(sources, self.settings.source)
        self.controls.set_objectives(self.settings.objectives, self.settings.objective)
        self.controls.set_backend(self.settings.backend)
        self.results = ResultsPanel(self.settings.differential_target)
        for title, widget, area in (
            ("Controls", self.controls, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Results", self.results, Qt.DockWidgetArea.RightDockWidgetArea),
        ):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(widget)
            dock = QDockWidget(title, self)
            dock.setObjectName(title)
            dock.setWidget(scroll)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
            dock.setMinimumWidth(300)
            self.addDockWidget(area, dock)
        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)

    def _connect(self) -> None:
        q = self.qt
        q.frame_ready.connect(self._on_frame)
        q.update_ready.connect(self._on_update)
        q.status_changed.connect(self._on_status)
        q.error.connect(self._on_error)
        q.snapshot_saved.connect(self._on_saved)
        q.slide_finished.connect(self._on_finished)
        self.input_note.setup_button.clicked.connect(self.adapt.setup)
        self.view.hovered.connect(self.review.hover)
        self.view.clicked.connect(self.review.click)
        k = self.controls
        k.source_chosen.connect(self.choose_source)
        k.resolution_chosen.connect(self._choose_resolution)
        k.property_changed.connect(self.session.request_property)
        k.preprocess_changed.connect(self._preprocess_changed)
        k.threshold_changed.connect(self._threshold_changed)
        k.model_requested.connect(self.choose_model)
        k.backend_chosen.connect(self._choose_backend)
        k.overlay_toggled.connect(self._set_overlay)
        k.mask_toggled.connect(self._set_mask)
        k.objective_chosen.connect(self._choose_objective)
        k.calibrate_requested.connect(self.calibrate)
        r = self.results
        r.correction_chosen.connect(self.review.correct)
        r.target_changed.connect(self._target_changed)
        r.finish_requested.connect(self.finish_slide)
        r.new_slide_requested.connect(self.new_slide)
        self.gallery.snapshot_requested.connect(self.snapshot)

    def _menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        view_menu = menu.addMenu("&View")
        self.adapt.install(menu.addMenu("&Model"))
        help_menu = menu.addMenu("&Help")
        entries: list[tuple[QMenu, str, str | QKeySequence.StandardKey, Any]] = [
            (file_menu, "Open recording…", "Ctrl+O", lambda: self.choose_source("open")),
            (file_menu, "Choose model…", "Ctrl+M", self.choose_model),
            (file_menu, "Snapshot", "Space", self.snapshot),
            (file_menu, "Finish slide", "F", self.finish_slide),
            (file_menu, "Quit", QKeySequence.StandardKey.Quit, self.close),
            (view_menu, "Overlay", "O", lambda: self.controls.overlay.toggle()),
            (view_menu, "Mask", "M", lambda: self.controls.show_mask.toggle()),
            (view_menu, "Auto contrast", "A", self.view.auto_contrast),
            (view_menu, "Reset contrast", "Shift+A", self.view.reset_contrast),
            (view_menu, "Reset zoom", "R", self.view.reset_zoom),
            (help_menu, "About micro_app", "F1", self.about),
        ]
        for menu_, text, key, slot in entries:
            act = QAction(text, self)
            act.setShortcut(QKeySequence(key))
            act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            act.triggered.connect(slot)
            menu_.addAction(act)

    # -- drawing ----------------------------------------------------------------------------
    @property
    def current(self) -> LiveUpdate | None:
        """The newest classified frame the window shows."""
        return self.review.update

    def _on_frame(self, frame: Any) -> None:
        # with the overlay on, classified frames drive the view, so that each overlay sits
        # on its own frame; raw frames fill in until the first one and while it stalls
        u = self.review.update
        if not self.show_overlay or u is None or frame.seq - u.frame.seq > 15:
            self.view.show_image(frame.image)
            self.view.show_cells([])

    def _on_update(self, update: LiveUpdate) -> None:
        if self.first_cell_s is None and update.result.model and update.result.cells:
            self.first_cell_s = time.perf_counter() - LAUNCHED
            log.info("first classified cell shown %.2f s after launch", self.first_cell_s)
        self.review.set_update(update)
        in_view = self._unlike.update(update.result.unlike_share) is not None
        self.input_note.show_count(in_view, update.count)  # the one place it is said
        self._redraw()
        self.results.show_count(update.count)

    def _redraw(self) -> None:
        u = self.review.update
        if u is None:
            return
        self.view.show_image(frame_image(u, self.show_overlay, self.show_mask))
        chosen = self.review.selected_index()
        self.view.show_cells(drawn_cells(u, chosen) if self.show_overlay else [])

    def say(self, message: str, ms: int = 4000) -> None:
        self.statusBar().showMessage(message, ms)

    # -- model ------------------------------------------------------------------------------
    def choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model package folder")
        if folder:
            self.load_model(folder)

    def load_model(self, folder: str) -> None:
        """Ask the session to load it on its jobs thread; the view keeps running."""
        self.session.load_model(folder)

    def _choose_backend(self, name: str) -> None:
        """Run the model elsewhere: reloaded on the jobs thread; the status bar says where."""
        self.settings = replace(self.settings, backend=name)
        self.session.set_backend(name)

    def _on_status(self, status: SessionStatus) -> None:
        # the folder in use comes from the session: of two queued loads, the one that won
        folder = status.model_folder or ""
        if status.model_state is ModelState.READY and folder != self.model_path:
            self.model_path = folder
            self.settings = replace(self.settings, model_dir=folder)
            self.controls.threshold.set_value(self.session.model_info().threshold)
            self._unlike = UnlikeMonitor()
            self.input_note.hide()
            self._model_view()
            self.say(model_text(status))
        self._source_verdict(status)
        self._update_status()

    def microscope_key(self) -> str:
        """This microscope: the camera's name and the objective in use."""
        return microscope_key(self.session.status().source, self.settings.objective)

    def remember_microscope(self, folder: str) -> None:
        """The model just set up is the one for this microscope from now on."""
        scopes = {**self.settings.microscopes, self.microscope_key(): folder}
        self.settings = replace(self.settings, microscopes=scopes)

    def switch_for_microscope(self) -> None:
        """Another camera or objective: its own model, when one was set up for it."""
        folder = self.settings.microscopes.get(self.microscope_key())
        if folder and folder != self.model_path:
            self.say(f"switching to the model set up for {self.microscope_key()}")
            self.load_model(folder)

    def _model_view(self) -> None:
        info = self.session.model_info()
        self.controls.show_model(info.card, self.model_path)
        self.results.set_classes(list(info.classes))

    # -- status, errors, about, close -------------------------------------------------------------
    def _update_status(self) -> None:
        st = self.session.status()
        display = self.qt.display_fps()
        self.status_label.setText(status_line(st, display))
        self.results.add_perf(st.latency_ms, st.inference_fps, display)
        if st.source_info and not self._props_shown:
            self._props_shown = True
            self.controls.show_properties(self.session.properties(), st.source_info)

    def _on_error(self, event: ErrorEvent) -> None:
        self.banner.show_error(event.message, event.count)  # the relay wrote the log

    def show_error(self, message: str) -> None:
        """A message from the window itself (not a worker): the same relay, log and banner."""
        self.session.report_error("window", MicroAppError(message))

    def display_report(self) -> dict[str, Any]:
        """What a user sees of speed: launch to the first classified cell, and the interval
        between frames on screen while inference runs."""
        ms = np.array(self.qt.intervals_ms) if self.qt.intervals_ms else np.zeros(1)
        return {
            "first_frame_s": self.first_cell_s,
            "display_fps": float(1000.0 / np.mean(ms)) if ms.any() else 0.0,
            "frame_interval_ms": {
                "p50": float(np.percentile(ms, 50)),
                "p95": float(np.percentile(ms, 95)),
                "max": float(ms.max()),
                "frames": len(self.qt.intervals_ms) + 1,
                "not_shown": self.qt.not_shown,
            },
            "device": self.session.status().device,
        }

    def about(self) -> None:
        QMessageBox.about(self, "About micro_app", about_html(self.session.model_info()))

    def closeEvent(self, event: Any) -> None:
        if self.adapt.dialog is not None:
            self.adapt.dialog.done(0)  # joins a calibration or teaching thread
        self._status_timer.stop()
        self.qt.stop()  # every thread within one deadline; a model load is not waited for
        report = os.environ.get("MICRO_APP_BENCH_OUT")
        if report:  # ``micro-app bench`` runs the window and reads this
            atomic_write_json(Path(report), self.display_report())
        try:
            save_settings(self.settings, self.settings_dir)
        except OSError as exc:
            log.warning("settings not saved: %s", exc)
        super().closeEvent(event)
