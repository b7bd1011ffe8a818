"""Keras training of one run: compile on the distribution strategy, the tf.data inputs,
the fit with the best-validation-loss weights kept, and the RDA hyperparameter search.
``TrainingRun`` (``run.py``) mixes this in; it provides ``cfg``, ``arch``, ``classes``,
``input_size``, ``hyper``, ``strategy`` and ``card()``."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from micro_app.core.errors import SettingsError
from micro_app.core.models.card import ModelCard
from micro_app.training.config import RunData, TrainConfig
from micro_app.training.pipeline import class_weights, make_dataset


class BestWeights:
    """Keeps the weights of the epoch with the lowest monitored loss and restores them."""

    def __new__(cls, monitor: str) -> Any:
        import keras

        class _Best(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.best = math.inf
                self.best_epoch = -1
                self.weights: list[Any] | None = None

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                value = (logs or {}).get(monitor)
                if value is not None and value < self.best:
                    self.best, self.best_epoch = float(value), epoch
                    self.weights = self.model.get_weights()

            def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
                if self.weights is not None:
                    self.model.set_weights(self.weights)

        return _Best()


class KerasFitting:
    cfg: TrainConfig
    arch: Any
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    hyper: dict[str, Any]
    strategy: Any

    def card(self, architecture_name: str, extra: dict[str, Any]) -> ModelCard:
        raise NotImplementedError

    def _compile(self, options: dict[str, Any], lr: float) -> Any:
        import keras
        import tensorflow as tf

        with self.strategy.scope():
            model = self.arch.build(len(self.classes), self.input_size, self.cfg.weights, **options)
            binary = int(model.output_shape[-1]) == 1
            model.compile(
                optimizer=keras.optimizers.Adam(lr),
                loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
                metrics=["accuracy"],
                jit_compile=bool(tf.config.list_physical_devices("GPU")),
            )
        return model

    def _datasets(
        self, data: RunData, batch: int, binary: bool, card: ModelCard
    ) -> tuple[Any, Any]:
        x, src, y = data.training_set()
        train_ds = make_dataset(
            x,
            y,
            card,
            batch,
            augment=self.cfg.augment,
            shuffle=True,
            seed=self.cfg.seed,
            binary=binary,
            sources=src,
        )
        va = data.side("val")
        val_ds = (
            make_dataset(data.images[va], data.labels[va], card, batch, binary=binary)
            if len(va)
            else None
        )
        return train_ds, val_ds

    def _fit(
        self,
        data: RunData,
        options: dict[str, Any],
        hyper: dict[str, Any],
        say: Callable[[str], None],
    ) -> tuple[Any, dict[str, list[float]], dict[str, Any]]:
        import keras

        model = self._compile(options, hyper["learning_rate"])
        binary = int(model.output_shape[-1]) == 1
        card = self.card(self.arch.name, {})
        train_ds, val_ds = self._datasets(data, hyper["batch_size"], binary, card)
        monitor = "val_loss" if val_ds is not None else "loss"
        best = BestWeights(monitor)
        callbacks = [
            best,
            keras.callbacks.EarlyStopping(monitor=monitor, patience=self.cfg.patience),
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.5, patience=self.cfg.lr_patience, min_lr=1e-6
            ),
        ]
        verbose = self.cfg.verbose
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2
        train_labels = data.training_set()[2]
        cw = class_weights(train_labels, len(self.classes)) if self.cfg.use_class_weights else None
        say(
            f"{self.arch.name}: {model.count_params():,} parameters; up to {hyper['epochs']} "
            f"epochs, batch {hyper['batch_size']}, learning rate {hyper['learning_rate']:g}"
        )
        hist = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=hyper["epochs"],
            class_weight=cw,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the dataset shuffles itself
        )
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        say(f"kept the weights of epoch {best.best_epoch + 1} ({monitor} {best.best:.4f})")
        clean = keras.models.clone_model(model)  # saved without the optimizer state
        clean.set_weights(model.get_weights())
        info = {"epochs_run": len(history.get("loss", [])), "best_epoch": best.best_epoch + 1}
        return clean, history, info

    def _search(
        self, data: RunData, say: Callable[[str], None]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from micro_app.training.search import random_search, red_deer_search

        if len(data.side("val")) == 0:
            raise SettingsError(
                "the hyperparameter search scores on the validation split: --val-split > 0"
            )
        cfg = self.cfg
        card = self.card(self.arch.name, {})
        space = self.arch.module.SEARCH_SPACE

        def decode(x: np.ndarray) -> dict[str, Any]:
            lo_l, hi_l = space["layers"]
            lo_u, hi_u = space["units"]
            lo_r, hi_r = space["learning_rate"]
            units = math.exp(math.log(lo_u) + x[1] * (math.log(hi_u) - math.log(lo_u)))
            lr = 10 ** (math.log10(lo_r) + x[2] * (math.log10(hi_r) - math.log10(lo_r)))
            return {
                "layers": int(min(hi_l, lo_l + math.floor(x[0] * (hi_l - lo_l + 1)))),
                "units": int(max(lo_u, min(hi_u, 8 * round(units / 8)))),
                "learning_rate": float(f"{lr:.1e}"),
            }

        def objective(params: dict[str, Any]) -> float:
            import keras

            keras.backend.clear_session()  # each trial builds a new model and graph
            options = dict(cfg.arch_options, layers=params["layers"], units=params["units"])
            model = self._compile(options, params["learning_rate"])
            train_ds, val_ds = self._datasets(data, self.hyper["batch_size"], False, card)
            hist = model.fit(
                train_ds, validation_data=val_ds, epochs=cfg.search_epochs, verbose=0, shuffle=False
            )
            loss = float(min(hist.history["val_loss"]))
            say(f"  {params} -> validation loss {loss:.4f}")
            return loss

        say(f"red deer search, budget {cfg.search_budget} trainings of {cfg.search_epochs} epochs")
        rda = red_deer_search(objective, decode, 3, cfg.search_budget, cfg.seed)
        say("random search: same budget and split, its own random stream")
        rnd = random_search(objective, decode, 3, cfg.search_budget, cfg.seed + 1)
        report = {"rda": rda.to_dict(), "random": rnd.to_dict(), "space": space}
        say(
            f"best validation loss: RDA {rda.best.loss:.4f} {rda.best.params}; "
            f"random {rnd.best.loss:.4f} {rnd.best.params}; training with RDA's"
        )
        return rda.best.params, report
