"""Reading images and listing inputs, with one-line errors for files that cannot be used."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app.core.errors import InputError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".pnm", ".ppm", ".pgm"}
)
VIDEO_EXTENSIONS = frozenset({".avi", ".mp4", ".mov", ".mkv", ".m4v", ".wmv", ".mpg", ".mpeg"})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def natural_key(path: Path) -> list[Any]:
    """Sort key that puts ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (hidden files ignored)."""
    files = [
        p
        for p in Path(folder).iterdir()
        if p.is_file() and is_image(p) and not p.name.startswith(".")
    ]
    return sorted(files, key=natural_key)


def to_rgb(decoded: np.ndarray) -> np.ndarray:
    """An OpenCV-decoded image (BGR, BGRA or grey) as RGB."""
    if decoded.ndim == 2:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


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
    return to_rgb(img)


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their images and videos (sorted, not recursive).

    A path that does not exist is kept, so the caller reports it in one line and goes on.
    """
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            media = sorted(
                (f for f in p.iterdir() if f.is_file() and (is_image(f) or is_video(f))),
                key=natural_key,
            )
            out.extend(media or [p])  # an empty folder is reported by the reader
        else:
            out.append(p)
    return out
