"""Teach a model the lab's cells, and the classes the lab adds, without making it forget.

The recipe is the one ``micro-app train`` uses on pretrained networks
(``training.finetune``): the last layer alone for a short warm-up (a class the lab adds
gets a new output, imprinted from its cells: ``adapt.classes``), then every layer at a
low rate with batch normalisation in inference mode, so the parent's (or the calibrated)
statistics are kept and never re-estimated from batches of a few dozen cells. Each epoch
mixes three kinds of cells under the training augmentation: the lab's labelled training
cells, the collected cells the model is sure of (``adapt.pseudo``: pseudo-labels, with
the lab's natural mix of classes), together about half of it, and the package's replay
sample of every source it was trained on (``core.models.replay``), so it does not forget
(that fit and its epoch mix: ``adapt.teach_fit``).

Before anything replaces the model, the parent and the new model are scored on the lab's
*held-back* cells (never trained on) and on held-back replay cells; a paired sign test
gives the verdict (``adapt.scoring``); the caller shows both and lets the user choose.
The new package's replay sample gains the lab's cells (a class added now is remembered
by the next round), its open-set check is re-fitted so that it flags about 5 % of the
lab's confirmed cells, and its unlike-the-training-images check knows the lab's cells.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.adapt import library
from micro_app.adapt.classes import MIN_NEW_CLASS_CELLS
from micro_app.adapt.labelled import LabelledSet
from micro_app.adapt.library import Cancelled
from micro_app.adapt.package_io import save_taught
from micro_app.adapt.scoring import compare, predict_all, right_cells, score_probs, verdict
from micro_app.adapt.teach_fit import TeachConfig, fit_taught
from micro_app.core.errors import InputError
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.package import ModelPackage, load_package
from micro_app.core.models.replay import ReplaySet, load_replay, pick

__all__ = [
    "MIN_TRAIN_CELLS",
    "Cancelled",
    "TeachConfig",
    "check_teachable",
    "split_replay",
    "teach",
]

log = logging.getLogger("micro_app")
MIN_TRAIN_CELLS = 4


def split_replay(replay: ReplaySet, per_class: int, seed: int) -> tuple[ReplaySet, ReplaySet]:
    held = pick(replay.labels, len(replay.classes), per_class, seed + 7)
    mask = np.zeros(len(replay), bool)
    mask[held] = True

    def part(m: np.ndarray) -> ReplaySet:
        return ReplaySet(replay.images[m], replay.labels[m], replay.classes)

    return part(~mask), part(mask)


def check_teachable(parent: ModelPackage, cells: LabelledSet) -> ReplaySet:
    """Refuse, in one line, what cannot be taught; the package's replay set otherwise."""
    card = parent.card
    if card.scope != "cell":
        raise InputError("teaching adapts cell models; this model classifies whole fields")
    if parent.head is not None:
        raise InputError("this package has a classical head: teach the CNN package it came from")
    if len(cells.train_labels) < MIN_TRAIN_CELLS:
        raise InputError(
            f"only {len(cells.train_labels)} labelled training cells: label at least "
            f"{MIN_TRAIN_CELLS} (10 per class is a good start)"
        )
    if cells.classes[: len(card.classes)] != card.classes:
        raise InputError("the labelled cells' classes do not start with the model's: re-read them")
    counts = np.bincount(cells.train_labels, minlength=len(cells.classes))
    for k in range(len(card.classes), len(cells.classes)):
        if counts[k] < MIN_NEW_CLASS_CELLS:
            raise InputError(
                f"the new class {cells.classes[k]!r} has {counts[k]} training cells: label at "
                f"least {MIN_NEW_CLASS_CELLS + 1} of them (about 10 is better), since every "
                "fourth is held back to check it"
            )
    replay = load_replay(parent.path, card)
    if replay is None:
        raise InputError(
            f"{parent.path} carries no sample of its training cells (replay.npz), so teaching "
            "would make it forget: retrain it with micro-app train, or add one with "
            "python -m micro_app.training.replay_tool MODEL DATASET"
        )
    return replay


def teach(
    parent: ModelPackage,
    cells: LabelledSet,
    out: Path | None = None,
    *,
    config: TeachConfig | None = None,
    library_root: Path | None = None,
    progress: Callable[[str, float], None] | None = None,
    cancel: threading.Event | None = None,
    before_package: ModelPackage | None = None,
    appearance: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
    pool: np.ndarray | None = None,
) -> library.NewVersion:
    """Fine-tune ``parent`` on ``cells`` (its training side; classes after the parent's are
    added), with ``pool`` (this microscope's collected cells, unlabelled) pseudo-labelled;
    score parent and child on the held-back side and write the child as a new package
    (``out``, or the library's next version). ``before_package``: the model to report as
    "before" (default: ``parent``); ``appearance``: the unlike-the-training-images check
    for the new card (default: the parent's with the lab's labelled cells as a source);
    ``report``: more entries for the adaptation record."""
    cfg = config or TeachConfig()
    card = parent.card
    say = progress or (lambda _text, _share: None)
    replay = check_teachable(parent, cells)
    classes = cells.classes
    new = classes[len(card.classes) :]
    replay_train, replay_hold = split_replay(replay, cfg.replay_holdout_per_class, cfg.seed)
    threshold = card.unidentified_threshold if card.unidentified_threshold is not None else 0.5
    say("scoring the current model on the held-back cells", 0.02)
    before_clf = Classifier(before_package or parent)
    p_before = predict_all(before_clf, cells.holdout_images)
    before = score_probs(p_before, cells.holdout_labels, classes, threshold)
    before_replay = score_probs(
        predict_all(before_clf, replay_hold.images), replay_hold.labels, card.classes, threshold
    )
    from micro_app.training.reproducible import seeded

    seeded(cfg.seed)  # before the model is loaded: its dropout layers take their seeds then
    work = load_package(parent.path)  # a fresh copy: the running model is never touched
    t0 = time.perf_counter()
    model, history, pseudo = fit_taught(
        work.model, card, cells, replay_train, pool, threshold, cfg, say, cancel
    )
    seconds = time.perf_counter() - t0
    say("scoring the new model on the held-back cells", 0.9)
    # the new weights exist only in memory: no weights file of the parent's may stand in
    child = ModelPackage(
        path=parent.path, card=replace(card, weights={}, classes=classes), model=model
    )
    after_clf = Classifier(child)
    p_after = predict_all(after_clf, cells.holdout_images)
    after = score_probs(p_after, cells.holdout_labels, classes, threshold)
    after_replay = score_probs(
        predict_all(after_clf, replay_hold.images), replay_hold.labels, classes, threshold
    )
    change = compare(
        right_cells(p_before, cells.holdout_labels, threshold),
        right_cells(p_after, cells.holdout_labels, threshold),
    )
    adaptation = {
        "train_cells": len(cells.train_labels),
        "train_per_class": cells.counts("train"),
        "holdout_cells": len(cells.holdout_labels),
        "holdout_per_class": cells.counts("holdout"),
        "added_classes": list(new),
        "skipped_labels": cells.skipped,
        "replay_cells": len(replay_train),
        "pseudo_labels": pseudo.summary(classes),
        "validated": bool(len(cells.holdout_labels)),
        "before": before,
        "after": after,
        "change": change,
        "training_data_before": before_replay,
        "training_data_after": after_replay,
        "verdict": verdict(change),
        **(report or {}),
        "config": asdict(cfg),
        "seconds": round(seconds, 1),
        "final_loss": round(history["loss"][-1], 4) if history.get("loss") else None,
        "note": "before/after on the lab's held-back cells (never trained on) and on "
        "held-back replay cells of the training data; temperature and threshold are the "
        "parent's",
    }
    version, default_out = library.next_version(card, library_root)
    target = Path(out) if out is not None else default_out
    say("writing the package", 0.93)
    save_taught(
        model,
        parent,
        cells,
        replay,
        target,
        adaptation=adaptation,
        version=version,
        appearance=appearance,
        replay_per_class=cfg.replay_lab_per_class,
        seed=cfg.seed,
        say=say,
    )
    say("done", 1.0)
    return library.NewVersion(target, version, adaptation)
