"""The open-set check of an adapted package, re-fitted: calibration and teaching change
the network's features (and teaching its classifier layer), so the parent's threshold no
longer describes them. The child's threshold comes from the held-back part of the replay
sample of the training cells it carries and, after teaching, from the lab's confirmed
cells too: the higher of the two 95th percentiles, so that the ``atypical`` flag marks
about 5 % of either (not 20 % of the lab's ordinary cells, whose energy is higher than the
training cells' on another camera)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.models.card import ModelCard
from micro_app.core.models.replay import load_replay, pick
from micro_app.core.openset import DEFAULT_PERCENTILE

HOLDOUT_PER_CLASS = 8


def refit_open_set(
    folder: Path, seed: int = 0, lab_cells: np.ndarray | None = None
) -> dict[str, Any] | None:
    """Fit and store the check of the package in ``folder``; None when it carries no
    replay sample (the check then stays off, and the card says nothing of one).
    ``lab_cells``: the lab's confirmed cells (uint8 at the model input)."""
    from micro_app.training.openset_fit import write_open_set

    card = ModelCard.read(folder)
    replay = load_replay(folder, card)
    if replay is None or card.scope != "cell":
        return None
    held = pick(replay.labels, len(card.classes), HOLDOUT_PER_CLASS, seed + 11)
    mask = np.zeros(len(replay), bool)
    mask[held] = True
    groups = [replay.images[mask]]
    what = f"{int(mask.sum())} held-back replay cells of the training data"
    if lab_cells is not None and len(lab_cells) >= 10:
        groups.append(lab_cells)
        what += f" and {len(lab_cells)} cells the lab confirmed"
    done = write_open_set(
        folder, groups, DEFAULT_PERCENTILE, fitted_on=f"threshold: the higher from {what}"
    )
    return None if done is None else done[0]
