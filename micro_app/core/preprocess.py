"""Image preprocessing as the thesis describes it, one pure function per step.

The nucleus chain: resize to a working width, 3x3 median filter, 3x3 sharpening,
RGB -> HSV, then ``cv2.inRange`` between adjustable lower/upper HSV bounds (the GUI's
sliders). ``normalise`` turns a uint8 batch into a model's float input.

All images are RGB uint8 ``(H, W, 3)``; HSV uses OpenCV's ranges (H 0-179, S and V 0-255).

Default HSV bounds, measured on ``../shared/data``: stained nuclei are blue-violet,
OpenCV hue 120-150 in the BCCD fields and 130-150 in the May-Grünwald-Giemsa PBC crops,
and strongly saturated, while background, red cells and cytoplasm stay below S ~60 or
have a red/orange hue. Hue 115-160, S >= 70, V >= 40 (V is left open above: BCCD nuclei
are bright, V 170-230, PBC nuclei dark, V 120-160; V < 40 is dust, where hue means
nothing). Through this chain at full size it selects 38% of the pixels inside the BCCD WBC
boxes (the nucleus part of each box) and 0.29% of the pixels outside them, 62% of which
lie in platelet boxes (removed later by size). Recall and false positives stay flat for a
lower S bound anywhere in 50-100 on BCCD and PBC, so 70 sits mid-plateau.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from micro_app.core.errors import SettingsError
from micro_app.core.typed import known_keys_only

HSV = tuple[int, int, int]
_HSV_MAX = (179, 255, 255)
SHARPEN_KERNEL = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float32)
NORMALISATIONS = ("none", "unit", "symmetric", "imagenet")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_hsv(name: str, value: object) -> HSV:
    if not isinstance(value, (tuple, list)) or len(value) != 3 or not all(map(_is_int, value)):
        raise SettingsError(f"{name} must be three integers (H, S, V), got {value!r}")
    for channel, v, top in zip("HSV", value, _HSV_MAX, strict=True):
        if not 0 <= v <= top:
            raise SettingsError(f"{name} {channel} must be 0..{top}, got {v} in {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


@dataclass(frozen=True)
class PreprocessParams:
    """Settings of the nucleus-mask chain.

    ``width``: working width in pixels for the mask work (aspect kept; frames already
    narrower, and ``None``, keep their size). ``median_ksize``: odd median aperture, 1
    switches the filter off. ``sharpen``: apply the 3x3 sharpening kernel.
    ``lower_hsv``/``upper_hsv``: inclusive ``cv2.inRange`` bounds, OpenCV ranges,
    lower <= upper in every channel (no hue wrap).
    """

    width: int | None = 320
    median_ksize: int = 3
    sharpen: bool = True
    lower_hsv: HSV = (115, 70, 40)
    upper_hsv: HSV = (160, 255, 255)

    def __post_init__(self) -> None:
        if self.width is not None and (not _is_int(self.width) or not 16 <= self.width <= 8192):
            raise SettingsError(f"working width must be 16..8192 px or None, got {self.width!r}")
        k = self.median_ksize
        if not _is_int(k) or not 1 <= k <= 15 or k % 2 == 0:
            raise SettingsError(f"median kernel size must be odd, 1..15, got {k!r}")
        if not isinstance(self.sharpen, bool):
            raise SettingsError(f"sharpen must be true or false, got {self.sharpen!r}")
        lower = _check_hsv("lower HSV bound", self.lower_hsv)
        upper = _check_hsv("upper HSV bound", self.upper_hsv)
        if any(lo > hi for lo, hi in zip(lower, upper, strict=True)):
            raise SettingsError(f"lower HSV bound {lower} exceeds upper bound {upper}")
        object.__setattr__(self, "lower_hsv", lower)
        object.__setattr__(self, "upper_hsv", upper)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lower_hsv"] = list(self.lower_hsv)
        d["upper_hsv"] = list(self.upper_hsv)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessParams:
        d = known_keys_only(cls, data, "preprocess settings")
        for key in ("lower_hsv", "upper_hsv"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        return cls(**d)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {getattr(image, 'dtype', type(image))}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")


def resize(image: np.ndarray, width: int | None) -> np.ndarray:
    """Scale to ``width`` pixels wide, keeping the aspect ratio; ``None`` returns it unchanged."""
    h, w = image.shape[:2]
    if width is None or width == w:
        return image
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    height = max(1, round(h * width / w))
    interp = cv2.INTER_AREA if width < w else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def median(image: np.ndarray, ksize: int = 3) -> np.ndarray:
    """Median filter with an odd ``ksize`` x ``ksize`` aperture (removes salt-and-pepper noise)."""
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"median kernel size must be odd and positive, got {ksize}")
    return image.copy() if ksize == 1 else cv2.medianBlur(image, ksize)


def sharpen(image: np.ndarray) -> np.ndarray:
    """3x3 sharpening (centre 5, 4-neighbours -1), saturated to uint8."""
    return cv2.filter2D(image, -1, SHARPEN_KERNEL, borderType=cv2.BORDER_REFLECT)


def to_hsv(image_rgb: np.ndarray) -> np.ndarray:
    """RGB -> HSV with OpenCV's ranges: H 0-179, S 0-255, V 0-255."""
    _check_image(image_rgb)
    return cv2.cvtColor(image_rgb, cv2.COLOR_RGB2HSV)


def threshold(hsv: np.ndarray, lower: HSV, upper: HSV) -> np.ndarray:
    """uint8 mask, 255 where every channel lies in ``[lower, upper]`` (both bounds inclusive)."""
    return cv2.inRange(hsv, np.array(lower, np.uint8), np.array(upper, np.uint8))


def working_mask(image_rgb: np.ndarray, params: PreprocessParams) -> np.ndarray:
    """The nucleus mask at the working width (frames are only shrunk), before any clean-up."""
    _check_image(image_rgb)
    w = image_rgb.shape[1]
    img = resize(image_rgb, params.width if params.width is not None and params.width < w else None)
    if params.median_ksize > 1:
        img = median(img, params.median_ksize)
    if params.sharpen:
        img = sharpen(img)
    return threshold(to_hsv(img), params.lower_hsv, params.upper_hsv)


def nucleus_mask(image_rgb: np.ndarray, params: PreprocessParams) -> np.ndarray:
    """The thesis chain; returns a 0/255 uint8 mask of the input image's size."""
    mask = working_mask(image_rgb, params)
    h, w = image_rgb.shape[:2]
    if mask.shape != (h, w):
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return mask


def normalise(batch: np.ndarray, mode: str) -> np.ndarray:
    """uint8 images -> float32 model input.

    ``none``: 0..255 as floats; ``unit``: x/255; ``symmetric``: x/127.5 - 1 (MobileNet);
    ``imagenet``: x/255, then per-channel (RGB) ImageNet mean and std.
    """
    if mode not in NORMALISATIONS:
        valid = ", ".join(NORMALISATIONS)
        raise ValueError(f"unknown normalisation {mode!r}; valid modes are {valid}")
    x = np.asarray(batch).astype(np.float32)
    if mode == "unit":
        x /= 255.0
    elif mode == "symmetric":
        x = x / 127.5 - 1.0
    elif mode == "imagenet":
        if x.shape[-1] != 3:
            raise ValueError(f"imagenet normalisation needs 3 channels last, got shape {x.shape}")
        x = (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return x
