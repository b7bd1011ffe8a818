"""Teach a model the lab's cells, and the classes the lab adds, without making it forget.

The recipe is the one ``micro-app train`` uses on pretrained networks
(``training.finetune``): the last layer alone for a short warm-up (a class the lab adds
gets a new output, imprinted from its cells: ``adapt.classes``), then every layer at a
low rate with batch normalisation in inference mode, so the parent's (or the calibrated)
statistics are kept and never re-estimated from batches of a few dozen cells. Each epoch
mixes three kinds of cells under the training augmentation: the lab's labelled training
cells, the collected cells the model is sure of (``adapt.pseudo``: pseudo-labels, with
the lab's natural mix of classes), together about half of it, and the package's replay
sample of every source it was trained on (``core.models.replay``), so it does not forget.

Before anything replaces the model, the parent and the new model are scored on the lab's
*held-back* cells (never trained on) and on held-back replay cells; a paired sign test
gives the verdict (``adapt.scoring``); the caller shows both and lets the user choose.
The new package's replay sample gains the lab's cells (a class added now is remembered
by the next round), its open-set check is re-fitted so that it flags about 5 % of the
lab's confirmed cells, and its unlike-the-training-images check knows the lab's cells.
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
from micro_app.adapt.classes import MIN_NEW_CLASS_CELLS
from micro_app.adapt.labelled import LabelledSet
from micro_app.adapt.library import Cancelled
from micro_app.adapt.package_io import save_taught
from micro_app.adapt.pseudo import PseudoLabels, pseudo_label
from micro_app.adapt.scoring import compare, predict_all, right_cells, score_probs, verdict
from micro_app.core.errors import InputError, SettingsError
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.package import ModelPackage, load_package
from micro_app.core.models.replay import ReplaySet, load_replay, pick

log = logging.getLogger("micro_app")
MIN_TRAIN_CELLS = 4


@dataclass(frozen=True)
class TeachConfig:
    epochs: int = 20  # in all, the warm-up included
    learning_rate: float = 1e-4  # every layer, after the warm-up
    head_learning_rate: float = 1e-3  # the last layer alone, during the warm-up
    warmup_epochs: int = 3
    batch_size: int = 32
    seed: int = 0
    replay_holdout_per_class: int = 8  # replay cells per class kept out, to check forgetting
    lab_share: float = 0.5  # of each epoch: the lab's cells (labelled and pseudo-labelled)
    pseudo_labels: bool = True  # use the collected, unlabelled cells the model is sure of
    replay_lab_per_class: int = 16  # the lab's cells per class added to the replay sample

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= 500:
            raise SettingsError(f"epochs must be 1..500, got {self.epochs!r}")
        for name in ("learning_rate", "head_learning_rate"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise SettingsError(f"{name.replace('_', ' ')} must be in (0, 1), got {v!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise SettingsError(f"batch size must be a positive integer, got {self.batch_size!r}")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs <= 100:
            raise SettingsError(f"warm-up epochs must be 0..100, got {self.warmup_epochs!r}")
        if not 0.05 <= self.lab_share <= 0.95:
            raise SettingsError(f"lab share must be 0.05..0.95, got {self.lab_share!r}")


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
    model, history, pseudo = _fit(
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


def _fit(
    model: Any,
    card: Any,
    cells: LabelledSet,
    replay: ReplaySet,
    pool: np.ndarray | None,
    threshold: float,
    cfg: TeachConfig,
    say: Callable[[str, float], None],
    cancel: threading.Event | None,
) -> tuple[Any, dict[str, list[float]], PseudoLabels]:
    """The fine-tuned model (a clean copy, without optimizer state), its history, and the
    pseudo-labelled cells it was taught."""
    import keras

    from micro_app.adapt.classes import grow_head
    from micro_app.training import finetune
    from micro_app.training.architectures import feature_extractor
    from micro_app.training.augment import Augment
    from micro_app.training.pipeline import batch_predictor, make_dataset

    n_old = len(card.classes)
    new_ids = set(range(n_old, len(cells.classes)))
    pseudo = PseudoLabels(cells.train_images[:0], cells.train_labels[:0], 0, 0)
    if cfg.pseudo_labels and pool is not None and len(pool):
        # by the model as it is, before a class is added: a new output starts untrained and
        # would claim the collected cells (it did: 99 % of PBC cells became "ig")
        say(f"looking at {len(pool)} collected cells for ones the model is sure of", 0.04)
        pseudo = pseudo_label(
            model,
            card,
            pool,
            threshold,
            cells.train_images,
            cells.train_labels,
            new_ids,
            held_back=cells.holdout_images,
        )
    if new_ids:
        features = batch_predictor(feature_extractor(model), card)
        imprint = [features(cells.train_images[cells.train_labels == k]) for k in sorted(new_ids)]
        model = grow_head(model, len(new_ids), imprint)
    x, y, repeat = epoch_mix(cells, pseudo, replay, cfg)
    ds = make_dataset(
        x,
        y,
        card_for(card, cells.classes),
        cfg.batch_size,
        augment=Augment(),
        shuffle=True,
        seed=cfg.seed,
    )
    stages = finetune.plan(
        True, cfg.epochs, cfg.head_learning_rate, cfg.warmup_epochs, cfg.learning_rate
    )
    if stages[0].name == "train":  # no warm-up asked: batch normalisation still stays frozen
        stages = [finetune.Stage("fine-tune", cfg.epochs, cfg.learning_rate, judged=True)]

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            loss = (logs or {}).get("loss", float("nan"))
            say(
                f"epoch {epoch + 1}/{cfg.epochs}, loss {loss:.3f}",
                0.06 + 0.82 * (epoch + 1) / cfg.epochs,
            )
            if cancel is not None and cancel.is_set():
                self.model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if cancel is not None and cancel.is_set():
                self.model.stop_training = True

    def compile_model(m: Any, lr: float) -> None:
        m.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")

    def fit(m: Any, start: int, stop: int, callbacks: list[Any]) -> dict[str, list[float]]:
        if cancel is not None and cancel.is_set():
            return {}
        h = m.fit(
            ds,
            initial_epoch=start,
            epochs=stop,
            callbacks=[*callbacks, Progress()],
            verbose=0,
            shuffle=False,  # the dataset shuffles itself
        )
        return dict(h.history)

    say(
        f"teaching on {len(cells.train_labels)} labelled cells (x{repeat}), "
        f"{len(pseudo.labels)} pseudo-labelled ones and {len(replay)} replay cells",
        0.06,
    )
    history, _, _ = finetune.fit_stages(
        model, stages, compile_model, fit, monitor="loss", keep_best=False
    )
    if cancel is not None and cancel.is_set():
        raise Cancelled("teaching was stopped; nothing was written")
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    return clean, history, pseudo


def epoch_mix(
    cells: LabelledSet, pseudo: PseudoLabels, replay: ReplaySet, cfg: TeachConfig
) -> tuple[np.ndarray, np.ndarray, int]:
    """The cells of one epoch: the replay sample once; the lab's share of the epoch
    (``lab_share``) half its labelled cells, repeated, half pseudo-labelled cells, repeated
    when few, a random subset when many (so that hundreds of collected cells never drown
    the few labelled ones, among them a class the lab adds). Returns the images, labels
    and how often each labelled cell appears."""
    half = max(1, round(cfg.lab_share / (1 - cfg.lab_share) * len(replay) / 2))
    repeat = max(1, math.ceil(half / len(cells.train_labels)))
    xs = [np.repeat(cells.train_images, repeat, axis=0), replay.images]
    ys = [np.repeat(cells.train_labels, repeat), replay.labels]
    n = len(pseudo.labels)
    if n:
        rng = np.random.default_rng(cfg.seed)
        idx = rng.permutation(n)[:half] if n > half else np.tile(np.arange(n), -(-half // n))
        xs.append(pseudo.images[idx])
        ys.append(pseudo.labels[idx])
    # a class the lab adds has no replay and no pseudo-labelled cells: its labelled cells
    # are shown as often as an average known class's cells are
    n_old = len(replay.classes)
    counts = np.bincount(np.concatenate(ys), minlength=len(cells.classes))
    target = int(counts[:n_old].mean()) if n_old else 0
    for k in range(n_old, len(cells.classes)):
        mine = cells.train_labels == k
        more = target - counts[k]
        if mine.any() and more > 0:
            extra = np.resize(np.flatnonzero(mine), more)
            xs.append(cells.train_images[extra])
            ys.append(cells.train_labels[extra])
    return np.concatenate(xs), np.concatenate(ys), repeat


def card_for(card: Any, classes: tuple[str, ...]) -> Any:
    """The parent's card with the taught classes (for pipelines that read the classes)."""
    return card if tuple(classes) == tuple(card.classes) else replace(card, classes=tuple(classes))
