"""Draw a ``FrameResult`` onto its frame: boxes, labels, confidences, mask tint, scale bar.

Pure functions on RGB uint8 arrays; the input frame is never modified.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from micro_app.core.results import ATYPICAL, SHOWN, UNCLASSIFIED, UNIDENTIFIED, FrameResult

UNLIKE_AMBER = (255, 191, 0)
# Colour-blind-safe palette (Okabe-Ito), RGB; each class keeps its colour across frames.
PALETTE = (
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
    (120, 94, 240),
    (0, 0, 0),
)
SPECIAL = {UNIDENTIFIED: (255, 255, 255), UNCLASSIFIED: (40, 200, 40), ATYPICAL: (230, 0, 80)}
FONT = cv2.FONT_HERSHEY_SIMPLEX
# OpenCV 4's Hershey fonts have no µ (putText draws "?"; OpenCV 5's built-in fonts have it):
# there ``put_text`` draws it as a "u" whose left stem goes on below the line.
MICRO = "µ"


@dataclass(frozen=True)
class OverlayOptions:
    boxes: bool = True
    labels: bool = True
    mask: bool = False
    scale_bar: bool = True
    selected: int | None = None  # index of a highlighted cell
    # an amber line when the frame is unlike the model's training images (exports; the
    # live window shows its own smoothed line instead)
    input_warning: bool = True


def class_colour(label: str, classes: tuple[str, ...] | list[str] | None) -> tuple[int, int, int]:
    if label in SPECIAL:
        return SPECIAL[label]
    if classes and label in classes:
        return PALETTE[list(classes).index(label) % len(PALETTE)]
    return PALETTE[sum(label.encode()) % len(PALETTE)]


def cell_text(label: str, confidence: float, *, provisional: bool, counted: bool = False) -> str:
    """How a cell's label reads: ``atypical — review``; a provisional cell (unlike the
    training images) as ``neutrophil?`` and never with a confidence; a counted cell as its
    label on the slide; otherwise the label and this frame's confidence."""
    shown = SHOWN.get(label, label)
    if label in (UNCLASSIFIED, ATYPICAL):
        return shown
    if provisional:
        return f"{shown}?"
    return shown if counted else f"{shown} {confidence:.0%}"


def draw_overlay(
    image: np.ndarray, result: FrameResult, options: OverlayOptions | None = None
) -> np.ndarray:
    opts = options or OverlayOptions()
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.7, min(w, h) / 700.0)
    thick = max(1, round(2 * scale))
    classes = result.model["classes"] if result.model else None
    if opts.mask and result.mask is not None and result.mask.shape[:2] == (h, w):
        tint = np.zeros_like(out)
        tint[..., 1] = 255
        sel = result.mask > 0
        out[sel] = (0.55 * out[sel] + 0.45 * tint[sel]).astype(np.uint8)
    for i, cell in enumerate(result.cells):
        colour = class_colour(cell.label, classes)
        b = cell.box
        if opts.boxes:
            t = thick * 2 if opts.selected == i else thick
            cv2.rectangle(out, (b.x0, b.y0), (b.x1 - 1, b.y1 - 1), colour, t, cv2.LINE_AA)
        if opts.labels:
            text = cell_text(cell.label, cell.confidence, provisional=cell.provisional)
            _label(out, text, b.x0, b.y0, colour, scale)
    if result.field_result is not None:
        fr = result.field_result
        _label(
            out,
            f"field: {fr.label} {fr.confidence:.0%}",
            4,
            4,
            (255, 255, 255),
            scale * 1.2,
            top=True,
        )
    if opts.scale_bar and result.scale_source == "calibrated":
        draw_scale_bar(out, result.um_per_px)
    footer = unlike_footer(result) if opts.input_warning else None
    if footer is not None:
        _label(out, footer, 4, h, UNLIKE_AMBER, _fit_scale(footer, scale, w - 8))
    return out


def unlike_footer(result: FrameResult) -> str | None:
    """The amber line along an exported image's foot when its cells (or the field) look
    unlike the model's training images; None when they do not."""
    if not result.unlike_training or result.unlike_share is None:
        return None
    if result.field_result is not None:
        return "the field looks unlike the model's training images: its label may be wrong"
    return (
        f"{result.unlike_share:.0%} of the cells look unlike the model's training images: "
        "labels may be wrong"
    )


def _fit_scale(text: str, scale: float, width: int) -> float:
    """``scale``, made smaller when ``_label`` would draw ``text`` wider than ``width``."""
    tw = cv2.getTextSize(text, FONT, 0.5 * scale * 1.4, max(1, round(scale * 1.4)))[0][0]
    return scale if tw + 4 <= width else max(0.3, scale * (width - 4) / tw)


def _label(
    img: np.ndarray,
    text: str,
    x: int,
    y: int,
    colour: tuple[int, int, int],
    scale: float,
    top: bool = False,
) -> None:
    fs = 0.5 * scale * 1.4
    th = max(1, round(scale * 1.4))
    (tw, tht), base = cv2.getTextSize(text, FONT, fs, th)
    h, w = img.shape[:2]
    x = int(min(max(0, x), max(0, w - tw - 4)))
    y0 = y if top else y - tht - base - 4
    if y0 < 0:
        y0 = y + 2
    y0 = int(min(y0, h - tht - base - 4))
    cv2.rectangle(img, (x, y0), (x + tw + 4, y0 + tht + base + 4), colour, -1)
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    cv2.putText(img, text, (x + 2, y0 + tht + 2), FONT, fs, ink, th, cv2.LINE_AA)


def nice_length_um(um_per_px: float, width_px: int) -> float:
    """A round length (1, 2, 5 x 10^k µm) near a fifth of the image width."""
    target = um_per_px * width_px / 5.0
    exp = np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * 10**exp <= target:
            return float(m * 10**exp)
    return float(10**exp)


def draw_scale_bar(img: np.ndarray, um_per_px: float) -> None:
    """A labelled bar in the lower right corner, in place."""
    h, w = img.shape[:2]
    length_um = nice_length_um(um_per_px, w)
    px = round(length_um / um_per_px)
    margin = max(8, w // 60)
    y = h - margin
    x1 = w - margin
    x0 = x1 - px
    bar_h = max(3, h // 150)
    cv2.rectangle(img, (x0 - 4, y - bar_h - 24), (x1 + 4, y + 4), (0, 0, 0), -1)
    cv2.rectangle(img, (x0, y - bar_h), (x1, y), (255, 255, 255), -1)
    text = scale_bar_text(length_um)
    tw = text_width(text, 0.5, 1)
    # the baseline 8 px above the bar leaves room for the µ's tail
    put_text(img, text, (x0 + (px - tw) // 2, y - bar_h - 8), 0.5, (255, 255, 255), 1)


def scale_bar_text(length_um: float) -> str:
    return f"{length_um:g} {MICRO}m"


def text_width(text: str, fs: float, th: int) -> int:
    """Width in pixels of ``text`` as ``put_text`` draws it."""
    if MICRO not in text or _draws_micro(fs, th):
        return int(cv2.getTextSize(text, FONT, fs, th)[0][0])
    parts = text.split(MICRO)
    width = sum(cv2.getTextSize(p, FONT, fs, th)[0][0] for p in parts if p)
    return width + (len(parts) - 1) * cv2.getTextSize("u", FONT, fs, th)[0][0]


def put_text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    fs: float,
    colour: tuple[int, int, int],
    th: int,
) -> None:
    """``cv2.putText`` (Hershey simplex, anti-aliased) that can also draw ``µ``, in place."""
    if MICRO not in text or _draws_micro(fs, th):
        cv2.putText(img, text, org, FONT, fs, colour, th, cv2.LINE_AA)
        return
    x, y = org
    for i, part in enumerate(text.split(MICRO)):
        if i:  # a µ before this part
            cv2.putText(img, "u", (x, y), FONT, fs, colour, th, cv2.LINE_AA)
            stem, height = _u_stem(fs, th)
            cv2.line(img, (x + stem, y), (x + stem, y + height // 4), colour, th, cv2.LINE_AA)
            x += cv2.getTextSize("u", FONT, fs, th)[0][0]
        if part:
            cv2.putText(img, part, (x, y), FONT, fs, colour, th, cv2.LINE_AA)
            x += cv2.getTextSize(part, FONT, fs, th)[0][0]


@functools.lru_cache(maxsize=16)
def _draws_micro(fs: float, th: int) -> bool:
    """Whether this OpenCV's ``putText`` has a µ: it is drawn unlike the "?" that stands
    for a missing glyph (one per character, or one per byte of its UTF-8)."""

    def drawn(text: str) -> np.ndarray:
        scratch = np.zeros((64, 96), np.uint8)
        cv2.putText(scratch, text, (8, 40), FONT, fs, 255, th, cv2.LINE_AA)
        return scratch

    mu = drawn(MICRO)
    return not any(np.array_equal(mu, drawn(q)) for q in ("?", "??"))


@functools.lru_cache(maxsize=16)
def _u_stem(fs: float, th: int) -> tuple[int, int]:
    """Where the left stem of a drawn "u" is (pixels right of the text origin), and the
    font's height: the µ's tail is drawn there, a quarter of the height long."""
    (w, h), _ = cv2.getTextSize("u", FONT, fs, th)
    scratch = np.zeros((2 * h + 2 * th, w + 2 * th + 2), np.uint8)
    cv2.putText(scratch, "u", (th, 2 * h), FONT, fs, 255, th, cv2.LINE_AA)
    cols = np.nonzero((scratch > 127).any(axis=0))[0]
    left = int(cols[0]) - th if cols.size else 0
    return left + (th - 1) // 2, h
