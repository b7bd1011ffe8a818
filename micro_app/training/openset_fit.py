"""Fit the open-set check (``core.openset``) of a trained package: the training split's
penultimate features give the class means and covariance, the validation split's scores
the threshold. Written beside the weights as ``openset.npz``, recorded in the card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.models.architectures import feature_extractor
from micro_app.core.models.card import CARD_FILE
from micro_app.core.models.package import load_package
from micro_app.core.openset import DEFAULT_PERCENTILE, OPENSET_FILE, OpenSetStats, card_entry
from micro_app.training.pipeline import predict_features


def package_features(folder: Path, images: np.ndarray) -> np.ndarray:
    """Penultimate features of ``images`` (uint8 at the input size) through the package."""
    pkg = load_package(folder)
    return predict_features(feature_extractor(pkg.model), images, pkg.card).reshape(len(images), -1)


def fit_open_set(
    folder: Path,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    percentile: float = DEFAULT_PERCENTILE,
    say: Callable[[str], None] = print,
) -> dict[str, Any] | None:
    pkg = load_package(folder)
    if pkg.head is not None or pkg.card.scope != "cell" or len(val_images) < 10:
        return None
    n = len(pkg.card.classes)
    stats = OpenSetStats.fit(package_features(folder, train_images), train_labels, n)
    val_feats = package_features(folder, val_images)
    stats = stats.with_threshold(val_feats, percentile)
    path = stats.save(Path(folder) / OPENSET_FILE)
    flagged = float(np.mean(stats.flags(val_feats)))
    entry = card_entry(stats, path, percentile=percentile, validation_flagged=round(flagged, 4))
    card = pkg.card
    atomic_write_json(
        Path(folder) / CARD_FILE, replace(card, extra=dict(card.extra, open_set=entry)).to_dict()
    )
    say(
        f"open-set check: {entry['dims']} feature dimensions, threshold {entry['threshold']} "
        f"(flags {flagged:.1%} of validation cells)"
    )
    return entry
