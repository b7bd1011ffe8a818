"""Write a taught package whose parts agree: card, weights, ONNX, replay sample, open-set
check and appearance sources, all for the same classes (the parent's and any the lab
added)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.adapt import library
from micro_app.adapt.labelled import LabelledSet
from micro_app.adapt.openset_refit import refit_open_set
from micro_app.core.appearance import Appearance, features_batch, fit_source
from micro_app.core.models import replay as rp
from micro_app.core.models.package import ModelPackage, save_package

log = logging.getLogger("micro_app")
LAB_CELLS = "labelled cells of this lab"
MIN_SOURCE_CELLS = 20  # fewer cells make no appearance source of their own
CARRIED = ("split.json",)  # files of the parent the child keeps as they are


def grown_replay(
    replay: rp.ReplaySet, cells: LabelledSet, per_class: int, seed: int
) -> rp.ReplaySet:
    """The parent's replay sample with up to ``per_class`` of the lab's *training* cells of
    each class added (held-back cells never train, in this round or a later one), under
    the taught classes."""
    keep = rp.pick(cells.train_labels, len(cells.classes), per_class, seed)
    return rp.ReplaySet(
        np.concatenate([replay.images, cells.train_images[keep]]),
        np.concatenate([replay.labels, cells.train_labels[keep]]).astype(int),
        tuple(cells.classes),
    )


def lab_appearance(parent: dict[str, Any] | None, cells: LabelledSet, seed: int) -> Any:
    """The parent's appearance sources with the lab's labelled cells as one more (when there
    are enough of them); the parent's as it is otherwise."""
    lab = np.concatenate([cells.train_images, cells.holdout_images])
    if len(lab) < MIN_SOURCE_CELLS:
        return parent
    stats = fit_source(features_batch(lab), seed)
    base = Appearance.from_dict(parent) if parent else None
    merged = base.with_source(LAB_CELLS, stats) if base else Appearance.single(LAB_CELLS, stats)
    return merged.to_dict()


def save_taught(
    model: Any,
    parent: ModelPackage,
    cells: LabelledSet,
    replay: rp.ReplaySet,
    target: Path,
    *,
    adaptation: dict[str, Any],
    version: str,
    appearance: dict[str, Any] | None,
    replay_per_class: int,
    seed: int,
    say: Callable[[str, float], None],
) -> Path:
    from micro_app.training.export import export_beside_keras

    card = parent.card
    if appearance is None:
        appearance = lab_appearance(card.appearance, cells, seed)
    new_card = library.derived_card(
        parent.path, card, "teach", adaptation, version=version, appearance=appearance
    )
    grown = grown_replay(replay, cells, replay_per_class, seed)
    work = Path(tempfile.mkdtemp(prefix="micro_app_teach_"))
    try:
        path = grown.save(work / rp.REPLAY_FILE)
        old = card.extra.get("replay") or {}
        added = len(grown) - len(replay)
        source = f"{old.get('source', 'training data')}; {added} labelled cells of this lab"
        extra = dict(new_card.extra, replay=rp.replay_entry(grown, path, source))
        new_card = replace(new_card, classes=tuple(cells.classes), extra=extra)
        files = {rp.REPLAY_FILE: path}
        files.update({n: parent.path / n for n in CARRIED if (parent.path / n).is_file()})
        save_package(model, new_card, target, files=files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say("re-fitting the check for cells unlike every class", 0.95)
    lab = np.concatenate([cells.train_images, cells.holdout_images])
    refit_open_set(target, seed=seed, lab_cells=lab)
    say("adding ONNX weights", 0.97)
    export_beside_keras(target, lambda text: log.info("%s", text))
    return target
