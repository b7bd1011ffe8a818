"""The open-set check of an adapted package, re-fitted: calibration and teaching change
the network's features, so the parent's class means and covariance no longer describe
them. The child's check is fitted on what it carries and was taught: its replay sample of
the training cells (held-back replay cells set the threshold) plus the lab's labelled
cells when it was taught. Fewer cells than at training, so fewer dimensions (32)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.models.card import CARD_FILE, ModelCard
from micro_app.core.models.replay import load_replay, pick
from micro_app.core.openset import DEFAULT_PERCENTILE, OPENSET_FILE, OpenSetStats, card_entry

DIMS = 32
HOLDOUT_PER_CLASS = 8


def refit_open_set(
    folder: Path,
    cells: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Fit and store the check of the package in ``folder``; None when it carries no
    replay sample (the check then stays off, and the card says nothing of one)."""
    from micro_app.training.openset_fit import package_features

    card = ModelCard.read(folder)
    replay = load_replay(folder, card)
    if replay is None or card.scope != "cell":
        return None
    held = pick(replay.labels, len(card.classes), HOLDOUT_PER_CLASS, seed + 11)
    mask = np.zeros(len(replay), bool)
    mask[held] = True
    x, y = replay.images[~mask], replay.labels[~mask]
    if cells is not None and labels is not None and len(cells):
        x, y = np.concatenate([x, cells]), np.concatenate([y, labels])
    stats = OpenSetStats.fit(package_features(folder, x), y, len(card.classes), dims=DIMS)
    stats = stats.with_threshold(package_features(folder, replay.images[mask]), DEFAULT_PERCENTILE)
    path = stats.save(Path(folder) / OPENSET_FILE)
    entry = card_entry(
        stats,
        path,
        percentile=DEFAULT_PERCENTILE,
        fitted_on=f"{len(x)} cells: the replay sample of the training cells"
        + (" and the lab's labelled cells" if cells is not None and len(cells) else ""),
    )
    card = ModelCard.read(folder)
    atomic_write_json(
        Path(folder) / CARD_FILE, replace(card, extra=dict(card.extra, open_set=entry)).to_dict()
    )
    return entry
