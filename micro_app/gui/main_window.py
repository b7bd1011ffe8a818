"""The main window: live view in the middle, controls left, results right, snapshots below."""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from micro_app import __version__
from micro_app.adapt.labelled import LabelledStore
from micro_app.adapt.library import library_dir
from micro_app.core.appearance import UnlikeMonitor
from micro_app.core.engine import Engine
from micro_app.core.errors import MicroAppError
from micro_app.core.export import write_snapshot
from micro_app.core.frame import Frame
from micro_app.core.overlay import OverlayOptions, draw_overlay
from micro_app.core.report import finish_slide
from micro_app.core.results import FrameResult
from micro_app.core.settings import AppSettings, save_settings
from micro_app.core.slide import SlideSession
from micro_app.gui.adapt_actions import AdaptActions
from micro_app.gui.calibration_dialog import CalibrationDialog
from micro_app.gui.controller import LiveController
from micro_app.gui.controls import ControlsPanel
from micro_app.gui.gallery import Gallery
from micro_app.gui.live_view import LiveView
from micro_app.gui.results_panel import ResultsPanel

log = logging.getLogger("micro_app")
ABOUT = """<h3>micro_app {version}</h3>
<p>Live white-blood-cell detection and classification for a camera on a microscope.</p>
<p><b>Data behind the default model:</b> Acevedo A, Merino A, Alférez S, Molina Á, Boldú L,
Rodellar J. <i>A dataset of microscopic peripheral blood cell images for development of
automatic recognition systems.</i> Data in Brief 30 (2020) 105474; Mendeley Data snkd93bnjr,
licensed CC BY 4.0.</p>
<p>Current model: {model}</p>
<p>Decision support only: a qualified person reviews every differential.</p>"""


class _ModelLoaded(QObject):
    done = Signal(object, object, str)  # engine | None, error | None, folder


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: AppSettings,
        controller: LiveController,
        *,
        sources: list[tuple[str, str]],
        snapshot_dir: Path,
        settings_dir: Path | None = None,
        model_path: str = "",
        labelled: LabelledStore | None = None,
        library_root: Path | None = None,
    ) -> None:
        """``labelled``: where the cells people label in review are kept for teaching;
        ``library_root``: where adapted model versions are written (both default to the
        user's data folder)."""
        super().__init__()
        self.settings = settings
        self.controller = controller
        self.settings_dir = settings_dir
        self.snapshot_dir = snapshot_dir
        self.model_path = model_path
        self.session = self._new_session()
        self.current: tuple[Frame, FrameResult] | None = None
        self.track_ids: list[int] = []
        self.selected: int | None = None
        self.show_overlay = True
        self.show_mask = False
        self._last_result_at = 0.0
        self._errors_shown: set[str] = set()
        self._props_shown = False
        self._selected_track: int | None = None
        self._loader: threading.Thread | None = None
        self._loaded = _ModelLoaded()
        self._loaded.done.connect(self._model_loaded)
        self.setWindowTitle("micro_app")
        self.resize(1600, 1000)
        self.adapt = AdaptActions(
            self,
            # not ``labelled or ...``: an empty store is falsy (it has a length)
            labelled if labelled is not None else LabelledStore(LabelledStore.default_root()),
            library_root if library_root is not None else library_dir(),
        )
        self._build(sources)
        self._connect()
        self._shortcuts()
        self._refresh_model_view()
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(1000)
        self._status_timer.timeout.connect(self._update_status)
        self._status_timer.start()

    # -- layout -----------------------------------------------------------------------------
    def _build(self, sources: list[tuple[str, str]]) -> None:
        self.view = LiveView()
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#fce8e6;color:#a50e0e;padding:6px;border-radius:4px")
        self.banner_box = QWidget()
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.banner_box.hide)
        row = QHBoxLayout(self.banner_box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.banner, 1)
        row.addWidget(dismiss)
        self.banner_box.hide()
        # amber, not red: the input differs from the training images (stain, camera, scale)
        self.input_note = QLabel()
        self.input_note.setWordWrap(True)
        self.input_note.setStyleSheet(
            "background:#fef7e0;color:#8a4b00;padding:6px;border-radius:4px"
        )
        self.input_note.hide()
        self._unlike = UnlikeMonitor()
        self.gallery = Gallery()
        self.gallery.folder = self.snapshot_dir
        central = QWidget()
        col = QVBoxLayout(central)
        col.addWidget(self.banner_box)
        col.addWidget(self.input_note)
        col.addWidget(self.view, 1)
        col.addWidget(self.gallery)
        self.setCentralWidget(central)
        threshold = self.controller.engine.threshold
        self.controls = ControlsPanel(self.settings.preprocess, threshold)
        self.controls.set_sources(sources, self.settings.source)
        self.controls.set_objectives(self.settings.objectives, self.settings.objective)
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
        c = self.controller
        c.frame_ready.connect(self._on_frame)
        c.result_ready.connect(self._on_result)
        c.error.connect(self.show_error)
        c.source_ended.connect(lambda msg: self.statusBar().showMessage(msg, 5000))
        v = self.view
        v.hovered.connect(self._on_hover)
        v.clicked.connect(self._on_click)
        k = self.controls
        k.source_chosen.connect(self._choose_source)
        k.resolution_chosen.connect(self._choose_resolution)
        k.property_changed.connect(c.request_property)
        k.preprocess_changed.connect(self._preprocess_changed)
        k.threshold_changed.connect(self._threshold_changed)
        k.model_requested.connect(self.choose_model)
        k.overlay_toggled.connect(self._set_overlay)
        k.mask_toggled.connect(self._set_mask)
        k.objective_chosen.connect(self._choose_objective)
        k.calibrate_requested.connect(self.calibrate)
        r = self.results
        r.correction_chosen.connect(self.correct_selected)
        r.target_changed.connect(self._target_changed)
        r.finish_requested.connect(self.finish_slide)
        r.new_slide_requested.connect(self.new_slide)
        self.gallery.snapshot_requested.connect(self.snapshot)

    def _shortcuts(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        view_menu = menu.addMenu("&View")
        self.adapt.install(menu.addMenu("&Model"))
        help_menu = menu.addMenu("&Help")
        entries: list[tuple[QMenu, str, str | QKeySequence.StandardKey, Any]] = [
            (file_menu, "Open recording…", "Ctrl+O", lambda: self._choose_source("open")),
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

    # -- frames and results ---------------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:
        # with the overlay on, results drive the view so that each overlay sits on its own
        # frame; raw frames fill in when inference stalls for more than half a second
        if not self.show_overlay or time.monotonic() - self._last_result_at > 0.5:
            self.view.show_image(frame.image)

    def _on_result(self, frame: Frame, result: FrameResult) -> None:
        self._last_result_at = time.monotonic()
        self.track_ids = self.session.add_result(result, frame.image)
        if self.current is None or self.current[0].seq > frame.seq:
            self.selected = None
        elif self.selected is not None:
            self.selected = self._follow_selection(result)
        self.current = (frame, result)
        note = self._unlike.update(result.unlike_share)
        if note != (None if self.input_note.isHidden() else self.input_note.text()):
            self.input_note.setText(note or "")
            self.input_note.setVisible(note is not None)
        if self.show_overlay:
            self.view.show_image(self._annotated())
        self.results.show_count(self.session.status())
        if self.selected is not None:
            self._show_cell(self.selected)

    def _follow_selection(self, result: FrameResult) -> int | None:
        """Keep the selection on the same tracked cell as it moves."""
        if self._selected_track is None:
            return None
        try:
            return self.track_ids.index(self._selected_track)
        except ValueError:
            return None

    def _annotated(self) -> np.ndarray:
        assert self.current is not None
        frame, result = self.current
        opts = OverlayOptions(mask=self.show_mask, selected=self.selected, input_warning=False)
        return draw_overlay(frame.image, result, opts)

    def _redraw(self) -> None:
        if self.current is not None:
            self.view.show_image(self._annotated() if self.show_overlay else self.current[0].image)

    # -- cells: hover, select, correct -------------------------------------------------------------
    def _on_hover(self, x: float, y: float) -> None:
        if self.current is None or self.selected is not None:
            return
        i = self.current[1].cell_at(x, y)
        self._show_cell(i)

    def _on_click(self, x: float, y: float, right: bool) -> None:
        if self.current is None:
            return
        i = self.current[1].cell_at(x, y)
        self.selected = i
        self._selected_track = (
            self.track_ids[i] if i is not None and i < len(self.track_ids) else None
        )
        self._show_cell(i)
        self._redraw()
        if right and i is not None:
            menu = QMenu(self)
            for k in range(self.results.correct_combo.count()):
                label = self.results.correct_combo.itemText(k)
                menu.addAction(label, functools.partial(self.correct_selected, label))
            menu.popup(self.cursor().pos())

    def _show_cell(self, i: int | None) -> None:
        if self.current is None or i is None or i >= len(self.current[1].cells):
            self.results.show_cell(None)
            self.results.set_review_enabled(False)
            return
        cell = self.current[1].cells[i]
        tid = self.track_ids[i] if i < len(self.track_ids) else None
        counted = self.session.cells.get(tid) if tid is not None else None
        title = f"cell #{tid}: {cell.label} ({cell.confidence:.0%})"
        if counted is not None and counted.corrected:
            title += f", corrected to {counted.corrected}"
        elif counted is None:
            title += " (not yet counted)"
        self.results.show_cell(cell, title)
        self.results.set_review_enabled(counted is not None and self.selected == i)

    def correct_selected(self, label: str) -> None:
        tid = self._selected_track
        if tid is None or tid not in self.session.cells:
            self.statusBar().showMessage("Select a counted cell first (click on it)", 4000)
            return
        self.session.correct(tid, label)
        self.adapt.remember_review(tid, label)
        self.results.show_count(self.session.status())
        self.statusBar().showMessage(f"cell #{tid} recorded as {label}", 4000)
        if self.selected is not None:
            self._show_cell(self.selected)

    # -- snapshots and the slide ------------------------------------------------------------------
    def snapshot(self) -> Path | None:
        if self.current is None:
            self.statusBar().showMessage("No frame yet", 3000)
            return None
        frame, result = self.current
        annotated = draw_overlay(frame.image, result, OverlayOptions(selected=None))
        cells = []
        for i, tid in enumerate(self.track_ids):
            rec = self.session.cells.get(tid)
            cells.append(
                {
                    "id": i,
                    "track_id": tid,
                    "counted": rec is not None,
                    "corrected": rec.corrected if rec else None,
                }
            )
        extra = {"slide": self.session.name, "review": cells}
        pipe = self.controller.pipeline
        source = pipe.capture.info_snapshot() if pipe else {}
        try:
            paths = write_snapshot(
                self.snapshot_dir,
                frame.image,
                result,
                annotated,
                source=source,
                settings=self.settings.to_dict(),
                extra=extra,
            )
        except OSError as exc:
            self.show_error(
                f"snapshot not saved ({exc}): check that {self.snapshot_dir} is writable"
            )
            return None
        self.session.snapshots.append(paths.sidecar)
        self.gallery.add(annotated, paths.annotated)
        self.statusBar().showMessage(f"saved {paths.sidecar.name}", 4000)
        return paths.sidecar

    def finish_slide(self) -> dict[str, Path] | None:
        model = self.controller.engine.classifier
        try:
            out = finish_slide(
                self.session,
                self.snapshot_dir,
                model_card=model.card.summary() if model else None,
                settings=self.settings.to_dict(),
            )
        except OSError as exc:
            self.show_error(
                f"slide report not saved ({exc}): check that {self.snapshot_dir} is writable"
            )
            return None
        self.statusBar().showMessage(f"slide report: {out['report']}", 8000)
        return out

    def _new_session(self) -> SlideSession:
        return SlideSession(
            target=self.settings.differential_target,
            threshold=self.controller.engine.threshold,
            watch=self.settings.watch,
        )

    def new_slide(self) -> None:
        self.session = self._new_session()
        self.refresh_count()

    def refresh_count(self) -> None:
        self.results.show_count(self.session.status())

    def _target_changed(self, target: int) -> None:
        self.settings = replace(self.settings, differential_target=target)
        self.session.target = target
        self.results.show_count(self.session.status())

    # -- settings that change the engine -------------------------------------------------------
    def _preprocess_changed(self, params: Any) -> None:
        self.settings = replace(self.settings, preprocess=params)
        self.controller.set_engine(self.controller.engine.derive(preprocess=params))

    def _threshold_changed(self, value: float) -> None:
        engine_params = replace(self.settings.engine, threshold=value)
        self.settings = replace(self.settings, engine=engine_params)
        eng = self.controller.engine
        self.controller.set_engine(eng.derive(params=replace(eng.params, threshold=value)))
        self.session.threshold = value

    def _choose_objective(self, name: str) -> None:
        self.settings = replace(self.settings, objective=name or None)
        eng = self.controller.engine
        self.controller.set_engine(
            eng.derive(params=replace(eng.params, um_per_px=self.settings.um_per_px()))
        )

    def calibrate(self) -> None:
        if self.current is None:
            self.statusBar().showMessage("Point the camera at a stage micrometer first", 4000)
            return
        dlg = CalibrationDialog(self.current[0].image, self.settings.objective or "", self)
        if dlg.exec():
            name = dlg.name.text().strip()
            objectives = {**self.settings.objectives, name: dlg.um_per_px()}
            self.settings = replace(self.settings, objectives=objectives)
            self.controls.set_objectives(objectives, name)
            self._choose_objective(name)

    def _set_overlay(self, on: bool) -> None:
        self.show_overlay = on
        self._redraw()

    def _set_mask(self, on: bool) -> None:
        self.show_mask = on
        self._redraw()

    def _choose_source(self, spec: str) -> None:
        if spec == "open":
            path, _ = QFileDialog.getOpenFileName(
                self,
                "Open an image or a video",
                "",
                "Images and videos (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.avi *.mp4 *.mov *.mkv)",
            )
            if not path:
                return
            spec = path
        self.settings = replace(self.settings, source=spec)
        self.current = None
        self._props_shown = False
        self.controller.start(spec)
        self.controls.set_sources(
            [
                (self.controls.source_combo.itemText(i), self.controls.source_combo.itemData(i))
                for i in range(self.controls.source_combo.count() - 1)
            ],
            spec,
        )

    def _choose_resolution(self, w: int, h: int) -> None:
        self.controller.request_property("width", float(w))
        self.controller.request_property("height", float(h))

    # -- model ----------------------------------------------------------------------------------
    def choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model package folder")
        if folder:
            self.load_model(folder)

    def load_model(self, folder: str) -> None:
        """Load on a worker thread (TensorFlow takes seconds); the view keeps running."""
        if self._loader is not None and self._loader.is_alive():
            self.statusBar().showMessage("A model is still loading", 3000)
            return
        self.statusBar().showMessage(f"loading model {folder}…")
        base = self.controller.engine

        def work() -> None:
            from micro_app.core.models import load_package

            try:
                package = load_package(folder)
                engine = Engine(
                    package, base.preprocess, base.locate, base.params, smooth_scale=True
                )
                if engine.classifier:
                    engine.classifier.warm_up()
                self._loaded.done.emit(engine, None, folder)
            except MicroAppError as exc:
                self._loaded.done.emit(None, exc, folder)

        self._loader = threading.Thread(target=work, name="model-loader", daemon=False)
        self._loader.start()

    def _model_loaded(self, engine: Engine | None, error: Exception | None, folder: str) -> None:
        if engine is None:
            self.show_error(str(error))
            return
        self.controller.set_engine(engine)
        self.model_path = folder
        self.settings = replace(self.settings, model_dir=folder)
        self.session.threshold = engine.threshold
        self.controls.threshold.set_value(engine.threshold)  # the card's, unless the user set one
        self._unlike = UnlikeMonitor()
        self.input_note.hide()
        self._refresh_model_view()
        self.statusBar().showMessage(
            f"model {engine.classifier.card.name if engine.classifier else ''} loaded", 4000
        )

    def _refresh_model_view(self) -> None:
        clf = self.controller.engine.classifier
        self.controls.show_model(clf.card.to_dict() if clf else None, self.model_path)
        self.results.set_classes(list(clf.classes) if clf else [])

    # -- status, errors, about, close ----------------------------------------------------------
    def _update_status(self) -> None:
        st = self.controller.status()
        if st.get("source") == "none":
            self.status_label.setText("no source")
            return
        self.status_label.setText(
            f"{st['source']} | {st['resolution']} | display {st['display_fps']:.1f} fps | "
            f"inference {st['inference_fps']:.1f} fps | latency {st['latency_ms']:.0f} ms | "
            f"dropped {st['dropped']} | {st['device']}"
        )
        self.results.add_perf(st["latency_ms"], st["inference_fps"], st["display_fps"])
        pipe = self.controller.pipeline
        if pipe is not None and pipe.capture.opened.is_set() and not self._props_shown:
            self._props_shown = True
            self.controls.show_properties(
                pipe.capture.properties_snapshot(), pipe.capture.info_snapshot()
            )

    def show_error(self, message: str) -> None:
        """Each distinct error once, in the window; the app keeps running."""
        if message in self._errors_shown:
            return
        self._errors_shown.add(message)
        self.banner.setText(message)
        self.banner_box.show()

    def about(self) -> None:
        clf = self.controller.engine.classifier
        model = f"{clf.card.name} {clf.card.version}" if clf else "none"
        QMessageBox.about(self, "About micro_app", ABOUT.format(version=__version__, model=model))

    def closeEvent(self, event: Any) -> None:
        if self.adapt.dialog is not None:
            self.adapt.dialog.done(0)  # joins a calibration or teaching thread
        self._status_timer.stop()
        self.controller.stop()
        if self._loader is not None:
            self._loader.join(timeout=30)
        try:
            save_settings(self.settings, self.settings_dir)
        except OSError as exc:
            log.warning("settings not saved: %s", exc)
        super().closeEvent(event)
