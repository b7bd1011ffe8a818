"""Is this input like the model's training images? A check that needs no labels.

Each crop (or field) is described by a few numbers that a different stain, camera, lamp
or magnification changes: its L*a*b* colour mean and spread, the colour of its darkest
fifth (the stained nucleus), and the share of its pixels in the nucleus mask (a scale
that does not match the training cells changes it). The model card stores their mean,
spread and (shrunk) covariance over the training images; the score is the Mahalanobis
distance, which also catches a combination of numbers that is off while each one alone
is within its range. The threshold is a high percentile of the validation images' scores.
A crop whose score passes the threshold is "unlike the training data"; the engine marks
it and the window says so. Pure functions.

A model trained on several sources (PBC's scanner, another lab's camera, and after set-up
this microscope's own cells) has one ``AppearanceStats`` per source (``Appearance``): one
population mixing 4,800 PBC crops with 116 BCCD ones called 92-100 % of BCCD cells unlike,
although the network was trained on them. A cell is like the training images when it is
like any one source; its score is the distance to the nearest source in units of that
source's threshold (1.0 is the line).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
# a frame (or a slide) is unlike the training data when more than this share of its
# checked cells are
UNLIKE_SHARE = 0.5
SUBSAMPLE_FROM = 64  # px a side: larger images are read at every other pixel
SHRINKAGE = 0.05  # covariance pulled towards the identity, for a stable inverse
_MIN_SCALE = (1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 1.0, 0.5, 0.5, 0.005)


def features(image: np.ndarray, params: pp.PreprocessParams | None = None) -> np.ndarray:
    """The appearance numbers (``FEATURES``) of one uint8 RGB image."""
    return features_batch(image[None], params)[0]


def features_batch(images: np.ndarray, params: pp.PreprocessParams | None = None) -> np.ndarray:
    """``features`` of every image of a uint8 batch ``(N, H, W, 3)``: the colour conversions
    run once on the whole batch (stacked); the means, spreads and dark-fifth means are
    matrix products in float32 (a live frame's 20 crops: 7 ms, against 35 ms for numpy's
    float64 reductions; the numbers differ by less than 1e-4). Images of at least
    ``SUBSAMPLE_FROM`` pixels a side are read at every other pixel, as the numbers are
    area statistics: on 800 PBC test crops of 128 px the scores moved by 0.003 (median;
    1.0 is the line) and no cell changed side, for a quarter of the time (2 ms)."""
    if len(images) == 0:
        return np.zeros((0, len(FEATURES)))
    if min(images.shape[1:3]) >= SUBSAMPLE_FROM:
        images = images[:, ::2, ::2]
    n, h, w = images.shape[:3]
    npx = h * w
    stacked = np.ascontiguousarray(images).reshape(n * h, w, 3)
    lab = to_lab(stacked).reshape(n, npx, 3)
    lightness = lab[:, :, 0]
    k = int(0.2 * (npx - 1))  # the 20th percentile's rank: the same pixels as np.percentile
    cut = np.partition(lightness, k, axis=1)[:, k]
    dark = (lightness <= cut[:, None]).astype(np.float32)[:, None, :]
    ones = np.ones((n, 1, npx), np.float32)
    sums = np.matmul(np.concatenate([ones, dark], axis=1), lab).astype(np.float64)
    mean = sums[:, 0] / npx
    dark_mean = sums[:, 1] / dark.sum(axis=2, dtype=np.float64)
    centred = lab - mean[:, None, :].astype(np.float32)
    std = np.sqrt(np.matmul(ones, centred * centred)[:, 0].astype(np.float64) / npx)
    p = params or pp.PreprocessParams()
    mask = pp.threshold(pp.to_hsv(stacked), p.lower_hsv, p.upper_hsv).reshape(n, npx)
    share = np.count_nonzero(mask, axis=1) / npx
    return np.concatenate([mean, std, dark_mean, share[:, None]], axis=1)


@dataclass(frozen=True)
class AppearanceStats:
    """What the training images looked like, and how far from it is too far."""

    center: tuple[float, ...]
    scale: tuple[float, ...]
    precision: tuple[tuple[float, ...], ...]  # inverse correlation (shrunk), standardised units
    threshold: float
    n_images: int

    def __post_init__(self) -> None:
        n = len(FEATURES)
        if len(self.center) != n or len(self.scale) != n:
            raise ValueError(f"appearance stats need {n} centres and scales")
        if len(self.precision) != n or any(len(r) != n for r in self.precision):
            raise ValueError(f"appearance precision must be {n}x{n}")
        if min(self.scale) <= 0 or not self.threshold > 0:
            raise ValueError("appearance scales and threshold must be positive")

    @classmethod
    def fit(
        cls,
        train_features: np.ndarray,
        val_features: np.ndarray | None = None,
    ) -> AppearanceStats:
        """Mean, spread and shrunk correlation of the training images; the threshold is
        the 99th percentile of the validation images' scores (the training images' when
        there is no validation split)."""
        f = np.asarray(train_features, np.float64)
        if len(f) < 2:
            raise ValueError("appearance statistics need at least 2 training images")
        center = f.mean(axis=0)
        scale = np.maximum(f.std(axis=0), _MIN_SCALE)
        z = (f - center) / scale
        corr = np.cov(z.T) if len(f) > 2 else np.eye(len(FEATURES))
        corr = (1 - SHRINKAGE) * corr + SHRINKAGE * np.eye(len(FEATURES))
        prec = np.linalg.inv(corr)
        probe = cls(_tup(center), _tup(scale), tuple(_tup(r) for r in prec), 1.0, len(f))
        ref = f if val_features is None or len(val_features) == 0 else val_features
        threshold = float(np.percentile(probe.scores(ref), THRESHOLD_PERCENTILE))
        return replace(probe, threshold=max(threshold, 1e-6))

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row per feature (about 1 for training images)."""
        z = (np.asarray(feats, np.float64) - np.asarray(self.center)) / np.asarray(self.scale)
        d2 = np.einsum("...i,ij,...j->...", z, np.asarray(self.precision), z)
        return np.sqrt(np.maximum(d2, 0.0) / len(FEATURES))

    def is_unlike(self, score: float) -> bool:
        return score > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "center": [round(v, 6) for v in self.center],
            "scale": [round(v, 6) for v in self.scale],
            "precision": [[round(v, 6) for v in r] for r in self.precision],
            "threshold": round(self.threshold, 6),
            "threshold_rule": f"{THRESHOLD_PERCENTILE:g}th percentile of validation scores",
            "n_images": self.n_images,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppearanceStats:
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError("appearance features differ from this app's: retrain the model")
        return cls(
            _tup(data["center"]),
            _tup(data["scale"]),
            tuple(_tup(r) for r in data["precision"]),
            float(data["threshold"]),
            int(data["n_images"]),
        )


TRAINING_IMAGES = "training images"  # the one source of a card from before sources


@dataclass(frozen=True)
class Appearance:
    """The training sources of a model, each with its own statistics; a cell is like the
    training images when it is within the threshold of at least one of them."""

    sources: tuple[tuple[str, AppearanceStats], ...]
    threshold: float = 1.0  # scores are in units of each source's own threshold

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("appearance needs at least one training source")
        names = [n for n, _ in self.sources]
        if len(set(names)) != len(names) or not all(n.strip() for n in names):
            raise ValueError(f"appearance source names must be distinct and named: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.sources)

    def per_source(self, feats: np.ndarray) -> np.ndarray:
        """``(N, S)``: each row's score against each source, in units of its threshold."""
        f = np.asarray(feats, np.float64).reshape(-1, len(FEATURES))
        return np.stack([st.scores(f) / st.threshold for _, st in self.sources], axis=1)

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """Distance to the nearest source (above 1.0: unlike every source)."""
        return self.per_source(feats).min(axis=1)

    def is_unlike(self, score: float) -> bool:
        return score > self.threshold

    def shares(self, feats: np.ndarray) -> dict[str, float]:
        """Per source, the share of rows within its threshold (and ``unlike``: of none)."""
        if not len(feats):
            return {}
        ps = self.per_source(feats)
        out = {n: round(float(np.mean(ps[:, i] <= 1.0)), 4) for i, n in enumerate(self.names)}
        out["unlike"] = round(float(np.mean(ps.min(axis=1) > 1.0)), 4)
        return out

    def with_source(self, name: str, stats: AppearanceStats) -> Appearance:
        """This appearance with ``name`` added, or replaced when it is there already (the
        same microscope set up again)."""
        kept = tuple((n, st) for n, st in self.sources if n != name)
        return replace(self, sources=(*kept, (name, stats)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": "like the training images when within the threshold of any one source",
            "sources": [{"name": n, **st.to_dict()} for n, st in self.sources],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Appearance:
        """The card's ``appearance``: per source, or (older cards) one population."""
        if "sources" not in data:
            return cls(((TRAINING_IMAGES, AppearanceStats.from_dict(data)),))
        items = data["sources"]
        if not isinstance(items, list):
            raise ValueError("appearance 'sources' must be a list")
        return cls(tuple((str(d["name"]), AppearanceStats.from_dict(d)) for d in items))

    @classmethod
    def single(cls, name: str, stats: AppearanceStats) -> Appearance:
        return cls(((name, stats),))


def fit_source(feats: np.ndarray, seed: int = 0) -> AppearanceStats:
    """One source's statistics from its cells alone (no validation split): fitted on two
    thirds, the threshold from the other third (all of them when fewer than 30)."""
    feats = np.asarray(feats, np.float64)
    if len(feats) < 30:
        return AppearanceStats.fit(feats)
    order = np.random.default_rng(seed).permutation(len(feats))
    cut = (2 * len(feats)) // 3
    return AppearanceStats.fit(feats[order[:cut]], feats[order[cut:]])


def _tup(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def unlike_message(share: float, field: bool = False) -> str:
    """The one line the window and sidecars show when input is unlike the training data."""
    what = "the field looks" if field else f"{share:.0%} of the cells look"
    return (
        f"{what} unlike the model's training images (stain, camera, "
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
