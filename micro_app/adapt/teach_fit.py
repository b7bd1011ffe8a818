"""The fit of ``adapt.teach``: the collected cells the model is sure of pseudo-labelled, a
new output for each class the lab adds, each epoch's mix of the lab's, pseudo-labelled and
replay cells (``epoch_mix``), then the two stages of ``training.finetune``.
TensorFlow loads inside ``fit_taught``, not at import.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from micro_app.adapt.labelled import LabelledSet
from micro_app.adapt.library import Cancelled
from micro_app.adapt.pseudo import PseudoLabels, pseudo_label
from micro_app.core.errors import SettingsError
from micro_app.core.models.replay import ReplaySet


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


def fit_taught(
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
