"""Stain and colour normalisation, the same in training and in the app.

Reinhard et al. (2001), "Color transfer between images": each image's per-channel mean
and standard deviation in CIE L*a*b* are matched to a reference (the training images'
averages, stored in the model card). A crop from another lab's stain, camera or lamp
comes out with the training images' colour statistics; the cell's shape and texture,
which carry the class, are untouched. Pure functions on uint8 RGB images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

STAIN_MODES = ("none", "reinhard")
_MIN_STD = 1.0  # L*a*b* units; keeps a flat image from being blown up


@dataclass(frozen=True)
class StainReference:
    """Target L*a*b* mean and standard deviation (L 0..100, a and b about -128..127)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("a stain reference needs 3 means and 3 standard deviations")
        if any(not np.isfinite(v) for v in (*self.mean, *self.std)) or min(self.std) <= 0:
            raise ValueError(f"stain reference has invalid values: {self.mean}, {self.std}")

    def to_dict(self) -> dict[str, Any]:
        return {"mean": [round(v, 4) for v in self.mean], "std": [round(v, 4) for v in self.std]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StainReference:
        m, s = data["mean"], data["std"]
        return cls((float(m[0]), float(m[1]), float(m[2])), (float(s[0]), float(s[1]), float(s[2])))

    @classmethod
    def from_images(cls, images: np.ndarray) -> StainReference:
        """The average per-image statistics of a set of uint8 RGB images ``(N, H, W, 3)``."""
        if len(images) == 0:
            raise ValueError("no images to take a stain reference from")
        stats = np.array([lab_stats(img) for img in images])  # (N, 2, 3)
        mean, std = stats[:, 0].mean(axis=0), stats[:, 1].mean(axis=0)
        return cls(
            (float(mean[0]), float(mean[1]), float(mean[2])),
            (float(std[0]), float(std[1]), float(std[2])),
        )


def to_lab(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 L*a*b* (L 0..100)."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def lab_stats(image: np.ndarray) -> np.ndarray:
    """``[[mean L, a, b], [std L, a, b]]`` of a uint8 RGB image."""
    lab = to_lab(image).reshape(-1, 3)
    return np.stack([lab.mean(axis=0), lab.std(axis=0)])


def reinhard(image: np.ndarray, ref: StainReference) -> np.ndarray:
    """uint8 RGB image with its L*a*b* mean and std matched to ``ref``."""
    lab = to_lab(image)
    flat = lab.reshape(-1, 3)
    mean, std = flat.mean(axis=0), np.maximum(flat.std(axis=0), _MIN_STD)
    out = (lab - mean) / std * np.asarray(ref.std, np.float32) + np.asarray(ref.mean, np.float32)
    out[..., 0] = np.clip(out[..., 0], 0.0, 100.0)
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def normalise_stain(images: np.ndarray, mode: str, ref: StainReference | None) -> np.ndarray:
    """Apply ``mode`` to each image of a uint8 RGB batch ``(N, H, W, 3)``."""
    if mode not in STAIN_MODES:
        raise ValueError(f"unknown stain normalisation {mode!r}; valid: {', '.join(STAIN_MODES)}")
    if mode == "none":
        return images
    if ref is None:
        raise ValueError("reinhard stain normalisation needs a reference: retrain the model")
    return np.stack([reinhard(img, ref) for img in images]) if len(images) else images
