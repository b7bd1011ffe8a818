"""The cameras this computer has, named where the OS says so (sysfs on Linux,
``system_profiler`` on macOS, PowerShell on Windows), else found by opening indices."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

from micro_app.core.sources.opencv_camera import _quiet_opencv, backend_name, backends_for

log = logging.getLogger("micro_app")
SYS_VIDEO4LINUX = Path("/sys/class/video4linux")


@dataclass(frozen=True)
class CameraInfo:
    index: int
    name: str
    backend: str


def _run(cmd: list[str], timeout: float) -> str:
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=True, creationflags=flags
    )
    return done.stdout


def _linux_cameras(root: Path = SYS_VIDEO4LINUX) -> list[tuple[int, str]] | None:
    """Capture nodes from sysfs (``index`` 0; metadata nodes are skipped); None if no sysfs."""
    if not root.is_dir():
        return None
    found = []
    for node in root.glob("video*"):
        match = re.fullmatch(r"video(\d+)", node.name)
        if not match:
            continue
        try:
            if int((node / "index").read_text().strip() or 0) != 0:
                continue
            name = (node / "name").read_text().strip()
        except (OSError, ValueError):
            continue
        found.append((int(match.group(1)), name or f"Camera {match.group(1)}"))
    return sorted(found)


def _mac_names() -> list[str] | None:
    if shutil.which("system_profiler") is None:
        return None
    data = json.loads(_run(["system_profiler", "SPCameraDataType", "-json"], timeout=10))
    if not isinstance(data, dict):
        return None
    entries = data.get("SPCameraDataType", [])
    return [str(d.get("_name", "Camera")) for d in entries if isinstance(d, dict)]


def _windows_names() -> list[str] | None:
    if shutil.which("powershell") is None:
        return None
    query = (
        "Get-CimInstance Win32_PnPEntity | Where-Object { $_.PNPClass -eq 'Camera' -or "
        "$_.PNPClass -eq 'Image' } | Select-Object -ExpandProperty Name"
    )
    out = _run(["powershell", "-NoProfile", "-NonInteractive", "-Command", query], timeout=10)
    return [line.strip() for line in out.splitlines() if line.strip()]


def _probe_indices(count: int, api: int) -> list[CameraInfo]:
    found = []
    with _quiet_opencv():
        for i in range(count):
            cap = cv2.VideoCapture(i, api)
            if cap.isOpened():
                found.append(CameraInfo(i, f"Camera {i}", backend_name(api)))
            cap.release()
    return found


def list_cameras(max_probe: int = 4, platform: str | None = None) -> list[CameraInfo]:
    """Cameras present, named where the OS says so; never raises.

    Linux reads sysfs; macOS asks ``system_profiler``; Windows asks PowerShell for Camera and
    Image class devices (their order usually, not always, matches OpenCV's indices). Without
    an answer, indices ``0..max_probe-1`` are opened briefly and named "Camera N" — so call
    this before a capture thread holds a camera. An empty list means no camera was found.
    """
    platform = platform or sys.platform
    api = backends_for(platform)[0]
    bname = backend_name(api)
    try:
        if platform.startswith("linux"):
            nodes = _linux_cameras()
            if nodes is not None:
                return [CameraInfo(i, n, bname) for i, n in nodes]
        else:
            names = _mac_names() if platform == "darwin" else None
            if platform.startswith("win"):
                names = _windows_names()
            if names:  # an empty answer may just mean an unusual device class: probe
                return [CameraInfo(i, n, bname) for i, n in enumerate(names)]
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        log.info("could not ask the OS for camera names (%s); probing indices instead", exc)
    try:
        return _probe_indices(max_probe, api)
    except cv2.error as exc:
        log.warning("probing for cameras failed: %s", exc)
        return []
