"""What the window draws for a classified frame, as pure functions: the image (with the
nucleus mask and the scale bar when asked), the boxes and labels (vector items, see
``overlay_items``)."""

from __future__ import annotations

import numpy as np

from micro_app.core.overlay import cell_text, class_colour, draw_scale_bar
from micro_app.core.session import LiveUpdate
from micro_app.gui.overlay_items import DrawnCell

MASK_GREEN = np.array([0, 255, 0])


def frame_image(u: LiveUpdate, overlay: bool, mask: bool) -> np.ndarray:
    """The frame as shown: the camera's pixels, tinted where the nucleus mask is (``mask``)
    and with a scale bar when the objective is calibrated (both only with ``overlay``)."""
    image = u.frame.image
    r = u.result
    if overlay and mask and r.mask is not None and r.mask.shape[:2] == image.shape[:2]:
        image = image.copy()
        sel = r.mask > 0
        image[sel] = (0.55 * image[sel] + 0.45 * MASK_GREEN).astype(np.uint8)
    if overlay and r.scale_source == "calibrated":
        image = image.copy() if image is u.frame.image else image
        draw_scale_bar(image, r.um_per_px)
    return image


def drawn_cells(u: LiveUpdate, selected: int | None) -> list[DrawnCell]:
    """One box and label per cell. A counted cell shows its label on the slide (its vote
    over frames, or the reviewer's correction): the differential counts exactly that. A
    cell not yet counted shows this frame's label and confidence; a provisional one (unlike
    the training images) a question mark instead, and a dashed box."""
    classes = u.result.model["classes"] if u.result.model else None
    out = []
    for i, (cell, label) in enumerate(zip(u.result.cells, u.labels, strict=True)):
        text = cell_text(label, cell.confidence, provisional=cell.provisional, counted=u.counted[i])
        b = cell.box
        out.append(
            DrawnCell(
                (b.x0, b.y0, b.x1, b.y1),
                text,
                class_colour(label, classes),
                selected=selected == i,
                provisional=cell.provisional,
            )
        )
    return out
