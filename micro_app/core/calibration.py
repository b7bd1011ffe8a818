"""Micrometres per pixel from a line of known length drawn on a stage-micrometer image."""

from __future__ import annotations

import math

from micro_app.core.errors import SettingsError


def um_per_px_from_line(
    p0: tuple[float, float], p1: tuple[float, float], length_um: float
) -> float:
    """Scale from a line between two image points that spans ``length_um`` micrometres."""
    if not (length_um > 0 and math.isfinite(length_um)):
        raise SettingsError(f"the known length must be a positive number of µm, got {length_um}")
    px = math.dist(p0, p1)
    if px < 10:
        raise SettingsError(
            f"the line is only {px:.1f} px long: draw it along a longer stretch of the scale"
        )
    return length_um / px
