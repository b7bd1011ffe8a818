"""Is this input like the model's training images? A check that needs no labels.

Each crop (or field) is described by a few numbers that a different stain, camera, lamp
or magnification changes: its L*a*b* colour mean and spread, the colour of its darkest
fifth (the stained nucleus), and the share of its pixels in the nucleus mask (a scale
that does not match the training cells changes it). The model card stores the robust
centre and spread of these numbers over the training images and a threshold (a high
percentile of the validation images' scores). A crop whose score passes the threshold is
"unlike the training data"; the engine marks it and the window says so. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from micro_app.core import preprocess as pp
from micro_app.core.stain import to_lab

FEATURES = (
    "L_mean",
    "a_mean",
    "b_mean",
    "L_std",
    "a_std",
    "b_std",
    "dark_L",
    "dark_a",
    "dark_b",
    "nucleus_share",
)
THRESHOLD_PERCENTILE = 99.0
_MIN_SCALE = (1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 1.0, 0.5, 0.5, 0.005)


def features(image: np.ndarray, params: pp.PreprocessParams | None = None) -> np.ndarray:
    """The appearance numbers (``FEATURES``) of one uint8 RGB image."""
    lab = to_lab(image).reshape(-1, 3)
    mean, std = lab.mean(axis=0), lab.std(axis=0)
    lightness = lab[:, 0]
    dark = lab[lightness <= np.percentile(lightness, 20)]
    p = params or pp.PreprocessParams()
    hsv = pp.to_hsv(image)
    share = float(np.count_nonzero(pp.threshold(hsv, p.lower_hsv, p.upper_hsv))) / lightness.size
    return np.concatenate([mean, std, dark.mean(axis=0), [share]]).astype(np.float64)


def features_batch(images: np.ndarray) -> np.ndarray:
    return np.stack([features(img) for img in images]) if len(images) else np.zeros((0, 10))


@dataclass(frozen=True)
class AppearanceStats:
    """What the training images looked like, and how far from it is too far."""

    center: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float
    n_images: int
    crop_side_px: float | None = None  # training crops' median side before resizing

    def __post_init__(self) -> None:
        if len(self.center) != len(FEATURES) or len(self.scale) != len(FEATURES):
            raise ValueError(f"appearance stats need {len(FEATURES)} centres and scales")
        if not self.threshold > 0:
            raise ValueError(f"appearance threshold must be positive, got {self.threshold}")

    @classmethod
    def fit(
        cls,
        train_features: np.ndarray,
        val_features: np.ndarray | None = None,
        crop_side_px: float | None = None,
    ) -> AppearanceStats:
        """Median and scaled MAD of the training images; the threshold is the 99th
        percentile of the validation images' scores (the training images' when there is no
        validation split)."""
        f = np.asarray(train_features, np.float64)
        center = np.median(f, axis=0)
        scale = np.maximum(1.4826 * np.median(np.abs(f - center), axis=0), _MIN_SCALE)
        probe = cls(tuple(center), tuple(scale), 1.0, len(f))
        ref = f if val_features is None or len(val_features) == 0 else val_features
        threshold = float(np.percentile(probe.scores(ref), THRESHOLD_PERCENTILE))
        return cls(
            tuple(float(v) for v in center),
            tuple(float(v) for v in scale),
            max(threshold, 1e-6),
            len(f),
            crop_side_px,
        )

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """Root-mean-square robust z-score of each row: about 1 for typical training images."""
        z = (np.asarray(feats, np.float64) - np.asarray(self.center)) / np.asarray(self.scale)
        return np.sqrt(np.mean(z * z, axis=-1))

    def is_unlike(self, score: float) -> bool:
        return score > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "center": [round(v, 6) for v in self.center],
            "scale": [round(v, 6) for v in self.scale],
            "threshold": round(self.threshold, 6),
            "threshold_rule": f"{THRESHOLD_PERCENTILE:g}th percentile of validation scores",
            "n_images": self.n_images,
            "crop_side_px": self.crop_side_px,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppearanceStats:
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError("appearance features differ from this app's: retrain the model")
        return cls(
            tuple(float(v) for v in data["center"]),
            tuple(float(v) for v in data["scale"]),
            float(data["threshold"]),
            int(data["n_images"]),
            None if data.get("crop_side_px") is None else float(data["crop_side_px"]),
        )


def unlike_message(share: float) -> str:
    """The one line the window and sidecars show when input is unlike the training data."""
    return (
        f"{share:.0%} of the cells look unlike the model's training images (stain, camera, "
        "lamp or magnification differ): treat the classes with caution, check the stain and "
        "calibration, or adapt the model to this microscope"
    )


class UnlikeMonitor:
    """Smooths the per-frame check over recent frames for a calm live warning: it appears
    when the moving share of unlike cells passes ``on`` and clears below ``off``."""

    def __init__(self, alpha: float = 0.1, on: float = 0.5, off: float = 0.3) -> None:
        self.alpha, self.on, self.off = alpha, on, off
        self.share: float | None = None
        self.active = False

    def update(self, frame_share: float | None) -> str | None:
        """Feed one frame's ``unlike_share`` (None: nothing checked); the message or None."""
        if frame_share is not None:
            s = frame_share if self.share is None else self.share
            self.share = s + self.alpha * (frame_share - s)
            self.active = self.share > (self.off if self.active else self.on)
        return unlike_message(self.share) if self.active and self.share is not None else None
