"""A demo camera that renders a synthetic Wright/Giemsa-stained blood smear.

At ``open()`` one large smear is rendered once (a torus, so panning never reaches an edge):
a pale pinkish-cream background, red cells as salmon discs with a paler centre that partly
overlap (overlaps look darker, as stains absorb), and white cells with lilac/blue cytoplasm
and a dark purple nucleus whose shape follows the kind: round (lymphocyte), kidney (monocyte),
2-5 lobes (neutrophil), two lobes among orange-red granules (eosinophil). Colours are built in
optical density, so they add like real absorbing stain.

Or, given a ``Stage`` (``load_stage``: a stage image of real cells with their classes,
built by ``scripts/make_demo_stage.py`` from PBC test-split crops, CC BY 4.0, and shipped in
``resources/demo/`` of every copy of the app), it pans over that instead, a little faster
(its cells are larger than the smear's).

Each ``read()`` crops the field at a slowly drifting offset, blurs it a little by an amount that
varies with time (focus), adds sensor noise from a pre-drawn bank, and records the white cells
in view in ``last_truth``. Everything is deterministic for a ``seed``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app.core.errors import SettingsError, UnsupportedProperty
from micro_app.core.frame import Frame, SlidePosition
from micro_app.core.geometry import Box
from micro_app.core.sources import smear
from micro_app.core.sources.base import (
    AUTO_EXPOSURE,
    EXPOSURE,
    FPS,
    GAIN,
    HEIGHT,
    WIDTH,
    Pacer,
    PropertyInfo,
    SourceInfo,
    check_rate,
)

WBC_KINDS = smear.WBC_KINDS
_RANGES = {EXPOSURE: (0.1, 4.0), GAIN: (1.0, 16.0), FPS: (0.1, 240.0)}
_NOISE_MARGIN = 32


@dataclass(frozen=True)
class Stage:
    """A stage of real cells to pan over: the image (RGB, a torus: its edges meet), its
    scale, and every white cell on it with its class."""

    image: np.ndarray
    px_per_um: float
    cells: tuple[smear.PlacedCell, ...]
    credit: str = ""


# the stage's image, as stage.json names it, else the first of these present (stage.png:
# the uncompressed stage of bundles built before the stage shipped with the source)
STAGE_IMAGES = ("stage.jpg", "stage.webp", "stage.png")
#: pan speed over a stage of real cells, px per second (12 µm/s): a PBC cell is about
#: 120 px across (0.146 µm per px), so a new whole cell comes into a 640 x 480 field about
#: every second and a cell stays in view about eight seconds, whatever the frame rate
STAGE_SPEED = 80.0
#: the same in px per frame when the demo is not paced (as fast as possible): 15 frames a s
STAGE_DRIFT = STAGE_SPEED / 15


def load_stage(folder: Path) -> Stage | None:
    """The stage in ``folder`` (``stage.json`` and the image it names: ``stage.jpg``, or
    ``stage.png`` in older bundles), or None when absent."""
    folder = Path(folder)
    if not (folder / "stage.json").is_file():
        return None
    meta = json.loads((folder / "stage.json").read_text(encoding="utf-8"))
    names = [meta["image"]] if meta.get("image") else list(STAGE_IMAGES)
    found = [folder / n for n in names if (folder / n).is_file()]
    if not found:
        return None
    img = cv2.imread(str(found[0]), cv2.IMREAD_COLOR)
    if img is None:
        return None
    cells = tuple(
        smear.PlacedCell(float(c["x"]), float(c["y"]), str(c["kind"]), tuple(c["box"]))
        for c in meta["cells"]
    )
    return Stage(img[..., ::-1].copy(), float(meta["px_per_um"]), cells, meta.get("credit", ""))


class DemoSource:
    """Synthetic smear camera; ``px_per_um`` fixes the scale (a red cell is ~7.5 µm across).
    With ``stage``, a camera over a stage of real cells instead (its own scale).
    ``drift``: pan speed in px per frame (default 1.5 over the smear; over a stage
    ``STAGE_SPEED`` px per second when paced, else ``STAGE_DRIFT`` px per frame)."""

    kind = "demo"

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        rate: float | None = None,
        seed: int = 0,
        *,
        px_per_um: float = 8.0,
        drift: float | None = None,
        wbc_per_field: float = 1.6,
        focus_blur: float = 1.0,
        noise: float = 2.5,
        canvas_scale: int = 3,
        stage: Stage | None = None,
    ) -> None:
        for label, val, low in (("width", width, 64), ("height", height, 64)):
            if not isinstance(val, int) or val < low:
                raise SettingsError(f"demo {label} must be a whole number >= {low} px, got {val!r}")
        if not 2.0 <= px_per_um <= 40.0:
            raise SettingsError(f"px_per_um must be between 2 and 40, got {px_per_um!r}")
        if canvas_scale < 2:
            raise SettingsError(f"canvas_scale must be at least 2, got {canvas_scale!r}")
        self._speed = STAGE_SPEED if drift is None and stage is not None else None
        if drift is None:
            drift = 1.5 if stage is None else STAGE_DRIFT
        for label, v in (("drift", drift), ("wbc_per_field", wbc_per_field)):
            if v < 0:
                raise SettingsError(f"{label} must not be negative, got {v!r}")
        if focus_blur < 0 or noise < 0:
            raise SettingsError(f"focus_blur and noise must be >= 0, got {focus_blur!r}, {noise!r}")
        # the stage of real cells is the demo every copy of the app opens on; the drawn
        # smear says what it is
        self.name = "demo" if stage is not None else "demo (drawn smear)"
        self.width, self.height = width, height
        self.seed = int(seed)
        self.px_per_um = float(px_per_um)
        self.drift, self.wbc_per_field = float(drift), float(wbc_per_field)
        self.focus_blur, self.noise = float(focus_blur), float(noise)
        self.canvas_scale = int(canvas_scale)
        self._pacer = Pacer(check_rate(rate))
        self.exposure = 1.0
        self.gain = 1.0
        #: White cells in the last frame read: (box in frame pixels, kind).
        self.last_truth: list[tuple[Box, str]] = []
        self._tiled: np.ndarray | None = None
        self._wbcs: list[smear.PlacedCell] = []
        self._seq = 0
        self.stage = stage
        if stage is not None:
            self.px_per_um = stage.px_per_um

    @property
    def rate(self) -> float | None:
        return self._pacer.rate

    @property
    def step(self) -> float:
        """How far the field pans per frame, px."""
        rate = self.rate
        return self._speed / rate if self._speed is not None and rate else self.drift

    @property
    def canvas_shape(self) -> tuple[int, int]:
        """(height, width) of the whole smear the field pans over."""
        if self.stage is not None:
            return int(self.stage.image.shape[0]), int(self.stage.image.shape[1])
        return self.height * self.canvas_scale, self.width * self.canvas_scale

    # ------------------------------------------------------------------ FrameSource
    def open(self) -> None:
        rng = np.random.default_rng(self.seed)
        ch, cw = self.canvas_shape
        fields = (ch * cw) / (self.height * self.width)
        n_wbc = max(1, round(self.wbc_per_field * fields)) if self.wbc_per_field > 0 else 0
        if self.stage is not None:
            canvas, self._wbcs = self.stage.image, list(self.stage.cells)
        else:
            canvas, self._wbcs = smear.render_smear(rng, ch, cw, self.px_per_um, n_wbc)
        # Append the first rows/columns so any field is one contiguous slice.
        pad_h, pad_w = self.height, self.width
        self._tiled = np.pad(canvas, ((0, pad_h), (0, pad_w), (0, 0)), mode="wrap")
        self._rng = np.random.default_rng((self.seed, 1))
        self._make_noise()
        self._pos = np.array([rng.uniform(0, cw), rng.uniform(0, ch)])
        self._heading = rng.uniform(0, 2 * math.pi)
        self._focus_phase = rng.uniform(0, 2 * math.pi)
        self._seq = 0
        self._pacer.reset()

    def read(self) -> Frame | None:
        if self._tiled is None:
            raise RuntimeError("the demo source is not open: call open() first")
        ch, cw = self.canvas_shape
        h, w = self.height, self.width
        ox, oy = round(float(self._pos[0])) % cw, round(float(self._pos[1])) % ch
        view = self._tiled[oy : oy + h, ox : ox + w]
        s = self._seq
        sigma = self.focus_blur * (0.5 + 0.5 * math.sin(2 * math.pi * s / 150 + self._focus_phase))
        sigma += float(self._rng.uniform(0.0, 0.15)) * self.focus_blur
        img = cv2.GaussianBlur(view, (0, 0), sigma) if sigma > 0.3 else view.copy()
        factor = self.exposure * self.gain
        if factor != 1.0:
            img = cv2.convertScaleAbs(img, alpha=factor)
        if self.noise > 0:
            dy, dx = (int(v) for v in self._rng.integers(0, _NOISE_MARGIN, size=2))
            cv2.add(img, self._noise_pos[dy : dy + h, dx : dx + w], dst=img)
            cv2.subtract(img, self._noise_neg[dy : dy + h, dx : dx + w], dst=img)
        self.last_truth = self._truth(ox, oy)
        # Pan: constant speed, heading meanders slowly.
        heading = self._heading + 0.9 * math.sin(2 * math.pi * s / 600)
        self._pos += self.step * np.array([math.cos(heading), math.sin(heading)])
        self._seq += 1
        self._pacer.wait()
        position = SlidePosition(f"demo:{self.seed}", ox, oy, wrap=(cw, ch))
        return Frame(img, s, time.monotonic(), self.name, position)

    def close(self) -> None:
        self._tiled = None

    def properties(self) -> dict[str, PropertyInfo]:
        fixed = "fixed when the demo source is created"
        return {
            EXPOSURE: PropertyInfo(EXPOSURE, self.exposure, *_RANGES[EXPOSURE]),
            GAIN: PropertyInfo(GAIN, self.gain, *_RANGES[GAIN]),
            FPS: PropertyInfo(FPS, self.rate, *_RANGES[FPS]),
            AUTO_EXPOSURE: PropertyInfo(
                AUTO_EXPOSURE, None, supported=False, reason="the demo source has no auto exposure"
            ),
            WIDTH: PropertyInfo(WIDTH, self.width, supported=False, reason=fixed),
            HEIGHT: PropertyInfo(HEIGHT, self.height, supported=False, reason=fixed),
        }

    def set_property(self, name: str, value: float) -> None:
        if name not in _RANGES:
            names = ", ".join(_RANGES)
            raise UnsupportedProperty(
                f"the demo source cannot set {name!r}: it supports {names} only"
            )
        low, high = _RANGES[name]
        if not low <= value <= high:
            raise SettingsError(f"demo {name} must be between {low} and {high}, got {value!r}")
        if name == FPS:
            self._pacer = Pacer(float(value))
        elif name == EXPOSURE:
            self.exposure = float(value)
        else:
            self.gain = float(value)
            if self._tiled is not None:
                self._make_noise()

    @property
    def known_um_per_px(self) -> float:
        """The demo draws (or lays out) its cells at this scale: no estimate needed."""
        return 1.0 / self.px_per_um

    def describe(self) -> dict[str, Any]:
        extra = {
            "stage": "real cells (PBC, CC BY 4.0)" if self.stage is not None else "synthetic",
            "seed": self.seed,
            "px_per_um": self.px_per_um,
            "drift_px_per_frame": self.step,
            "focus_blur": self.focus_blur,
            "noise": self.noise,
        }
        return SourceInfo(
            "demo", self.name, self.width, self.height, self.rate, self.exposure, self.gain, extra
        ).to_dict()

    # ------------------------------------------------------------------ helpers
    def _make_noise(self) -> None:
        shape = (self.height + _NOISE_MARGIN, self.width + _NOISE_MARGIN, 3)
        rng = np.random.default_rng((self.seed, 2))
        noise = rng.standard_normal(shape, dtype=np.float32) * (self.noise * self.gain)
        noise = np.rint(noise)
        self._noise_pos = np.clip(noise, 0, 255).astype(np.uint8)
        self._noise_neg = np.clip(-noise, 0, 255).astype(np.uint8)

    def _truth(self, ox: int, oy: int) -> list[tuple[Box, str]]:
        ch, cw = self.canvas_shape
        out: list[tuple[Box, str]] = []
        for cell in self._wbcs:
            x0, y0, x1, y1 = cell.box  # canvas pixels, may extend past the canvas edge
            fx, fy = (x0 - ox) % cw, (y0 - oy) % ch
            fx = fx - cw if fx >= self.width else fx
            fy = fy - ch if fy >= self.height else fy
            bw, bh = x1 - x0, y1 - y0
            cx0, cy0 = max(fx, 0), max(fy, 0)
            cx1, cy1 = min(fx + bw, self.width), min(fy + bh, self.height)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            if (cx1 - cx0) * (cy1 - cy0) >= 0.5 * bw * bh:
                out.append((Box(cx0, cy0, cx1, cy1), cell.kind))
        return out
