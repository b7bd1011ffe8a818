"""The open-set check of an adapted package, re-fitted: calibration and teaching change
the network's features (and teaching its classifier layer), so the parent's threshold no
longer describes them. The child's threshold comes from the held-back part of the replay
sample of the training cells it carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.models.card import ModelCard
from micro_app.core.models.replay import load_replay, pick
from micro_app.core.openset import DEFAULT_PERCENTILE

HOLDOUT_PER_CLASS = 8


def refit_open_set(folder: Path, seed: int = 0) -> dict[str, Any] | None:
    """Fit and store the check of the package in ``folder``; None when it carries no
    replay sample (the check then stays off, and the card says nothing of one)."""
    from micro_app.training.openset_fit import write_open_set

    card = ModelCard.read(folder)
    replay = load_replay(folder, card)
    if replay is None or card.scope != "cell":
        return None
    held = pick(replay.labels, len(card.classes), HOLDOUT_PER_CLASS, seed + 11)
    mask = np.zeros(len(replay), bool)
    mask[held] = True
    done = write_open_set(
        folder,
        replay.images[mask],
        DEFAULT_PERCENTILE,
        fitted_on=f"threshold from {int(mask.sum())} held-back replay cells of the training data",
    )
    return None if done is None else done[0]
