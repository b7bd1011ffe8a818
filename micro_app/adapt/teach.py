"""Teach a model from the cells the lab labelled, without making it forget.

Fine-tuning on a handful of the lab's cells: all weights train at a small learning rate,
except the batch-normalisation layers, which stay frozen with the parent's statistics
(calibrated to this microscope when the parent was calibrated; batches of a few dozen
cells would make new statistics noisy). Each epoch mixes the lab's training cells,
repeated so that they make about half of it, with the package's replay sample of its
original training cells (``core.models.replay``), under the same augmentation as training.

Before anything replaces the model, the parent and the new model are scored on the
lab's *held-back* cells (never trained on) and on held-back replay cells (does it still
know the training data?); the caller shows both and lets the user choose.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.adapt import library
from micro_app.adapt.labelled import LabelledSet
from micro_app.adapt.microscope import save_derived
from micro_app.adapt.openset_refit import refit_open_set
from micro_app.core.errors import InputError, SettingsError
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.package import ModelPackage, load_package
from micro_app.core.models.replay import ReplaySet, load_replay, pick
from micro_app.core.results import UNIDENTIFIED
from micro_app.training.export import export_beside_keras

log = logging.getLogger("micro_app")
MIN_TRAIN_CELLS = 4


class Cancelled(Exception):
    """The user stopped the teaching run; nothing was written."""


@dataclass(frozen=True)
class TeachConfig:
    epochs: int = 20
    learning_rate: float = 3e-4
    batch_size: int = 32
    seed: int = 0
    replay_holdout_per_class: int = 8  # replay cells per class kept out, to check forgetting

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= 500:
            raise SettingsError(f"epochs must be 1..500, got {self.epochs!r}")
        if not 0 < self.learning_rate < 1:
            raise SettingsError(f"learning rate must be in (0, 1), got {self.learning_rate!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise SettingsError(f"batch size must be a positive integer, got {self.batch_size!r}")


def score_cells(
    clf: Classifier, images: np.ndarray, labels: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Right class after the ``unidentified`` threshold (over all cells, and averaged over
    classes: a lab sees many more neutrophils than monocytes), right top class, and recall
    per class, of labelled cells."""
    classes = clf.classes
    if len(images) == 0:
        return {"cells": 0}
    probs = np.concatenate([clf.predict(images[i : i + 64]) for i in range(0, len(images), 64)])
    top = probs.argmax(axis=1)
    kept = probs.max(axis=1) >= threshold
    right = (top == labels) & kept
    per_class = {
        classes[k]: round(float(np.mean(right[labels == k])), 4)
        for k in sorted(set(labels.tolist()))
    }
    return {
        "cells": len(labels),
        "accuracy": round(float(right.mean()), 4),
        "balanced_accuracy": round(float(np.mean(list(per_class.values()))), 4),
        "top_class_accuracy": round(float(np.mean(top == labels)), 4),
        UNIDENTIFIED: int(np.sum(~kept)),
        "recall": per_class,
        "threshold": threshold,
    }


def verdict(before: dict[str, Any], after: dict[str, Any]) -> str:
    """One line the user reads before choosing the taught version: is it better on the
    lab's held-back cells (right class after the threshold), counted in cells?"""
    n = int(after.get("cells") or 0)
    if not n:
        return "not measured (no held-back cells): use it only if you have checked it yourself"
    gained = round((after["accuracy"] - before["accuracy"]) * n)
    if gained > 0:
        return f"better: {gained} more of the {n} held-back cells right"
    what = (
        "no better" if gained == 0 else f"worse: {-gained} fewer of the {n} held-back cells right"
    )
    return f"{what}; keep the current model, or label more cells and teach again"


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
) -> library.NewVersion:
    """Fine-tune ``parent`` on ``cells`` (its training side), score parent and child on the
    held-back side, and write the child as a new package (``out``, or the library's next
    version). ``before_package``: the model to report as "before" (default: ``parent``);
    ``appearance``: the unlike-the-training-images statistics for the new card (default:
    the parent's); ``report``: more entries for the adaptation record."""
    cfg = config or TeachConfig()
    card = parent.card
    say = progress or (lambda _text, _share: None)
    replay = check_teachable(parent, cells)
    replay_train, replay_hold = split_replay(replay, cfg.replay_holdout_per_class, cfg.seed)
    threshold = card.unidentified_threshold if card.unidentified_threshold is not None else 0.5
    say("scoring the current model on the held-back cells", 0.02)
    before_clf = Classifier(before_package or parent)
    before = score_cells(before_clf, cells.holdout_images, cells.holdout_labels, threshold)
    before_replay = score_cells(before_clf, replay_hold.images, replay_hold.labels, threshold)
    work = load_package(parent.path)  # a fresh copy: the running model is never touched
    t0 = time.perf_counter()
    model, history = _fit(work.model, card, cells, replay_train, cfg, say, cancel)
    seconds = time.perf_counter() - t0
    say("scoring the new model on the held-back cells", 0.92)
    # the new weights exist only in memory: no weights file of the parent's may stand in
    child = ModelPackage(path=parent.path, card=replace(card, weights={}), model=model)
    after_clf = Classifier(child)
    after = score_cells(after_clf, cells.holdout_images, cells.holdout_labels, threshold)
    after_replay = score_cells(after_clf, replay_hold.images, replay_hold.labels, threshold)
    adaptation = {
        "train_cells": len(cells.train_labels),
        "train_per_class": cells.counts("train"),
        "holdout_cells": len(cells.holdout_labels),
        "holdout_per_class": cells.counts("holdout"),
        "skipped_labels": cells.skipped,
        "replay_cells": len(replay_train),
        "validated": bool(len(cells.holdout_labels)),
        "before": before,
        "after": after,
        "training_data_before": before_replay,
        "training_data_after": after_replay,
        "verdict": verdict(before, after),
        **(report or {}),
        "config": asdict(cfg),
        "seconds": round(seconds, 1),
        "final_loss": round(history[-1], 4) if history else None,
        "note": "before/after on the lab's held-back cells (never trained on) and on "
        "held-back replay cells of the training data; temperature and threshold are the "
        "parent's",
    }
    version, default_out = library.next_version(card, library_root)
    target = Path(out) if out is not None else default_out
    new_card = library.derived_card(
        parent.path, card, "teach", adaptation, version=version, appearance=appearance
    )
    say("writing the package", 0.95)
    save_derived(model, new_card, target, parent.path)
    refit_open_set(target, seed=cfg.seed)
    say("adding ONNX weights", 0.97)
    export_beside_keras(target, lambda text: log.info("%s", text))
    say("done", 1.0)
    return library.NewVersion(target, version, adaptation)


def _fit(
    model: Any,
    card: Any,
    cells: LabelledSet,
    replay: ReplaySet,
    cfg: TeachConfig,
    say: Callable[[str, float], None],
    cancel: threading.Event | None,
) -> tuple[Any, list[float]]:
    """The fine-tuned model (a clean copy, without optimizer state) and its loss per epoch."""
    import keras

    from micro_app.adapt.batchnorm import batchnorm_layers
    from micro_app.training.augment import Augment
    from micro_app.training.pipeline import make_dataset

    keras.utils.set_random_seed(cfg.seed)
    for layer in batchnorm_layers(model):
        layer.trainable = False  # inference mode: keep the (calibrated) statistics
    repeat = max(1, math.ceil(len(replay) / len(cells.train_labels)))
    x = np.concatenate([np.repeat(cells.train_images, repeat, axis=0), replay.images])
    y = np.concatenate([np.repeat(cells.train_labels, repeat), replay.labels])
    binary = int(model.output_shape[-1]) == 1
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
    )
    ds = make_dataset(
        x, y, card, cfg.batch_size, augment=Augment(), shuffle=True, seed=cfg.seed, binary=binary
    )

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            loss = (logs or {}).get("loss", float("nan"))
            say(
                f"epoch {epoch + 1}/{cfg.epochs}, loss {loss:.3f}",
                0.05 + 0.85 * (epoch + 1) / cfg.epochs,
            )
            if cancel is not None and cancel.is_set():
                self.model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if cancel is not None and cancel.is_set():
                self.model.stop_training = True

    say(
        f"teaching on {len(cells.train_labels)} lab cells (x{repeat}), {len(replay)} replay cells",
        0.05,
    )
    hist = model.fit(ds, epochs=cfg.epochs, callbacks=[Progress()], verbose=0, shuffle=False)
    if cancel is not None and cancel.is_set():
        raise Cancelled("teaching was stopped; nothing was written")
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    for layer in batchnorm_layers(clean):
        layer.trainable = True  # frozen only for this run; the package is like any other
    return clean, [float(v) for v in hist.history.get("loss", [])]
