"""Find white cells in a frame: nucleus mask -> clean-up -> lobes merged -> square crops.

Sizes are in micrometres and turned into pixels with the frame's scale (µm per pixel),
which is either calibrated (passed in), estimated from the red cells of the frame
(``scale.estimate_um_per_px``: a red cell is about 7.5 µm across), or ``fallback_um_per_px``.
The mask work runs at the preprocessing working width (320 px by default), which keeps
``locate_cells`` at a few milliseconds for a 640x480 frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from micro_app.core.errors import SettingsError
from micro_app.core.geometry import Box
from micro_app.core.preprocess import PreprocessParams, working_mask
from micro_app.core.scale import MIN_SIDE, estimate_um_per_px
from micro_app.core.typed import known_keys_only

_POSITIVE = {"max_nucleus_um", "max_eccentricity", "fallback_um_per_px"}  # others may be 0


@dataclass(frozen=True)
class LocateParams:
    """Cell-locating settings; every length is in micrometres.

    ``min_nucleus_um``/``max_nucleus_um``: bounds on the equivalent diameter (from the area)
    of a cell's whole nucleus, all lobes together. ``min_lobe_um``: smaller mask pieces
    (stain dots on red cells) are dropped before merging. ``merge_um``: nucleus pieces
    closer than this are lobes of one cell. ``open_um``/``close_um``: diameters of the
    clean-up opening and closing. ``max_eccentricity``: drops streaks. ``crop_um``: side of
    the square crop box; ``margin_um``: the box grows to the nucleus extent plus this margin
    on each side when that is larger (``crop_um`` 0: always so). ``estimate_scale``:
    estimate µm/px from red cells when no calibration is given; ``fallback_um_per_px`` when
    that fails too.

    Defaults, measured with ``benchmarks/bench_locate.py``: whole nuclei measure 6.3-16 µm
    on BCCD, specks and platelets at most 3.9 µm, so 4.5 sits in the gap; 25 only drops
    debris. Recall and false positives stay flat for merge 1-3 µm (2: lobes of a neutrophil
    meet across ~1 µm gaps, two touching cells are rarely closer). 0.99 eccentricity is a
    7:1 aspect ratio, so band neutrophils pass. 20 µm boxes hold a 10-15 µm cell with room;
    the model's own framing comes from its card (PBC crops span ~37 µm). 0.1 µm/px lies
    between the set-ups measured (BCCD 0.085, demo camera 0.125, PBC 0.147): calibrate.
    """

    min_nucleus_um: float = 4.5
    max_nucleus_um: float = 25.0
    min_lobe_um: float = 1.5
    merge_um: float = 2.0
    open_um: float = 0.5
    close_um: float = 0.5
    max_eccentricity: float = 0.99
    crop_um: float = 20.0
    margin_um: float = 3.0
    estimate_scale: bool = True
    fallback_um_per_px: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "estimate_scale":
                if not isinstance(v, bool):
                    raise SettingsError(f"estimate_scale must be true or false, got {v!r}")
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise SettingsError(f"locate setting {f.name} must be a number, got {v!r}")
            if v < 0 or (v == 0 and f.name in _POSITIVE):
                raise SettingsError(f"locate setting {f.name} must be positive, got {v!r}")
        if self.min_nucleus_um >= self.max_nucleus_um:
            raise SettingsError(
                f"min_nucleus_um {self.min_nucleus_um} must be below max_nucleus_um "
                f"{self.max_nucleus_um}"
            )
        if self.max_eccentricity > 1:
            raise SettingsError(f"max_eccentricity must be 0..1, got {self.max_eccentricity!r}")
        if self.fallback_um_per_px >= 100:
            raise SettingsError(
                f"fallback_um_per_px is not a plausible scale: {self.fallback_um_per_px!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocateParams:
        return cls(**known_keys_only(cls, data, "locate settings"))


@dataclass(frozen=True)
class Cell:
    """One located white cell, in frame pixels.

    ``box``: the square crop (``side_px`` wide) centred on ``center``, clipped to the frame.
    ``center``: centroid of the nucleus pixels (x, y). ``nucleus_area_px``: all lobes.
    ``touches_border``: the nucleus reaches the frame edge, so the cell is probably cut off.
    """

    box: Box
    nucleus_box: Box
    nucleus_area_px: int
    center: tuple[float, float]
    touches_border: bool
    side_px: int


@dataclass(frozen=True)
class LocateResult:
    """``mask``: the cleaned nucleus mask (0/255, frame size) before the size and shape
    filters; ``scale_source``: "calibrated", "estimated" (red cells) or "default"."""

    cells: list[Cell]
    mask: np.ndarray
    um_per_px: float
    scale_source: str


def _disc(diameter_px: float) -> np.ndarray | None:
    d = round(diameter_px)
    if d < 2:
        return None
    d += 1 - d % 2
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _square(cx: float, cy: float, side: int) -> tuple[int, int]:
    return round(cx - side / 2.0), round(cy - side / 2.0)


def _clip(x0: int, y0: int, x1: int, y1: int, w: int, h: int) -> Box:
    return Box(max(0, x0), max(0, y0), min(w, x1), min(h, y1))


def locate_cells(
    image_rgb: np.ndarray,
    preprocess: PreprocessParams,
    params: LocateParams,
    um_per_px: float | None = None,
) -> LocateResult:
    """Locate the white cells of an RGB frame (see the module docstring for the scale)."""
    h, w = image_rgb.shape[:2]
    if min(h, w) < MIN_SIDE or max(h, w) > 50 * min(h, w):  # a sliver: nothing to find
        scale = float(um_per_px) if um_per_px is not None else params.fallback_um_per_px
        return LocateResult(
            cells=[],
            mask=np.zeros((h, w), np.uint8),
            um_per_px=scale,
            scale_source="calibrated" if um_per_px is not None else "default",
        )
    if um_per_px is not None:
        if not 0 < um_per_px < 100:
            raise ValueError(f"µm per pixel must be a positive scale, got {um_per_px}")
        scale, source = float(um_per_px), "calibrated"
    else:
        est = estimate_um_per_px(image_rgb) if params.estimate_scale else None
        scale, source = (
            (est, "estimated") if est is not None else (params.fallback_um_per_px, "default")
        )
    h, w = image_rgb.shape[:2]
    mask = working_mask(image_rgb, preprocess)
    sx, sy = w / mask.shape[1], h / mask.shape[0]  # frame pixels per working pixel
    um_work = scale * sx
    for op, size in ((cv2.MORPH_OPEN, params.open_um), (cv2.MORPH_CLOSE, params.close_um)):
        k = _disc(size / um_work)
        if k is not None:
            mask = cv2.morphologyEx(mask, op, k)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= math.pi / 4 * (params.min_lobe_um / um_work) ** 2
    keep[0] = False
    if not keep[1:].all():  # drop pieces smaller than a lobe
        mask = np.where(keep[labels], np.uint8(255), np.uint8(0))
    k = _disc(params.merge_um / um_work)
    grown = mask if k is None else cv2.dilate(mask, k)
    n, groups = cv2.connectedComponents(grown, connectivity=8)
    cells = _cells(mask, groups, n, params, scale, (sx, sy), (w, h)) if n > 1 else []
    full = (
        mask if mask.shape == (h, w) else cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    )
    return LocateResult(cells=cells, mask=full, um_per_px=scale, scale_source=source)


def _cells(
    mask: np.ndarray,
    groups: np.ndarray,
    n: int,
    params: LocateParams,
    um_per_px: float,
    step: tuple[float, float],
    frame: tuple[int, int],
) -> list[Cell]:
    ys, xs = np.nonzero(mask)
    lab = groups[ys, xs]
    area = np.bincount(lab, minlength=n).astype(np.float64)
    area[0] = 0
    sx, sy = step
    w, h = frame
    um2 = um_per_px * um_per_px * sx * sy  # µm² per working pixel
    diam = np.sqrt(4.0 * area * um2 / math.pi)
    ok = (diam >= params.min_nucleus_um) & (diam <= params.max_nucleus_um)
    if not ok.any():
        return []
    safe = np.maximum(area, 1)
    fx, fy = (xs + 0.5) * sx, (ys + 0.5) * sy  # pixel centres, frame coordinates
    mx = np.bincount(lab, fx, n) / safe
    my = np.bincount(lab, fy, n) / safe
    cxx = np.bincount(lab, fx * fx, n) / safe - mx * mx
    cyy = np.bincount(lab, fy * fy, n) / safe - my * my
    cxy = np.bincount(lab, fx * fy, n) / safe - mx * my
    root = np.sqrt(((cxx - cyy) / 2) ** 2 + cxy**2)
    major, minor = (cxx + cyy) / 2 + root, np.maximum((cxx + cyy) / 2 - root, 0)
    ecc = np.sqrt(1.0 - minor / np.maximum(major, 1e-9))
    ok &= ecc <= params.max_eccentricity
    wh, ww = mask.shape
    out = []
    for i in np.nonzero(ok)[0].tolist():
        px, py = xs[lab == i], ys[lab == i]
        x0, y0, x1, y1 = int(px.min()), int(py.min()), int(px.max()) + 1, int(py.max()) + 1
        fx0, fy0 = math.floor(x0 * sx), math.floor(y0 * sy)
        nbox = _clip(fx0, fy0, math.ceil(x1 * sx), math.ceil(y1 * sy), w, h)
        cx, cy = float(mx[i]), float(my[i])
        extent = max(nbox.width, nbox.height) + 2 * params.margin_um / um_per_px
        side = max(2, round(max(params.crop_um / um_per_px, extent)))
        bx, by = _square(cx, cy, side)
        border = x0 == 0 or y0 == 0 or x1 == ww or y1 == wh
        out.append(
            Cell(
                box=_clip(bx, by, bx + side, by + side, w, h),
                nucleus_box=nbox,
                nucleus_area_px=round(area[i] * sx * sy),
                center=(cx, cy),
                touches_border=bool(border),
                side_px=side,
            )
        )
    return out


def crop_square(cell: Cell, frame_w: int, frame_h: int) -> Box:
    """The square that ``extract_crops`` cuts for ``cell``; it may leave the frame.

    It is ``cell.box`` made square about its own centre, except where ``cell.box`` is the
    locator's clipped box: then the unclipped ``side_px`` square about ``cell.center``."""
    bx, by = _square(*cell.center, cell.side_px)
    bx1, by1 = bx + cell.side_px, by + cell.side_px
    clipped = (max(0, bx), max(0, by), min(frame_w, bx1), min(frame_h, by1))
    if cell.box.as_list() == list(clipped):
        return Box(bx, by, bx1, by1)
    side = max(cell.box.width, cell.box.height)
    x0, y0 = _square(*cell.box.center, side)
    return Box(x0, y0, x0 + side, y0 + side)


def background_colour(image_rgb: np.ndarray) -> tuple[int, int, int]:
    """The slide background's colour: the median of the brightest fifth of the frame."""
    small = image_rgb[::4, ::4].reshape(-1, 3)
    grey = small.astype(np.int32).sum(axis=1)
    bright = small[grey >= np.percentile(grey, 80)]
    r, g, b = np.median(bright, axis=0)
    return int(r), int(g), int(b)


def reduce_area(image: np.ndarray, f: float) -> np.ndarray:
    """``image`` reduced by ``f`` (< 1) with area averaging, in halving steps while ``f`` is at
    most a half: OpenCV's area reduction by exactly 2 is a fast special case, by any other
    factor a general one (a 1080p frame to 0.4: 2.9 ms against 7.8 ms here; the pixels
    differ by 1 grey level on average)."""
    h, w = image.shape[:2]
    out_w, out_h = max(1, round(w * f)), max(1, round(h * f))
    while f <= 0.5 and image.shape[1] >= 2 * out_w and image.shape[0] >= 2 * out_h:
        half = (image.shape[1] // 2, image.shape[0] // 2)
        image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
        f *= 2.0
    if image.shape[:2] == (out_h, out_w):
        return image
    return cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA)


def extract_crops(
    image_rgb: np.ndarray, cells: list[Cell], size: int, *, prescale: bool = True
) -> np.ndarray:
    """``(N, size, size, 3)`` uint8 square crops, resized. Where the square leaves the
    frame it is filled with the background colour, so a cell at the edge stays centred and
    the model never sees a mirrored copy of it (a reflected border doubles the nucleus).

    ``prescale``: when every square is at least twice ``size``, the frame is reduced once
    (area averaging, as a crop is reduced) and the crops are cut from it: one resize of the
    frame instead of one per cell, the costliest step of a busy frame."""
    if size < 1:
        raise ValueError(f"crop size must be positive, got {size}")
    h, w = image_rgb.shape[:2]
    squares = [crop_square(cell, w, h) for cell in cells]
    f = 1.0
    if prescale and squares and min(sq.width for sq in squares) >= 2 * size:
        f = size / min(sq.width for sq in squares)
    src = image_rgb if f == 1.0 else reduce_area(image_rgb, f)
    sh, sw = src.shape[:2]
    out = np.empty((len(cells), size, size, 3), np.uint8)
    fill: tuple[int, int, int] | None = None
    for i, sq in enumerate(squares):
        if f != 1.0:
            x0, y0 = round(sq.x0 * f), round(sq.y0 * f)
            side = max(1, round(sq.width * f))
            sq = Box(x0, y0, x0 + side, y0 + side)
        inner = src[max(0, sq.y0) : min(sh, sq.y1), max(0, sq.x0) : min(sw, sq.x1)]
        pads = (max(0, -sq.y0), max(0, sq.y1 - sh), max(0, -sq.x0), max(0, sq.x1 - sw))
        if any(pads) or inner.size == 0:
            fill = fill or background_colour(src)  # the reduced frame: the same colour
            if inner.size == 0:  # the square lies wholly outside the frame
                colour = np.array(fill, np.uint8)
                inner = np.ascontiguousarray(np.broadcast_to(colour, (sq.height, sq.width, 3)))
            else:
                top, bottom, left, right = pads
                inner = cv2.copyMakeBorder(
                    inner, top, bottom, left, right, cv2.BORDER_CONSTANT, value=fill
                )
        interp = cv2.INTER_AREA if inner.shape[0] > size else cv2.INTER_LINEAR
        out[i] = cv2.resize(inner, (size, size), interpolation=interp)
    return out
