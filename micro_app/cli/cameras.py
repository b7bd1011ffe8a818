"""``micro-app cameras``: the cameras this computer sees, one a line."""

from __future__ import annotations

from micro_app.core.sources import list_cameras


def cmd_cameras() -> int:
    cams = list_cameras()
    if not cams:
        print("no cameras found (micro-app live --demo runs without one)")
        return 0
    for cam in cams:
        print(f"{cam.index}: {cam.name} ({cam.backend})")
    return 0
