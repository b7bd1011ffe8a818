"""Reading images and listing inputs, with one-line errors for files that cannot be used."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from micro_app.core.errors import InputError

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
VIDEO_EXTS = frozenset({".avi", ".mp4", ".mov", ".mkv", ".wmv", ".m4v", ".mpg", ".mpeg"})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def read_image_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 ``(H, W, 3)``; grey and 16-bit images are converted."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} holds no images or videos: choose a folder of images")
    if not path.is_file():
        raise InputError(f"{path} does not exist: check the path")
    data = np.fromfile(str(path), dtype=np.uint8)  # works with non-ASCII paths on Windows
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{path} is not a readable image: export it as PNG, JPEG or TIFF")
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{path} has pixel type {img.dtype}: convert it to 8-bit RGB")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their images and videos (sorted, not recursive).

    A path that does not exist is kept, so the caller reports it in one line and goes on.
    """
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            media = sorted(f for f in p.iterdir() if f.is_file() and (is_image(f) or is_video(f)))
            out.extend(media or [p])  # an empty folder is reported by the reader
        else:
            out.append(p)
    return out
