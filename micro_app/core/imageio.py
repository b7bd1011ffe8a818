"""Reading images and listing inputs, with one-line errors for files that cannot be used."""

from __future__ import annotations

import io
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


# Decoding is bounded before it happens: an image above this many pixels is refused (or,
# for JPEG, decoded at a half, quarter or eighth of its size), so no input needs more than
# about 1.5 GB: 80 MP x 3 bytes, the 16-bit copy, the RGB conversion and the work copies.
MAX_PIXELS = 80_000_000


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` read from the header of a PNG, JPEG, BMP or TIFF, without
    decoding it; None when the header is not one of these (OpenCV then decides)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"BM" and len(data) >= 26:
        return int.from_bytes(data[18:22], "little", signed=True), abs(
            int.from_bytes(data[22:26], "little", signed=True)
        )
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (
                0xC0,
                0xC1,
                0xC2,
                0xC3,
                0xC5,
                0xC6,
                0xC7,
                0xC9,
                0xCA,
                0xCB,
                0xCD,
                0xCE,
                0xCF,
            ):
                h = int.from_bytes(data[i + 5 : i + 7], "big")
                w = int.from_bytes(data[i + 7 : i + 9], "big")
                return w, h
            i += 2 + length
        return None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        try:
            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                shape = tif.pages[0].shape
                return int(shape[1]), int(shape[0])
        except Exception:  # a malformed TIFF: OpenCV reports it in one line
            return None
    return None


def read_image_rgb(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file as RGB uint8 ``(H, W, 3)``; grey and 16-bit images are converted. An
    image above ``max_pixels`` is refused before it is decoded (a JPEG is decoded smaller)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} holds no images or videos: choose a folder of images")
    if not path.is_file():
        raise InputError(f"{path} does not exist: check the path")
    data = np.fromfile(str(path), dtype=np.uint8)  # works with non-ASCII paths on Windows
    size = image_size(data[:65536].tobytes()) if data.size else None
    flags = cv2.IMREAD_UNCHANGED
    if size is not None and size[0] * size[1] > max_pixels:
        w, h = size
        if data[:2].tobytes() != b"\xff\xd8":
            raise InputError(
                f"{path} is {w}x{h} ({w * h / 1e6:.0f} MP), above the {max_pixels / 1e6:.0f} MP "
                "this app decodes: save a smaller copy"
            )
        for factor, reduced in (
            (2, cv2.IMREAD_REDUCED_COLOR_2),
            (4, cv2.IMREAD_REDUCED_COLOR_4),
            (8, cv2.IMREAD_REDUCED_COLOR_8),
        ):
            if w * h / factor**2 <= max_pixels:
                flags = reduced
                break
        else:
            raise InputError(
                f"{path} is {w}x{h}, too large even at an eighth of its size: save a smaller copy"
            )
    try:
        img = cv2.imdecode(data, flags) if data.size else None
    except cv2.error as exc:  # OpenCV's own limits (CV_IO_MAX_IMAGE_PIXELS, ...)
        raise InputError(f"{path} cannot be decoded ({str(exc).strip()[:120]})") from exc
    if img is None:
        raise InputError(f"{path} is not a readable image: export it as PNG, JPEG or TIFF")
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{path} has pixel type {img.dtype}: convert it to 8-bit RGB")
    return to_rgb(img)


def tiff_pages(path: Path) -> int:
    """How many images a TIFF holds (1 for every other file)."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return 1
    try:
        import tifffile

        with tifffile.TiffFile(str(path)) as tif:
            return len(tif.pages)
    except Exception:
        return 1


def read_tiff_page(path: Path, index: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Page ``index`` of a multi-page TIFF as RGB uint8."""
    import tifffile

    with tifffile.TiffFile(str(path)) as tif:
        page = tif.pages[index]
        h, w = page.shape[:2]
        if h * w > max_pixels:
            raise InputError(f"{path} page {index + 1} is {w}x{h}: save a smaller copy")
        img = page.asarray()
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    if img.dtype != np.uint8:
        raise InputError(f"{path} page {index + 1} has pixel type {img.dtype}: convert to 8-bit")
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their images and videos (sorted, not recursive).

    A path that does not exist is kept, so the caller reports it in one line and goes on.
    """
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        try:
            if p.is_dir():
                media = sorted(
                    (f for f in p.iterdir() if f.is_file() and (is_image(f) or is_video(f))),
                    key=natural_key,
                )
                out.extend(media or [p])  # an empty folder is reported by the reader
                continue
        except OSError:  # a symbolic link loop, a folder that cannot be listed
            pass  # kept as it is: the reader says in one line what is wrong with it
        out.append(p)
    return out
