"""Fit the open-set check (``core.openset``) of a trained package: the classifier layer's
weights turn features into logits, and the validation split's energy scores set the
threshold. Written beside the weights as ``openset.npz``, recorded in the card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.models.card import CARD_FILE
from micro_app.core.models.package import ModelPackage, load_package
from micro_app.core.openset import DEFAULT_PERCENTILE, OPENSET_FILE, OpenSetStats, card_entry
from micro_app.training.architectures import feature_extractor, head_weights
from micro_app.training.pipeline import predict_features


def package_features(folder: Path | ModelPackage, images: np.ndarray) -> np.ndarray:
    """Penultimate features of ``images`` (uint8 at the input size) through the package
    (a folder, or one already loaded with its Keras model)."""
    pkg = folder if isinstance(folder, ModelPackage) else load_package(folder)
    return predict_features(feature_extractor(pkg.model), images, pkg.card).reshape(len(images), -1)


def write_open_set(
    folder: Path,
    threshold_images: np.ndarray | list[np.ndarray],
    percentile: float,
    **extra: Any,
) -> tuple[dict[str, Any], float] | None:
    """Fit the check of the package in ``folder`` (threshold: the ``percentile`` of the
    scores of ``threshold_images``, known cells never trained on; given as several groups,
    the highest of the groups' percentiles), store it and record it in the card; the card
    entry and the share of all ``threshold_images`` flagged. None when the model has no
    classifier layer on its features (the check then stays off)."""
    groups = threshold_images if isinstance(threshold_images, list) else [threshold_images]
    pkg = load_package(folder)
    head = head_weights(pkg.model) if pkg.head is None and pkg.card.scope == "cell" else None
    if head is None or sum(len(g) for g in groups) < 10 or head[0].shape[1] < 2:
        return None
    feats = [package_features(pkg, g) for g in groups if len(g)]  # the package loaded above
    if feats[0].shape[1] != head[0].shape[0]:
        return None
    base = OpenSetStats.from_head(*head)
    stats = max((base.with_threshold(f, percentile) for f in feats), key=lambda s: s.threshold)
    path = stats.save(Path(folder) / OPENSET_FILE)
    flagged = float(np.mean(stats.flags(np.concatenate(feats))))
    shares = [round(float(np.mean(stats.flags(f))), 4) for f in feats]
    more = {"flagged_per_group": shares} if len(feats) > 1 else {}
    entry = card_entry(
        stats, path, percentile=percentile, validation_flagged=round(flagged, 4), **more, **extra
    )
    card = pkg.card
    atomic_write_json(
        Path(folder) / CARD_FILE, replace(card, extra=dict(card.extra, open_set=entry)).to_dict()
    )
    return entry, flagged


def fit_open_set(
    folder: Path,
    val_images: np.ndarray,
    percentile: float = DEFAULT_PERCENTILE,
    say: Callable[[str], None] = print,
) -> dict[str, Any] | None:
    """The check of a freshly trained package, its threshold from the validation split."""
    done = write_open_set(folder, val_images, percentile)
    if done is None:
        return None
    entry, flagged = done
    say(
        f"open-set check (energy of the logits): threshold {entry['threshold']} "
        f"(flags {flagged:.1%} of validation cells)"
    )
    return entry
