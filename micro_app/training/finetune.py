"""Fine-tuning a pretrained network without wrecking it on small data: the recipe that
``micro-app train --weights imagenet`` and the lab's teaching (``adapt.teach``) share.

Trained all at once on a few hundred images, a pretrained network with batch
normalisation can collapse: the new, random head sends large gradients into the
pretrained layers while batch statistics of 32 images replace the layers' running
statistics, and the validation loss rises from the first epoch (seen here: one seed of
60 PBC crops per class kept epoch 1 at 0.21 held-out accuracy, another reached 0.89).
The recipe of Keras' transfer-learning guide (and of LP-FT, Kumar et al. 2022, "Fine-tuning
can distort pretrained features"):

1. **warm-up**: the pretrained layers frozen, the head alone trained on their features;
2. **fine-tune**: every layer trained at a lower learning rate, batch normalisation kept in
   inference mode (its pretrained, or calibrated, statistics are used and never updated);
3. the best epoch and early stopping are judged only after the warm-up ended: an epoch of
   the warm-up is never the one kept.

Networks trained from random weights keep one stage with batch normalisation training.
TensorFlow is imported by the caller's model; nothing here imports it at module level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from micro_app.training.architectures import PRETRAINED_ATTR

WARMUP_EPOCHS = 3
# fine-tuning rate relative to the warm-up's: 0.3 held every seed of 60 PBC crops per
# class at 0.875 or more (0.1: one seed at 0.835); docs/training.md
BODY_LR_FACTOR = 0.3
NEAR_CHANCE = 0.3  # validation accuracy below chance + 30 % of the way to 1.0: near chance
MAX_GAP = 0.25  # training accuracy this far above validation accuracy: memorised


@dataclass(frozen=True)
class Stage:
    name: str  # "warm-up": the head alone; "fine-tune": every layer (BN in inference mode)
    epochs: int
    learning_rate: float
    judged: bool  # its epochs can be kept as the best, and early stopping watches them


def plan(
    pretrained: bool,
    epochs: int,
    learning_rate: float,
    warmup_epochs: int = WARMUP_EPOCHS,
    body_learning_rate: float | None = None,
) -> list[Stage]:
    """The stages of a run of ``epochs`` epochs in all. From random weights: one stage that
    trains everything. From pretrained weights: ``warmup_epochs`` on the head at
    ``learning_rate``, then the rest on every layer at ``body_learning_rate`` (three tenths)."""
    if not pretrained or warmup_epochs <= 0:
        return [Stage("train", epochs, learning_rate, judged=True)]
    body = body_learning_rate or learning_rate * BODY_LR_FACTOR
    if epochs < 2:  # no room for a warm-up: every layer, gently, batch norm kept
        return [Stage("fine-tune", epochs, body, judged=True)]
    warm = min(warmup_epochs, epochs - 1)
    return [
        Stage("warm-up", warm, learning_rate, judged=False),
        Stage("fine-tune", max(1, epochs - warm), body, judged=True),
    ]


def is_pretrained(model: Any) -> bool:
    """Did a builder read any of ``model``'s weights from a pretrained file?"""
    return any(getattr(layer, PRETRAINED_ATTR, False) for layer in model.layers)


def head_layers(model: Any) -> list[Any]:
    """The layers a warm-up trains: every weighted layer not tagged as pretrained; for a
    model without tags (loaded from a package), the layers after its ``features`` layer."""
    weighted = [layer for layer in model.layers if layer.weights]
    tagged = [layer for layer in weighted if getattr(layer, PRETRAINED_ATTR, False)]
    if tagged:
        return [layer for layer in weighted if not getattr(layer, PRETRAINED_ATTR, False)]
    names = [layer.name for layer in model.layers]
    start = names.index("features") + 1 if "features" in names else len(names) - 1
    return [layer for layer in model.layers[start:] if layer.weights]


def set_stage(
    model: Any, stage: Stage, head: Sequence[Any], allowed: dict[int, bool] | None = None
) -> None:
    """Make the layers ``stage`` trains trainable and freeze the rest. ``allowed``: each
    layer's trainable flag as the builder left it (a builder asked to train only the last
    N layers of its backbone keeps the others frozen in every stage)."""
    import keras

    head_ids = {id(layer) for layer in head}
    for layer in model.layers:
        ok = True if allowed is None else allowed.get(id(layer), True)
        if stage.name == "warm-up":
            layer.trainable = id(layer) in head_ids
        elif stage.name == "fine-tune":
            layer.trainable = ok and not isinstance(layer, keras.layers.BatchNormalization)
        else:
            layer.trainable = ok


def release(model: Any, allowed: dict[int, bool] | None = None) -> None:
    """The trainable flags as the builder left them: the saved package is like any other."""
    for layer in model.layers:
        layer.trainable = True if allowed is None else allowed.get(id(layer), True)


class BestAfterWarmup:
    """Keeps the weights of the judged epoch with the lowest monitored value and puts them
    back at the end; epochs of the warm-up are never kept."""

    def __new__(cls, monitor: str) -> Any:
        import keras

        class _Best(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.best = math.inf
                self.best_epoch = -1
                self.weights: list[Any] | None = None
                self.judging = False

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                value = (logs or {}).get(monitor)
                if self.judging and value is not None and value < self.best:
                    self.best, self.best_epoch = float(value), epoch
                    self.weights = self.model.get_weights()

            def restore(self) -> None:
                if self.weights is not None:
                    self.model.set_weights(self.weights)

        return _Best()


def fit_stages(
    model: Any,
    stages: Sequence[Stage],
    compile_model: Callable[[Any, float], None],
    fit: Callable[[Any, int, int, list[Any]], dict[str, list[float]]],
    *,
    monitor: str,
    judged_callbacks: Callable[[], list[Any]] | None = None,
    head: Sequence[Any] | None = None,
    keep_best: bool = True,
) -> tuple[dict[str, list[float]], int, float]:
    """Run ``stages`` on ``model``: for each, set the trainable layers, ``compile_model(model,
    learning_rate)`` and ``fit(model, initial_epoch, epochs, callbacks)`` (its history).
    Judged stages also get ``judged_callbacks()`` (early stopping, learning-rate schedule).
    Returns the history of all epochs, the kept epoch (0-based; -1 when none was judged)
    and its monitored value; the kept epoch's weights are in ``model`` (``keep_best`` False:
    the last epoch's, as for teaching, which has no validation split to judge by)."""
    head = list(head) if head is not None else head_layers(model)
    allowed = {id(layer): bool(layer.trainable) for layer in model.layers}
    best = BestAfterWarmup(monitor)
    history: dict[str, list[float]] = {}
    done = 0
    for stage in stages:
        set_stage(model, stage, head, allowed)
        compile_model(model, stage.learning_rate)
        best.judging = stage.judged
        more = judged_callbacks() if stage.judged and judged_callbacks else []
        hist = fit(model, done, done + stage.epochs, [best, *more])
        for key, values in hist.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        done = len(history.get("loss", []))
        if getattr(model, "stop_training", False) and not stage.judged:
            break  # cancelled during the warm-up
    if keep_best:
        best.restore()
    release(model, allowed)
    return history, best.best_epoch, best.best


def fitness(
    history: dict[str, list[float]], kept_epoch: int, n_classes: int
) -> dict[str, Any] | None:
    """Is the kept model fit to use? From its validation and training accuracy at the kept
    epoch: near chance, or far below what it reached on its training images, is not.
    None when the history has no validation accuracy."""
    val = history.get("val_accuracy") or []
    train = history.get("accuracy") or []
    if not val or kept_epoch < 0 or kept_epoch >= len(val):
        return None
    v = float(val[kept_epoch])
    t = float(train[kept_epoch]) if kept_epoch < len(train) else float("nan")
    chance = 1.0 / max(2, n_classes)
    near_chance = v < chance + NEAR_CHANCE * (1 - chance)
    gap = (t - v) if math.isfinite(t) else 0.0
    problems = []
    if near_chance:
        problems.append(f"validation accuracy {v:.2f} is near chance ({chance:.2f})")
    if gap > MAX_GAP:
        problems.append(f"validation accuracy {v:.2f} is far below training accuracy {t:.2f}")
    return {
        "fit": not problems,
        "validation_accuracy": round(v, 4),
        "training_accuracy": round(t, 4) if math.isfinite(t) else None,
        "chance": round(chance, 4),
        "problems": problems,
    }
