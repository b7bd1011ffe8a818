"""The window's handlers for what the user changes about the microscope and the engine:
the source, the camera's resolution, the nucleus thresholds, the confidence threshold, the
objective's scale and its calibration. Each updates the typed settings (saved on close)
and tells the session; none does any image work itself."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QFileDialog, QInputDialog

from micro_app.core.session import SessionState, SessionStatus
from micro_app.core.sources import open_source
from micro_app.gui.calibration_dialog import CalibrationDialog

if TYPE_CHECKING:
    from micro_app.core.session import LiveSession
    from micro_app.core.settings import AppSettings
    from micro_app.gui.controls import ControlsPanel
    from micro_app.gui.review import CellReview

LIVE_RATE = 30.0  # frames per second for recordings and the demo
VIDEO_FILTER = "Images and videos (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.avi *.mp4 *.mov *.mkv)"


class SettingsActions:
    settings: AppSettings
    session: LiveSession
    controls: ControlsPanel
    review: CellReview
    _props_shown: bool
    # the source chosen last (spec, its name, the saved one before it), until it fails
    _pending_source: tuple[str, str, str] | None = None

    def say(self, message: str, ms: int = 4000) -> None:
        raise NotImplementedError

    def _redraw(self) -> None:
        raise NotImplementedError

    def switch_for_microscope(self) -> None:
        raise NotImplementedError

    # -- settings that change the engine ---------------------------------------------------------
    def _preprocess_changed(self, params: Any) -> None:
        self.settings = replace(self.settings, preprocess=params)
        self.session.set_preprocess(params)

    def _threshold_changed(self, value: float) -> None:
        self.settings = replace(
            self.settings, engine=replace(self.settings.engine, threshold=value)
        )
        self.session.set_threshold(value)

    def _choose_objective(self, name: str) -> None:
        self.settings = replace(self.settings, objective=name or None)
        self.session.set_scale(self.settings.um_per_px())
        self.switch_for_microscope()

    def calibrate(self) -> None:
        if self.review.update is None:
            self.say("Point the camera at a stage micrometer first")
            return
        dlg = CalibrationDialog(
            self.review.update.frame.image,
            self.settings.objective or "",
            self,  # type: ignore[arg-type]
        )
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

    def choose_source(self, spec: str) -> None:
        if spec == "open":
            path, _ = QFileDialog.getOpenFileName(
                self,  # type: ignore[arg-type]
                "Open an image or a video",
                "",
                VIDEO_FILTER,
            )
            if not path:
                return
            spec = path
        elif spec == "url":
            url, ok = QInputDialog.getText(
                self,  # type: ignore[arg-type]
                "Network camera",
                "The camera's stream address (MJPEG or RTSP), e.g. "
                "http://192.168.1.20/video.mjpg or rtsp://user:password@192.168.1.20/stream",
            )
            if not ok or not url.strip():
                return
            spec = url.strip()
        try:
            source = open_source(
                spec, rate=None if spec.startswith("camera") else LIVE_RATE, loop=True
            )
        except Exception as exc:  # a source that cannot be built: one line, keep the old one
            self.session.report_error("source", exc)
            return
        self._pending_source = (spec, source.name, self.settings.source)
        self._props_shown = False
        self.session.set_source(source)
        self.switch_for_microscope()
        combo = self.controls.source_combo
        entries = [
            (combo.itemText(i), combo.itemData(i))
            for i in range(combo.count())
            if combo.itemData(i) not in ("open", "url")
        ]
        self.controls.set_sources(entries, spec)

    def _source_verdict(self, status: SessionStatus) -> None:
        """A source the user chose is saved for the next start once it runs, and forgotten
        again if it fails (a file that opens but cannot be read): a source that failed is
        not reopened on every start."""
        pending = self._pending_source
        if pending is None or status.source != pending[1]:
            return
        if status.state is SessionState.RUNNING:
            self.settings = replace(self.settings, source=pending[0])
        elif status.state is SessionState.FAILED:
            self.settings = replace(self.settings, source=pending[2])
            self._pending_source = None

    def _choose_resolution(self, w: int, h: int) -> None:
        self.session.request_property("width", float(w))
        self.session.request_property("height", float(h))
