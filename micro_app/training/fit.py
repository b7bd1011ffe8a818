"""Keras training of one run: compile on the distribution strategy, the tf.data inputs,
the fit with the best-validation-loss weights kept, and the RDA hyperparameter search.
``TrainingRun`` (``run.py``) mixes this in; it provides ``cfg``, ``arch``, ``classes``,
``input_size``, ``hyper``, ``strategy`` and ``card()``."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from micro_app.core.errors import SettingsError
from micro_app.core.models.card import ModelCard
from micro_app.training import finetune
from micro_app.training.config import RunData, TrainConfig
from micro_app.training.pipeline import class_weights, make_dataset
from micro_app.training.reproducible import determinism_note, seeded


class KerasFitting:
    cfg: TrainConfig
    arch: Any
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    hyper: dict[str, Any]
    strategy: Any

    def card(self, architecture_name: str, extra: dict[str, Any]) -> ModelCard:
        raise NotImplementedError

    def _build(self, options: dict[str, Any]) -> Any:
        with self.strategy.scope():
            return self.arch.build(len(self.classes), self.input_size, self.cfg.weights, **options)

    def _compile_model(self, model: Any, lr: float) -> None:
        """(Re)compile ``model`` with a new optimizer at ``lr``: after the trainable layers
        changed, Keras needs it."""
        import keras
        import tensorflow as tf

        binary = int(model.output_shape[-1]) == 1
        with self.strategy.scope():
            model.compile(
                optimizer=keras.optimizers.Adam(lr),
                loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
                metrics=["accuracy"],
                jit_compile=bool(tf.config.list_physical_devices("GPU")),
            )

    def _compile(self, options: dict[str, Any], lr: float) -> Any:
        model = self._build(options)
        self._compile_model(model, lr)
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

        seeded(self.cfg.seed)
        model = self._build(options)
        binary = int(model.output_shape[-1]) == 1
        card = self.card(self.arch.name, {})
        train_ds, val_ds = self._datasets(data, hyper["batch_size"], binary, card)
        monitor = "val_loss" if val_ds is not None else "loss"
        stages = finetune.plan(
            finetune.is_pretrained(model),
            hyper["epochs"],
            hyper["learning_rate"],
            self.cfg.warmup_epochs,
            self.cfg.fine_tune_lr,
        )
        verbose = self.cfg.verbose
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2
        train_labels = data.training_set()[2]
        cw = class_weights(train_labels, len(self.classes)) if self.cfg.use_class_weights else None
        say(
            f"{self.arch.name}: {model.count_params():,} parameters; up to {hyper['epochs']} "
            f"epochs, batch {hyper['batch_size']}; "
            + "; ".join(f"{st.name} {st.epochs} at {st.learning_rate:g}" for st in stages)
        )
        if len(stages) > 1:
            say(
                f"pretrained weights: the new head alone for {stages[0].epochs} epochs, then "
                "every layer at three tenths of the rate with batch normalisation in inference mode"
            )

        def fit(m: Any, start: int, stop: int, callbacks: list[Any]) -> dict[str, list[float]]:
            hist = m.fit(
                train_ds,
                validation_data=val_ds,
                initial_epoch=start,
                epochs=stop,
                class_weight=cw,
                callbacks=callbacks,
                verbose=verbose,
                shuffle=False,  # the dataset shuffles itself
            )
            return dict(hist.history)

        def judged() -> list[Any]:
            return [
                keras.callbacks.EarlyStopping(monitor=monitor, patience=self.cfg.patience),
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor, factor=0.5, patience=self.cfg.lr_patience, min_lr=1e-7
                ),
            ]

        history, kept, value = finetune.fit_stages(
            model, stages, self._compile_model, fit, monitor=monitor, judged_callbacks=judged
        )
        warm = stages[0].epochs if len(stages) > 1 else 0
        say(
            f"kept the weights of epoch {kept + 1} ({monitor} {value:.4f})"
            + (f"; epochs 1-{warm} (the head's warm-up) were not eligible" if warm else "")
        )
        fit_check = finetune.fitness(history, kept, len(self.classes))
        clean = keras.models.clone_model(model)  # saved without the optimizer state
        clean.set_weights(model.get_weights())
        info = {
            "epochs_run": len(history.get("loss", [])),
            "best_epoch": kept + 1,
            "stages": [asdict(st) for st in stages],
            "deterministic": determinism_note(),
        }
        if fit_check is not None:
            info["fitness"] = fit_check
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
        space = self.arch.search_space

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
