"""Rendering of a synthetic stained blood smear (used by :class:`~.demo.DemoSource`).

Pure functions of a numpy ``Generator``: the same seed gives the same smear. The smear is a
torus (cells crossing an edge continue on the opposite edge) so a viewer can pan forever.
Colours are optical densities (``-ln(I/I0)`` per RGB channel) that add where cells overlap.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

WBC_KINDS = ("neutrophil", "lymphocyte", "monocyte", "eosinophil")
_KIND_WEIGHTS = (0.45, 0.3, 0.15, 0.1)
_DIAMETER_UM = {
    "neutrophil": (12.0, 14.5),
    "lymphocyte": (10.5, 12.5),
    "monocyte": (14.0, 17.0),
    "eosinophil": (12.5, 15.0),
}
RBC_DIAMETER_UM = 7.5

_ILLUM = np.array([250.0, 247.0, 244.0], np.float32)
_BG_RGB = (236, 226, 219)  # pale pinkish cream


def _od(rgb: tuple[int, int, int], base: np.ndarray | tuple[int, int, int] = _BG_RGB) -> np.ndarray:
    """Optical density that turns ``base`` into ``rgb``."""
    return (-np.log(np.asarray(rgb, np.float32) / np.asarray(base, np.float32))).astype(np.float32)


_OD_BG = _od(_BG_RGB, _ILLUM)
_OD_RBC = _od((212, 142, 146))
_OD_CYTO = {
    "neutrophil": _od((222, 200, 218)),
    "lymphocyte": _od((180, 198, 230)),
    "monocyte": _od((198, 192, 220)),
    "eosinophil": _od((228, 204, 204)),
}
_OD_NUCLEUS = {
    "neutrophil": _od((96, 48, 132)),
    "lymphocyte": _od((80, 38, 118)),
    "monocyte": _od((124, 84, 160)),
    "eosinophil": _od((84, 50, 140)),
}
_OD_EOS_GRANULE = _od((226, 124, 88))


@dataclass(frozen=True)
class PlacedCell:
    """A white cell on the smear: centre and box in canvas pixels (the box may cross an edge)."""

    x: float
    y: float
    kind: str
    box: tuple[int, int, int, int]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (size - 1) / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return x - c, y - c


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Roughly unit-variance smooth noise on a ``size`` square."""
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def _soft(signed_dist: np.ndarray, width: float = 1.2) -> np.ndarray:
    """Anti-aliased inside mask from a signed distance (positive inside, pixels)."""
    return np.clip(signed_dist / width + 0.5, 0.0, 1.0)


def rbc_sprite(rng: np.random.Generator, radius: float) -> np.ndarray:
    """Optical density of one red cell: a disc with a paler centre and a slightly darker rim."""
    size = 2 * math.ceil(radius * 1.1) + 1
    x, y = _grid(size)
    ecc, th = rng.uniform(0.0, 0.07), rng.uniform(0.0, math.pi)
    u = x * math.cos(th) + y * math.sin(th)
    v = -x * math.sin(th) + y * math.cos(th)
    rho = np.sqrt((u / (radius * (1 + ecc))) ** 2 + (v / (radius * (1 - ecc))) ** 2)
    pallor, depth = rng.uniform(0.38, 0.5), rng.uniform(0.45, 0.65)
    thick = (
        1.0 - depth * np.exp(-((rho / pallor) ** 2)) + 0.1 * np.exp(-(((rho - 0.8) / 0.12) ** 2))
    )
    dens = _soft((1.0 - rho) * radius) * thick * rng.uniform(0.85, 1.12)
    return dens[..., None] * _OD_RBC


def _nucleus_mask(rng: np.random.Generator, kind: str, size: int, r: float) -> np.ndarray:
    """Float mask (0..1) of the nucleus, drawn with sub-pixel precision and softened."""
    sh = 4  # cv2 fixed-point shift: coordinates in 1/16 px
    k = 1 << sh
    mask = np.zeros((size, size), np.uint8)
    c = (size - 1) / 2.0
    ang = rng.uniform(0, 2 * math.pi)
    ca, sa = math.cos(ang), math.sin(ang)

    def pt(dx: float, dy: float) -> tuple[int, int]:  # rotate by ``ang`` around the centre
        return int((c + dx * ca - dy * sa) * k), int((c + dx * sa + dy * ca) * k)

    def ellipse(dx: float, dy: float, a: float, b: float, color: int) -> None:
        axes = (int(a * k), int(b * k))
        cv2.ellipse(mask, pt(dx, dy), axes, math.degrees(ang), 0, 360, color, -1, cv2.LINE_AA, sh)

    off = rng.uniform(-0.08, 0.08, size=2) * r
    if kind == "lymphocyte":
        ellipse(off[0], off[1], r * rng.uniform(0.74, 0.82), r * rng.uniform(0.68, 0.76), 255)
    elif kind == "monocyte":  # kidney: an ellipse with a bite taken out of one side
        ellipse(off[0], 0.1 * r, r * 0.64, r * 0.46, 255)
        ellipse(off[0] * 0.5, -0.42 * r, r * 0.3, r * 0.24, 0)
    else:
        lobes = 2 if kind == "eosinophil" else int(rng.integers(2, 6))
        lr = r * (0.31 if lobes == 2 else 0.32 - 0.016 * lobes)
        span = 1.7 if lobes == 2 else 0.85 * (lobes - 1)
        arc = r * (0.46 if lobes > 2 else 0.36)
        centres = []
        for i in range(lobes):
            a = -span / 2 + span * i / (lobes - 1) + rng.uniform(-0.12, 0.12)
            centres.append((arc * math.sin(a) + off[0], arc * (0.5 - math.cos(a)) + off[1]))
        for (x0, y0), (x1, y1) in itertools.pairwise(centres):
            thick = max(2, int(0.08 * r))
            cv2.line(mask, pt(x0, y0), pt(x1, y1), 255, thick, cv2.LINE_AA, sh)
        for x0, y0 in centres:
            ellipse(x0, y0, lr * rng.uniform(0.95, 1.15), lr * rng.uniform(0.8, 1.0), 255)
    return cv2.GaussianBlur(mask, (0, 0), 0.8).astype(np.float32) / 255.0


def wbc_sprite(
    rng: np.random.Generator, kind: str, px_per_um: float
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Optical density of one white cell and its box (x0, y0, x1, y1) inside the sprite."""
    r = rng.uniform(*_DIAMETER_UM[kind]) / 2.0 * px_per_um
    size = 2 * math.ceil(r * 1.12) + 3
    x, y = _grid(size)
    phi, rr = np.arctan2(y, x), np.hypot(x, y)
    wobble = np.ones_like(rr)
    for harmonic in (2, 3, 4, 5):
        wobble += rng.uniform(0, 0.035) * np.cos(harmonic * phi + rng.uniform(0, 2 * math.pi))
    body = _soft(r * wobble - rr)
    texture = 1.0 + 0.12 * _smooth_noise(rng, size, 7)
    nuc = _nucleus_mask(rng, kind, size, r) * body
    chromatin = np.clip(0.8 + 0.22 * _smooth_noise(rng, size, 12), 0.45, 1.3)
    if kind == "monocyte":
        chromatin *= 0.9
    od = (body * texture * (1.0 - nuc))[..., None] * _OD_CYTO[kind]
    od += (nuc * chromatin)[..., None] * _OD_NUCLEUS[kind]
    if kind in ("eosinophil", "monocyte"):
        dots = np.zeros((size, size), np.uint8)
        n, gr = (int(1.1 * r * r / 9), 0.35) if kind == "eosinophil" else (4, 0.5)
        for _ in range(n):
            a, d = rng.uniform(0, 2 * math.pi), r * 0.93 * math.sqrt(rng.uniform(0, 1))
            px, py = (size - 1) / 2 + d * math.cos(a), (size - 1) / 2 + d * math.sin(a)
            rad = max(1, round(gr * px_per_um * rng.uniform(0.8, 1.25)))
            cv2.circle(dots, (round(px), round(py)), rad, 255, -1, cv2.LINE_AA)
        g = cv2.GaussianBlur(dots, (0, 0), 0.6).astype(np.float32) / 255.0 * body
        if kind == "eosinophil":  # orange-red granules, partly over the nucleus
            od += (g * (1.0 - 0.6 * nuc))[..., None] * _OD_EOS_GRANULE
        else:  # pale vacuoles in the cytoplasm
            od *= (1.0 - 0.6 * g * (1.0 - nuc))[..., None]
    ys, xs = np.nonzero(body > 0.5)
    return od.astype(np.float32), (
        int(xs.min()),
        int(ys.min()),
        int(xs.max()) + 1,
        int(ys.max()) + 1,
    )


def _periodic_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth, seamless (periodic) variation of the smear's thickness, mean 1."""
    h4, w4 = max(4, height // 4), max(4, width // 4)
    yy = np.arange(h4, dtype=np.float32)[:, None] / h4
    xx = np.arange(w4, dtype=np.float32)[None, :] / w4
    field = np.ones((h4, w4), np.float32)
    for _ in range(6):
        ky, kx = rng.integers(-4, 5, size=2)
        field += 0.05 * np.cos(2 * np.pi * (ky * yy + kx * xx) + rng.uniform(0, 2 * np.pi))
    return cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)


def _fold(pad: np.ndarray, p: int) -> np.ndarray:
    """Wrap the ``p``-pixel margins of a padded canvas onto the opposite edges (a torus).

    Works in place and returns the core region as a view.
    """
    h, w = pad.shape[0] - 2 * p, pad.shape[1] - 2 * p
    pad[p : 2 * p] += pad[h + p :]
    pad[h : h + p] += pad[:p]
    rows = pad[p : h + p]
    rows[:, p : 2 * p] += rows[:, w + p :]
    rows[:, w : w + p] += rows[:, :p]
    return rows[:, p : w + p]


def _choose_kinds(rng: np.random.Generator, n: int) -> list[str]:
    kinds = list(WBC_KINDS[: min(n, len(WBC_KINDS))])  # every kind shows up when n >= 4
    kinds += list(rng.choice(WBC_KINDS, size=n - len(kinds), p=_KIND_WEIGHTS))
    rng.shuffle(kinds)
    return [str(k) for k in kinds]


def render_smear(
    rng: np.random.Generator,
    height: int,
    width: int,
    px_per_um: float,
    n_wbc: int,
    rbc_cover: float = 0.6,
) -> tuple[np.ndarray, list[PlacedCell]]:
    """Render an RGB uint8 smear of ``height`` x ``width`` and list its white cells.

    White cells sit on a jittered grid of about ``n_wbc`` slots (rounded to fill the grid),
    so every field of view tends to show one or two.
    """
    nx = max(1, round(math.sqrt(n_wbc * width / height))) if n_wbc > 0 else 0
    ny = max(1, round(n_wbc / nx)) if nx else 0
    wbcs = [(k, *wbc_sprite(rng, k, px_per_um)) for k in _choose_kinds(rng, nx * ny)]
    rbc_r = RBC_DIAMETER_UM / 2 * px_per_um
    variants = [rbc_sprite(rng, rbc_r * rng.uniform(0.9, 1.1)) for _ in range(32)]
    pad = max([s.shape[0] for s in variants] + [s.shape[0] for _, s, _ in wbcs]) // 2 + 2
    if 2 * pad >= min(height, width):
        raise ValueError(f"canvas {width}x{height} is too small for cells at {px_per_um} px/µm")
    od = np.zeros((height + 2 * pad, width + 2 * pad, 3), np.float32)

    def stamp(sprite: np.ndarray, cx: float, cy: float) -> tuple[int, int]:
        s = sprite.shape[0]
        x0, y0 = round(cx) - s // 2, round(cy) - s // 2
        od[y0 + pad : y0 + pad + s, x0 + pad : x0 + pad + s] += sprite
        return x0, y0

    xs, ys, rs, fs = [], [], [], []
    placed: list[PlacedCell] = []
    for i, (kind, sprite, (bx0, by0, bx1, by1)) in enumerate(wbcs):
        gx, gy = i % nx, i // nx
        cx = (gx + 0.5 + rng.uniform(-0.3, 0.3)) * width / nx
        cy = (gy + 0.5 + rng.uniform(-0.3, 0.3)) * height / ny
        x0, y0 = stamp(sprite, cx, cy)
        placed.append(PlacedCell(cx, cy, kind, (x0 + bx0, y0 + by0, x0 + bx1, y0 + by1)))
        xs.append(cx)
        ys.append(cy)
        rs.append((bx1 - bx0) / 2)
        fs.append(0.95)

    # Red cells by dart throwing on the torus: rims may overlap a little, never a white cell.
    target = int(rbc_cover * height * width / (math.pi * rbc_r**2))
    cand = rng.uniform(0, 1, size=(target * 4, 2)) * (width, height)
    pick = rng.integers(0, len(variants), size=len(cand))
    flips = rng.integers(0, 8, size=len(cand))
    X, Y, R, F = (np.array(v, np.float64) for v in (xs, ys, rs, fs))
    X, Y, R, F = (np.resize(v, len(v) + target) for v in (X, Y, R, F))
    n, count = len(xs), 0
    for (cx, cy), vi, fl in zip(cand, pick, flips, strict=True):
        if count >= target:
            break
        sprite = variants[vi]
        r = (sprite.shape[0] - 1) / 2.2
        dx = np.abs(X[:n] - cx)
        dy = np.abs(Y[:n] - cy)
        dx, dy = np.minimum(dx, width - dx), np.minimum(dy, height - dy)
        if np.any(dx * dx + dy * dy < (F[:n] * (R[:n] + r)) ** 2):
            continue
        if fl & 1:
            sprite = sprite[::-1]
        if fl & 2:
            sprite = sprite[:, ::-1]
        if fl & 4:
            sprite = sprite.transpose(1, 0, 2)
        stamp(sprite, cx, cy)
        X[n], Y[n], R[n], F[n] = cx, cy, r, 0.8
        n, count = n + 1, count + 1

    total = _fold(od, pad)
    total += _periodic_background(rng, height, width)[..., None] * _OD_BG
    np.negative(total, out=total)
    rgb = np.asarray(cv2.exp(total), dtype=np.float32)
    rgb *= _ILLUM  # I0 * exp(-OD), channel by channel
    return cv2.convertScaleAbs(rgb), placed  # rounds and saturates to uint8
