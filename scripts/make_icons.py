"""Draw the app icon (a stained white cell in a microscope's round field of view) at the
sizes the installers need: resources/icons/micro_app_<n>.png and micro_app.ico (PNG-based
ICO, which Windows reads since Vista).

    .venv/bin/python scripts/make_icons.py
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def draw(n: int) -> np.ndarray:
    s = 4 * n  # drawn large, then reduced: smooth edges
    img = np.zeros((s, s, 4), np.uint8)
    c = s // 2
    cv2.circle(img, (c, c), int(0.47 * s), (60, 40, 30, 255), -1, cv2.LINE_AA)  # dark rim
    cv2.circle(img, (c, c), int(0.43 * s), (232, 226, 250, 255), -1, cv2.LINE_AA)  # field
    for dx, dy in ((-0.28, -0.2), (0.27, 0.22), (-0.2, 0.27), (0.24, -0.26)):  # red cells
        cv2.circle(
            img,
            (int(c + dx * s), int(c + dy * s)),
            int(0.1 * s),
            (170, 150, 235, 255),
            -1,
            cv2.LINE_AA,
        )
    cv2.circle(img, (c, c), int(0.2 * s), (225, 190, 215, 255), -1, cv2.LINE_AA)  # cytoplasm
    for dx, dy, r in ((-0.07, -0.03, 0.075), (0.05, -0.06, 0.07), (0.04, 0.07, 0.075)):  # lobes
        cv2.circle(
            img, (int(c + dx * s), int(c + dy * s)), int(r * s), (150, 50, 95, 255), -1, cv2.LINE_AA
        )
    return cv2.resize(img, (n, n), interpolation=cv2.INTER_AREA)


def write_ico(path: Path, pngs: list[tuple[int, bytes]]) -> None:
    head = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    entries, data = b"", b""
    for n, png in pngs:
        size = 0 if n >= 256 else n
        entries += struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), offset + len(data))
        data += png
    path.write_bytes(head + entries + data)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    pngs = []
    for n in SIZES:
        ok, buf = cv2.imencode(".png", draw(n))
        assert ok
        (OUT / f"micro_app_{n}.png").write_bytes(buf.tobytes())
        if n <= 256:
            pngs.append((n, buf.tobytes()))
    write_ico(OUT / "micro_app.ico", pngs)
    print(f"icons -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
