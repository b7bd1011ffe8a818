"""The frame's scale from its red cells: a red cell of a dried smear is about 7.5 µm across.

``estimate_um_per_px`` is the ruler ``locate.locate_cells`` uses when no calibration is
given; ``None`` when the red cells give no reliable one.
"""

from __future__ import annotations

import cv2
import numpy as np

RBC_DIAMETER_UM = 7.5  # mean red-cell diameter in a dried smear
SCALE_WORK_WIDTH = 320  # the red-cell ruler is measured at this width at most
MIN_SIDE = 16  # pixels; a frame narrower than this (or 50 times longer than wide) holds no cell


def estimate_um_per_px(image_rgb: np.ndarray) -> float | None:
    """µm per pixel from the red cells of the field, or ``None`` if they give no reliable ruler.

    Measured at a working width of 320 px (see ``_red_cell_radius``). Cells under 20 px
    across there are beyond its reach, so when that gives nothing or such small cells, it is
    measured again at twice the width and kept only if the cells are small there too (under
    50 px across, 25 at the first width).
    """
    h, w = image_rgb.shape[:2]
    if min(h, w) < MIN_SIDE or max(h, w) > 50 * min(h, w):
        return None  # a sliver of an image holds no red cells to measure
    for width in (SCALE_WORK_WIDTH, 2 * SCALE_WORK_WIDTH):
        f = min(1.0, width / w)
        small = (
            image_rgb
            if f == 1.0
            else cv2.resize(image_rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        )
        radius = _red_cell_radius(small)
        if width > SCALE_WORK_WIDTH and radius is not None and radius >= 25:
            return None  # large cells, which the first pass found unreliable
        if f == 1.0 or (radius is not None and radius >= 10):
            break
    return None if radius is None else RBC_DIAMETER_UM / (2.0 * radius / f)


def _red_cell_radius(rgb: np.ndarray) -> float | None:
    """Typical red-cell radius in pixels of ``rgb``, or ``None``.

    Red cells are redder than green (R - G, Otsu threshold); a 7 px closing seals the
    rings that pale-centred cells leave; holes are filled. Each local maximum of the
    distance transform is the inscribed radius of one cell: peaks are taken largest first,
    each hiding the others inside its circle; peaks whose circle leaves the frame are
    skipped. Fragments and clump edges give smaller peaks, overlapping stacks larger ones,
    so the radius is the 75th percentile of the peaks that reach 0.6 x the 90th percentile.
    ``None`` when there is no red-vs-pale contrast, red covers under 15% of the field, fewer
    than 4 peaks remain, or they show no consistent size: their 25th percentile is below
    0.6 x the 75th, or the radius is over 25% off the commonest size (the radius whose
    ±15% window holds most peaks, weighted by radius; clusters merged by the closing can
    otherwise take over the upper percentiles).
    """
    rg = cv2.GaussianBlur(cv2.subtract(rgb[..., 0], rgb[..., 1]), (5, 5), 0)
    otsu, fg = cv2.threshold(rg, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if otsu < 6 or not 0.15 < np.count_nonzero(fg) / fg.size < 0.9:
        return None
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros((fg.shape[0] + 2, fg.shape[1] + 2), np.uint8)
    cv2.drawContours(filled, contours, -1, 255, -1, offset=(1, 1))
    dist = cv2.distanceTransform(filled, cv2.DIST_L2, 5)[1:-1, 1:-1]
    ys, xs = np.nonzero((dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (dist >= 3))
    order = np.argsort(-dist[ys, xs], kind="stable")
    hidden = np.zeros(dist.shape, np.uint8)
    radii = []
    hh, ww = dist.shape
    for y, x in zip(ys[order].tolist(), xs[order].tolist(), strict=True):
        if hidden[y, x]:
            continue
        r = float(dist[y, x])
        cv2.circle(hidden, (x, y), int(r), 1, -1)
        if min(x, y, ww - 1 - x, hh - 1 - y) > r + 1:
            radii.append(r)
    arr = np.array(radii)
    if len(arr) < 4:
        return None
    win = (arr[None, :] >= arr[:, None] / 1.15) & (arr[None, :] <= arr[:, None] * 1.15)
    mode = float(np.median(arr[win[int(np.argmax(win @ arr))]]))
    arr = arr[arr >= 0.6 * np.percentile(arr, 90)]
    if len(arr) < 4:
        return None
    q25, radius = np.percentile(arr, [25, 75])
    return None if q25 < 0.6 * radius or abs(radius / mode - 1) > 0.25 else float(radius)
