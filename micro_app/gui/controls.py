"""Side panel: source and camera settings, thresholds with live mask, model, display toggles."""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from micro_app.adapt.library import adaptation_line
from micro_app.core.models.card import trained_on
from micro_app.core.preprocess import PreprocessParams
from micro_app.core.sources.base import AUTO_EXPOSURE, EXPOSURE, GAIN, PropertyInfo

RESOLUTIONS = ("640x480", "800x600", "1280x720", "1280x1024", "1920x1080", "2592x1944")


class LabelledSlider(QWidget):
    """A slider with its value shown beside it; values are ints scaled by ``scale``."""

    changed = Signal(float)

    def __init__(self, lo: float, hi: float, value: float, scale: float = 1.0, fmt: str = "{:g}"):
        super().__init__()
        self._scale, self._fmt = scale, fmt
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(lo * scale), round(hi * scale))
        self.label = QLabel()
        self.label.setMinimumWidth(38)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider, 1)
        row.addWidget(self.label)
        self.slider.valueChanged.connect(self._changed)
        self.set_value(value)

    def value(self) -> float:
        return self.slider.value() / self._scale

    def set_value(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * self._scale))
        self.slider.blockSignals(False)
        self.label.setText(self._fmt.format(self.value()))

    def _changed(self, _: int) -> None:
        self.label.setText(self._fmt.format(self.value()))
        self.changed.emit(self.value())


BACKEND_CHOICES = (
    ("Automatic (fastest available)", "auto"),
    ("ONNX Runtime, FP32", "onnx"),
    ("ONNX Runtime, 8-bit (CPU)", "onnx_int8"),
    ("TensorFlow", "tensorflow"),
)


class ControlsPanel(QWidget):
    source_chosen = Signal(str)  # "demo", "camera:N", "url" or "open" (ask the user)
    resolution_chosen = Signal(int, int)
    property_changed = Signal(str, float)
    preprocess_changed = Signal(object)  # PreprocessParams
    threshold_changed = Signal(float)
    model_requested = Signal()
    overlay_toggled = Signal(bool)
    mask_toggled = Signal(bool)
    objective_chosen = Signal(str)
    calibrate_requested = Signal()
    backend_chosen = Signal(str)  # "auto", "onnx", "onnx_int8" or "tensorflow"

    def __init__(self, preprocess: PreprocessParams, threshold: float) -> None:
        super().__init__()
        self.preprocess = preprocess
        layout = QVBoxLayout(self)
        layout.addWidget(self._source_box())
        layout.addWidget(self._threshold_box(preprocess))
        layout.addWidget(self._model_box(threshold))
        layout.addWidget(self._display_box())
        layout.addStretch(1)

    # -- source ---------------------------------------------------------------------------
    def _source_box(self) -> QGroupBox:
        box = QGroupBox("Camera")
        form = QFormLayout(box)
        self.source_combo = QComboBox()
        self.source_combo.setToolTip("A camera, the demo (real cells), or a recording (Ctrl+O)")
        self.source_combo.activated.connect(self._source_activated)
        form.addRow("Source", self.source_combo)
        self.resolution = QComboBox()
        self.resolution.addItems(RESOLUTIONS)
        self.resolution.activated.connect(self._resolution_activated)
        form.addRow("Resolution", self.resolution)
        self.auto_exposure = QCheckBox("Auto exposure")
        self.auto_exposure.toggled.connect(
            lambda on: self.property_changed.emit(AUTO_EXPOSURE, float(on))
        )
        form.addRow(self.auto_exposure)
        self.exposure = LabelledSlider(-13, 100, 0)
        self.exposure.changed.connect(lambda v: self.property_changed.emit(EXPOSURE, v))
        form.addRow("Exposure", self.exposure)
        self.gain = LabelledSlider(0, 100, 0)
        self.gain.changed.connect(lambda v: self.property_changed.emit(GAIN, v))
        form.addRow("Gain", self.gain)
        return box

    def set_sources(self, entries: list[tuple[str, str]], current: str) -> None:
        """``entries``: (label, spec) pairs; "Open recording…" is appended."""
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        for label, spec in entries:
            self.source_combo.addItem(label, spec)
        if current not in [s for _, s in entries]:
            self.source_combo.addItem(current.split("/")[-1] or current, current)
        self.source_combo.addItem("Network camera (address)…", "url")
        self.source_combo.addItem("Open recording…", "open")
        self.source_combo.setCurrentIndex(max(0, self.source_combo.findData(current)))
        self.source_combo.blockSignals(False)

    def _source_activated(self, index: int) -> None:
        self.source_chosen.emit(str(self.source_combo.itemData(index)))

    def _resolution_activated(self, _: int) -> None:
        w, h = (int(v) for v in self.resolution.currentText().split("x"))
        self.resolution_chosen.emit(w, h)

    def show_properties(self, props: dict[str, PropertyInfo], info: dict[str, Any]) -> None:
        """Enable each control only where the source supports it; say why in the tooltip."""
        for name, widget in (
            (EXPOSURE, self.exposure),
            (GAIN, self.gain),
            (AUTO_EXPOSURE, self.auto_exposure),
        ):
            p = props.get(name)
            ok = p is not None and p.supported
            widget.setEnabled(ok)
            widget.setToolTip("" if ok else (p.reason if p else "this source has no such setting"))
            if p is not None and p.value is not None:
                if isinstance(widget, LabelledSlider):
                    if p.minimum is not None and p.maximum is not None:
                        widget.slider.setRange(round(p.minimum), round(p.maximum))
                    widget.set_value(p.value)
                else:
                    widget.blockSignals(True)
                    widget.setChecked(bool(p.value))
                    widget.blockSignals(False)
        res = f"{info.get('width')}x{info.get('height')}"
        if self.resolution.findText(res) < 0 and info.get("width"):
            self.resolution.addItem(res)
        self.resolution.setCurrentText(res)
        self.resolution.setEnabled(info.get("kind") == "camera")

    # -- thresholds (the thesis tuned them with sliders) ---------------------------------------
    def _threshold_box(self, p: PreprocessParams) -> QGroupBox:
        box = QGroupBox("Nucleus threshold (HSV)")
        form = QFormLayout(box)
        self.hsv: dict[str, LabelledSlider] = {}
        for i, ch in enumerate("HSV"):
            top = 179 if ch == "H" else 255
            for which, val in (("min", p.lower_hsv[i]), ("max", p.upper_hsv[i])):
                s = LabelledSlider(0, top, val)
                s.changed.connect(self._preprocess_edited)
                self.hsv[f"{ch}{which}"] = s
                form.addRow(f"{ch} {which}", s)
        self.sharpen = QCheckBox("3x3 sharpening")
        self.sharpen.setChecked(p.sharpen)
        self.sharpen.toggled.connect(self._preprocess_edited)
        self.median = QCheckBox("3x3 median filter")
        self.median.setChecked(p.median_ksize > 1)
        self.median.toggled.connect(self._preprocess_edited)
        form.addRow(self.median)
        form.addRow(self.sharpen)
        self.show_mask = QCheckBox("Show mask (M)")
        self.show_mask.toggled.connect(self.mask_toggled)
        form.addRow(self.show_mask)
        return box

    def _preprocess_edited(self, *_: object) -> None:
        h0, s0, v0 = (int(self.hsv[f"{c}min"].value()) for c in "HSV")
        h1, s1, v1 = (int(self.hsv[f"{c}max"].value()) for c in "HSV")
        lower, upper = (h0, s0, v0), (h1, s1, v1)
        if any(lo > hi for lo, hi in zip(lower, upper, strict=True)):
            return  # wait until the user finishes dragging past the other bound
        self.preprocess = replace(
            self.preprocess,
            lower_hsv=lower,
            upper_hsv=upper,
            sharpen=self.sharpen.isChecked(),
            median_ksize=3 if self.median.isChecked() else 1,
        )
        self.preprocess_changed.emit(self.preprocess)

    # -- model ------------------------------------------------------------------------------
    def _model_box(self, threshold: float) -> QGroupBox:
        box = QGroupBox("Model")
        col = QVBoxLayout(box)
        row = QHBoxLayout()
        self.model_label = QLabel("none")
        self.model_label.setWordWrap(True)
        choose = QPushButton("Choose…")
        choose.clicked.connect(self.model_requested)
        row.addWidget(self.model_label, 1)
        row.addWidget(choose)
        col.addLayout(row)
        self.card_view = QTextBrowser()
        self.card_view.setMaximumHeight(130)
        col.addWidget(self.card_view)
        form = QFormLayout()
        self.backend = QComboBox()
        for label, name in BACKEND_CHOICES:
            self.backend.addItem(label, name)
        self.backend.setToolTip(
            "Where the model runs. Automatic: ONNX Runtime on the best device this PC has "
            "(NVIDIA, DirectML or CoreML GPU with FP32 weights, else the CPU with the "
            "8-bit weights, about twice as fast) when the model has ONNX weights"
        )
        self.backend.activated.connect(
            lambda _: self.backend_chosen.emit(str(self.backend.currentData()))
        )
        form.addRow("Run on", self.backend)
        self.threshold = LabelledSlider(0, 1, threshold, scale=100, fmt="{:.2f}")
        self.threshold.setToolTip("Below this confidence a cell is reported as 'unidentified'")
        self.threshold.changed.connect(self.threshold_changed)
        form.addRow("Confidence", self.threshold)
        col.addLayout(form)
        return box

    def set_backend(self, name: str) -> None:
        self.backend.setCurrentIndex(max(0, self.backend.findData(name)))

    def show_model(self, card: dict[str, Any] | None, path: str = "") -> None:
        if card is None:
            self.model_label.setText("none: cells are located, not classified")
            self.card_view.setPlainText("")
            return
        self.model_label.setText(f"{card['name']} {card['version']}")
        self.model_label.setToolTip(path)
        lines = [
            f"<b>{card['name']}</b> {card['version']} ({card.get('scope', 'cell')})",
            "classes: " + ", ".join(card.get("classes", [])),
            f"input: {card.get('input_size')} {card.get('colour_order', '')}",
        ]
        data = card.get("training_data") or {}
        if data:
            lines.append(f"trained on: {html.escape(trained_on(data))}")
        adapted = adaptation_line((card.get("extra") or {}).get("adaptation") or {})
        if adapted:
            lines.append(f"<b>adapted to this microscope</b>: {adapted}")
        for k, v in (card.get("metrics") or {}).items():
            if isinstance(v, (int, float)):
                lines.append(f"{k}: {v:.3f}")
        self.card_view.setHtml("<br>".join(lines))

    # -- display ----------------------------------------------------------------------------
    def _display_box(self) -> QGroupBox:
        box = QGroupBox("Display")
        form = QFormLayout(box)
        self.overlay = QCheckBox("Overlay (O)")
        self.overlay.setChecked(True)
        self.overlay.toggled.connect(self.overlay_toggled)
        form.addRow(self.overlay)
        row = QHBoxLayout()
        self.objective = QComboBox()
        self.objective.setToolTip("Calibrated objective: sets µm per pixel and the scale bar")
        self.objective.activated.connect(
            lambda _: self.objective_chosen.emit(self.objective.currentData() or "")
        )
        calibrate = QPushButton("Calibrate…")
        calibrate.clicked.connect(self.calibrate_requested)
        row.addWidget(self.objective, 1)
        row.addWidget(calibrate)
        form.addRow("Objective", row)
        return box

    def set_objectives(self, objectives: dict[str, float], current: str | None) -> None:
        self.objective.clear()
        self.objective.addItem("not calibrated (estimate)", "")
        for name, scale in sorted(objectives.items()):
            self.objective.addItem(f"{name} ({scale:.4f} µm/px)", name)
        self.objective.setCurrentIndex(max(0, self.objective.findData(current or "")))
