"""``micro-app train DATASET --arch NAME --out DIR``: a model package from a folder of
class folders.

Steps: read and hash every image once; group exact and near copies; split stratified by
class over the groups (60/20/20 by default, or k folds); train with augmentation on the
training split only, class weights, the lowest-validation-loss weights kept, early
stopping and a learning-rate schedule (or fit a classical head on CNN features); write
the package (card, weights, ``split.json``, history and curves); then score the test split
through the app's inference path and put the metrics in the card.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.errors import ModelPackageError, SettingsError
from micro_app.core.models.architectures import architecture, feature_extractor
from micro_app.core.models.card import CARD_FILE, SCOPES, CropSpec, ModelCard, Preprocessing
from micro_app.core.models.package import load_package, save_package
from micro_app.core.stain import STAIN_MODES, StainReference
from micro_app.training import split as splits
from micro_app.training.augment import Augment
from micro_app.training.dataset import (
    KNOWN_CROP_UM,
    dataset_info,
    duplicate_groups,
    list_dataset,
    read_samples,
    subsample,
)
from micro_app.training.pipeline import choose_strategy, class_weights, is_chief, make_dataset

log = logging.getLogger("micro_app")
DEFAULTS = {"epochs": 30, "batch_size": 32, "learning_rate": 1e-3}
SEARCHES = ("rda",)


@dataclass(frozen=True)
class TrainConfig:
    dataset: Path
    arch: str
    out: Path
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    input_size: tuple[int, int] | None = None
    val_split: float = 0.2
    test_split: float = 0.2
    folds: int | None = None
    seed: int = 0
    weights: str | None = None
    classes: tuple[str, ...] | None = None
    max_per_class: int | None = None
    median: bool | None = None
    sharpen: bool | None = None
    hsv: bool | None = None
    augment: Augment = field(default_factory=Augment)
    use_class_weights: bool = True
    patience: int = 6
    lr_patience: int = 3
    name: str | None = None
    version: str = "1.0.0"
    data_name: str | None = None
    data_licence: str | None = None
    data_citation: str | None = None
    search: str | None = None
    search_budget: int = 10
    search_epochs: int = 3
    head: str | None = None
    features_from: Path | None = None
    cv_folds: int = 10
    unidentified_threshold: float | None = None
    target_accuracy: float = 0.99  # the threshold is chosen to reach it on validation
    calibrate: bool = True  # temperature, threshold and appearance from the validation split
    scope: str = "cell"  # "field": the model classifies whole frames
    crop_um: float | None = None  # side of the training crops in µm (cell scope)
    stain: str = "none"  # "reinhard": colour-normalise to the training images' statistics
    # training crops per class carried in the package for later teaching (0: none, for data
    # whose licence forbids sharing images)
    replay_per_class: int = 32
    arch_options: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    verbose: int | None = None  # Keras: 1 progress bar, 2 a line per epoch; None: by terminal

    def __post_init__(self) -> None:
        def positive(name: str, value: object) -> None:
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SettingsError(f"{name} must be a positive integer, got {value!r}")

        positive("epochs", self.epochs)
        positive("batch size", self.batch_size)
        positive("max per class", self.max_per_class)
        positive("search budget", self.search_budget)
        positive("search epochs", self.search_epochs)
        if not isinstance(self.replay_per_class, int) or not 0 <= self.replay_per_class <= 1000:
            raise SettingsError(f"replay per class must be 0..1000, got {self.replay_per_class!r}")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise SettingsError(f"learning rate must be in (0, 1), got {self.learning_rate!r}")
        if not 0 <= self.val_split < 1 or not 0 < self.test_split < 1:
            raise SettingsError(
                f"val and test splits must be shares in [0, 1), got {self.val_split}, "
                f"{self.test_split}"
            )
        if self.val_split + self.test_split >= 1:
            raise SettingsError(
                f"val + test splits must leave images to train on, got "
                f"{self.val_split} + {self.test_split}"
            )
        if self.folds is not None and not 2 <= self.folds <= 50:
            raise SettingsError(f"folds must be 2..50, got {self.folds!r}")
        if self.search is not None and self.search not in SEARCHES:
            raise SettingsError(f"search must be one of {SEARCHES}, got {self.search!r}")
        if self.search is not None and self.arch != "drnn":
            raise SettingsError(f"the RDA search tunes drnn only, got --arch {self.arch!r}")
        if self.search is not None and self.head is not None:
            raise SettingsError("choose either a hyperparameter search or a classical head")
        t = self.unidentified_threshold
        if t is not None and not 0 <= t <= 1:
            raise SettingsError(f"unidentified threshold must be 0..1, got {t!r}")
        if not 0.5 <= self.target_accuracy <= 1:
            raise SettingsError(f"target accuracy must be 0.5..1, got {self.target_accuracy!r}")
        if self.scope not in SCOPES:
            raise SettingsError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if self.crop_um is not None and not 1 <= self.crop_um <= 500:
            raise SettingsError(f"crop size must be 1..500 µm, got {self.crop_um!r}")
        if self.stain not in STAIN_MODES:
            raise SettingsError(f"stain must be one of {STAIN_MODES}, got {self.stain!r}")


@dataclass
class TrainResult:
    package: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    extra: dict[str, Any] = field(default_factory=dict)


def train(cfg: TrainConfig, say: Callable[[str], None] = print) -> TrainResult:
    import keras

    out = Path(cfg.out)
    if out.exists() and not cfg.overwrite:
        raise ModelPackageError(f"{out} already exists: choose a new output folder or --overwrite")
    keras.utils.set_random_seed(cfg.seed)
    arch = architecture(cfg.arch)
    source = load_package(cfg.features_from) if cfg.features_from else None
    if source is not None and cfg.head is None:
        raise SettingsError("--features-from needs --head: it fits a classical head on features")
    input_size = source.card.input_size if source else cfg.input_size or arch.default_input
    base_prep = source.card.preprocessing if source else arch.preprocessing
    prep = Preprocessing(
        median=base_prep.median if cfg.median is None else cfg.median,
        sharpen=base_prep.sharpen if cfg.sharpen is None else cfg.sharpen,
        hsv=base_prep.hsv if cfg.hsv is None else cfg.hsv,
        normalisation=base_prep.normalisation,
        stain=base_prep.stain if source else cfg.stain,
        stain_reference=base_prep.stain_reference if source else None,
    )
    if source and prep != base_prep:
        raise SettingsError("--features-from keeps that package's preprocessing: drop the flags")
    hyper = _hyper(cfg, arch)

    items = list_dataset(cfg.dataset, list(cfg.classes) if cfg.classes else None)
    items = subsample(items, cfg.max_per_class, cfg.seed)
    say(f"reading {len(items)} images of {cfg.dataset} at {input_size[0]}x{input_size[1]}")
    samples, images = read_samples(cfg.dataset, items, input_size)
    assert images is not None
    classes = tuple(sorted({s.label for s in samples}))
    labels = np.array([classes.index(s.label) for s in samples], int)
    groups = duplicate_groups(samples)
    n_shared = int(np.sum(np.bincount(groups)[groups] > 1))
    say(f"{len(classes)} classes {list(classes)}; {n_shared} images in duplicate groups")
    lab_list = [s.label for s in samples]
    if cfg.folds:
        fold = splits.stratified_folds(lab_list, groups, cfg.folds, cfg.seed)
        runs = [splits.fold_sides(fold, cfg.folds, i) for i in range(cfg.folds)]
        split_meta = {"method": f"stratified group {cfg.folds}-fold", "seed": cfg.seed}
    else:
        runs = [splits.stratified_split(lab_list, groups, cfg.val_split, cfg.test_split, cfg.seed)]
        split_meta = {
            "method": "stratified group split",
            "seed": cfg.seed,
            "shares": {
                "train": round(1 - cfg.val_split - cfg.test_split, 4),
                "val": cfg.val_split,
                "test": cfg.test_split,
            },
        }
    strategy, strategy_name = choose_strategy()
    say(f"training on {strategy_name}")
    info = dataset_info(
        cfg.dataset,
        {"name": cfg.data_name, "licence": cfg.data_licence, "citation": cfg.data_citation},
    )
    if source is not None:
        _check_features_split(source.path, samples, runs)
    results: list[TrainResult] = []
    for k, sides in enumerate(runs):
        meta = dict(split_meta, **({"fold": k} if cfg.folds else {}))
        record = splits.split_record(cfg.dataset, samples, sides, groups, meta)
        target = out if k == 0 and is_chief() else Path(tempfile.mkdtemp(prefix="fold")) / "pkg"
        if cfg.folds:
            say(f"fold {k + 1}/{cfg.folds}")
        ctx = _Run(cfg, arch, source, classes, input_size, prep, hyper, info, strategy)
        res = ctx.run(images, labels, np.array(sides), record, target, say)
        results.append(res)
        if target != out:
            shutil.rmtree(target.parent, ignore_errors=True)
    final = results[0]
    if cfg.folds:
        cv = _cv_summary([r.metrics for r in results])
        card = ModelCard.read(out)
        metrics = dict(card.metrics, cross_validation=cv)
        atomic_write_json(out / CARD_FILE, replace(card, metrics=metrics).to_dict())
        final.metrics = metrics
        say(
            f"{cfg.folds}-fold: accuracy {cv['accuracy_mean']:.4f} +/- {cv['accuracy_std']:.4f}; "
            f"the package holds fold 1's model"
        )
    return final


def _check_features_split(source: Path, samples: list[Any], runs: list[list[str]]) -> None:
    """Refuse a test image that trained the CNN whose features the head uses."""
    path = Path(source) / splits.SPLIT_FILE
    if not path.is_file():
        return
    seen = {e["sha256"] for e in splits.read_split(path)["images"] if e["split"] != "test"}
    for sides in runs:
        leaked = sum(
            1 for s, side in zip(samples, sides, strict=True) if side == "test" and s.sha256 in seen
        )
        if leaked:
            raise SettingsError(
                f"{leaked} test images of this split trained the CNN of {source}: use the same "
                "dataset, --classes, --max-per-class, --seed and split options as its training"
            )


def _hyper(cfg: TrainConfig, arch: Any) -> dict[str, Any]:
    fine = getattr(arch.module, "FINE_TUNE", {})
    return {
        "epochs": cfg.epochs or fine.get("epochs", DEFAULTS["epochs"]),
        "batch_size": cfg.batch_size or fine.get("batch_size", DEFAULTS["batch_size"]),
        "learning_rate": cfg.learning_rate or fine.get("learning_rate", DEFAULTS["learning_rate"]),
    }


def _cv_summary(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    acc = np.array([m["test"]["accuracy"] for m in per_fold])
    f1 = np.array([m["test"]["macro_f1"] for m in per_fold])
    return {
        "folds": len(per_fold),
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": float(acc.std()),
        "macro_f1_mean": float(f1.mean()),
        "macro_f1_std": float(f1.std()),
        "fold_accuracy": acc.tolist(),
    }


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


@dataclass
class _Run:
    cfg: TrainConfig
    arch: Any
    source: Any
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    prep: Preprocessing
    hyper: dict[str, Any]
    info: dict[str, Any]
    strategy: Any

    def card(self, architecture_name: str, extra: dict[str, Any]) -> ModelCard:
        cfg = self.cfg
        crop_um = cfg.crop_um
        if crop_um is None and cfg.scope == "cell":
            crop_um = KNOWN_CROP_UM.get(Path(cfg.dataset).resolve().name.lower())
        return ModelCard(
            name=cfg.name or f"{architecture_name}-{Path(cfg.dataset).name}",
            version=cfg.version,
            classes=self.classes,
            scope=cfg.scope,
            crop=CropSpec(size_um=crop_um),
            input_size=self.input_size,
            colour_order=self.source.card.colour_order if self.source else self.arch.colour_order,
            preprocessing=self.prep,
            architecture=architecture_name,
            description=f"{architecture_name} trained by micro-app train on "
            f"{Path(cfg.dataset).name}",
            training_data=self.info,
            unidentified_threshold=cfg.unidentified_threshold,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            extra=extra,
        )

    def run(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        sides: np.ndarray,
        record: dict[str, Any],
        target: Path,
        say: Callable[[str], None],
    ) -> TrainResult:
        tr, va, te = (np.flatnonzero(sides == s) for s in splits.SIDES)
        say(f"split: {len(tr)} train, {len(va)} validation, {len(te)} test images")
        if len(tr) == 0 or len(te) == 0:
            raise SettingsError("the split left no training or no test images: add images")
        if self.prep.stain != "none" and self.prep.stain_reference is None:
            ref = StainReference.from_images(images[tr])
            self.prep = replace(self.prep, stain_reference=ref.to_dict())
            say(f"stain reference ({self.prep.stain}) from the training split: {ref.to_dict()}")
        record["training_data"] = self.info
        work = Path(tempfile.mkdtemp(prefix="micro_app_train_"))
        try:
            files = {splits.SPLIT_FILE: splits.write_split(work / splits.SPLIT_FILE, record)}
            extra: dict[str, Any] = {"split": splits.SPLIT_FILE}
            if self.cfg.replay_per_class and self.cfg.scope == "cell":
                extra["replay"] = self._replay(images[tr], labels[tr], work, files, record)
            head = None
            history: dict[str, list[float]] = {}
            if self.cfg.head:
                model, head, arch_name, more = self._classical(images, labels, tr, va, say)
                extra.update(more)
            else:
                options = dict(self.cfg.arch_options)
                hyper = dict(self.hyper)
                if self.cfg.search:
                    best, search = self._search(images, labels, tr, va, say)
                    options.update(layers=best["layers"], units=best["units"])
                    hyper["learning_rate"] = best["learning_rate"]
                    files["search.json"] = atomic_write_json(work / "search.json", search)
                    extra["search"] = {
                        m: {k: search[m][k] for k in ("best_params", "best_loss", "evaluations")}
                        for m in ("rda", "random")
                    }
                model, history, epochs_info = self._fit(images, labels, tr, va, options, hyper, say)
                arch_name = self.arch.name
                extra["training"] = {
                    **hyper,
                    **epochs_info,
                    "arch_options": options,
                    "augmentation": self.cfg.augment.to_dict(),
                    "class_weights": self.cfg.use_class_weights,
                    "weights_init": self.cfg.weights or "random",
                    "seed": self.cfg.seed,
                }
                files["history.json"] = atomic_write_json(work / "history.json", history)
                from micro_app.training.plots import training_curves

                files["training_curves.png"] = training_curves(
                    history,
                    work / "training_curves.png",
                    f"{arch_name} on {record['dataset_name']}",
                )
            card = self.card(arch_name, extra)
            save_package(model, card, target, overwrite=True, head=head, files=files)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if self.cfg.calibrate:
            self._calibrate(target, images, labels, tr, va, say)
        metrics = self._score(target, images[te], labels[te], say)
        return TrainResult(target, metrics, history, extra)

    def _replay(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        work: Path,
        files: dict[str, Path],
        record: dict[str, Any],
    ) -> dict[str, Any]:
        """A sample of the training split for the package, so that teaching the model on a
        lab's cells later does not make it forget (``micro_app.adapt.replay``)."""
        from micro_app.adapt import replay as rp

        sample = rp.sample(images, labels, self.classes, self.cfg.replay_per_class, self.cfg.seed)
        files[rp.REPLAY_FILE] = sample.save(work / rp.REPLAY_FILE)
        return rp.replay_entry(
            sample, files[rp.REPLAY_FILE], f"training split of {record['dataset_name']}"
        )

    def _calibrate(
        self,
        folder: Path,
        images: np.ndarray,
        labels: np.ndarray,
        tr: np.ndarray,
        va: np.ndarray,
        say: Callable[[str], None],
    ) -> None:
        from micro_app.core.models.classifier import Classifier
        from micro_app.training.calibrate import calibrate_package
        from micro_app.training.evaluate import predict_images

        probs = predict_images(Classifier(load_package(folder)), images[va])
        c = calibrate_package(
            folder,
            probs,
            labels[va],
            images[tr],
            images[va],
            fixed_threshold=self.cfg.unidentified_threshold,
            target_accuracy=self.cfg.target_accuracy,
        )
        th = c["threshold"]
        ece = (
            f"; validation ECE {c['validation_ece_before']:.4f} -> {c['validation_ece_after']:.4f}"
            if "validation_ece_before" in c
            else ""
        )
        withheld = (
            f", withholding {th['validation_withheld']:.1%} of validation cells "
            f"(accuracy of the rest {th['validation_accuracy_kept']:.4f})"
            if "validation_withheld" in th
            else ""
        )
        t = th["threshold"]
        say(f"temperature {c['temperature']:g}{ece}; unidentified below {t}{withheld}")

    # -- Keras training -----------------------------------------------------------------
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
        self,
        images: np.ndarray,
        labels: np.ndarray,
        tr: np.ndarray,
        va: np.ndarray,
        batch: int,
        binary: bool,
        card: ModelCard,
    ) -> tuple[Any, Any]:
        train_ds = make_dataset(
            images[tr],
            labels[tr],
            card,
            batch,
            augment=self.cfg.augment,
            shuffle=True,
            seed=self.cfg.seed,
            binary=binary,
        )
        val_ds = (
            make_dataset(images[va], labels[va], card, batch, binary=binary) if len(va) else None
        )
        return train_ds, val_ds

    def _fit(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        tr: np.ndarray,
        va: np.ndarray,
        options: dict[str, Any],
        hyper: dict[str, Any],
        say: Callable[[str], None],
    ) -> tuple[Any, dict[str, list[float]], dict[str, Any]]:
        import keras

        model = self._compile(options, hyper["learning_rate"])
        binary = int(model.output_shape[-1]) == 1
        card = self.card(self.arch.name, {})
        train_ds, val_ds = self._datasets(images, labels, tr, va, hyper["batch_size"], binary, card)
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
        cw = class_weights(labels[tr], len(self.classes)) if self.cfg.use_class_weights else None
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
        self,
        images: np.ndarray,
        labels: np.ndarray,
        tr: np.ndarray,
        va: np.ndarray,
        say: Callable[[str], None],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from micro_app.training.search import random_search, red_deer_search

        if len(va) == 0:
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
            train_ds, val_ds = self._datasets(
                images, labels, tr, va, self.hyper["batch_size"], False, card
            )
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

    # -- classical heads ----------------------------------------------------------------
    def _classical(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        tr: np.ndarray,
        va: np.ndarray,
        say: Callable[[str], None],
    ) -> tuple[Any, Any, str, dict[str, Any]]:
        from micro_app.training.classical import HEADS, cross_validate, fit_head
        from micro_app.training.pipeline import predict_features

        cfg = self.cfg
        if self.source is not None:
            base, base_name = self.source.model, self.source.card.architecture or "cnn"
            if self.source.head is not None:
                raise SettingsError("--features-from needs a package without a classical head")
        else:
            base = self.arch.build(
                len(self.classes), self.input_size, cfg.weights, **cfg.arch_options
            )
            base_name = self.arch.name
            if cfg.weights is None:
                say(
                    "note: features of a randomly initialised CNN; use --weights imagenet or "
                    "--features-from a trained package for learned features"
                )
        extractor = feature_extractor(base)
        card = self.card(base_name, {})
        idx = np.concatenate([tr, va])
        say(f"features of {len(idx)} training + validation images from {base_name}")
        feats = predict_features(extractor, images[idx], card).reshape(len(idx), -1)
        names = list(HEADS) if cfg.head == "best" else [str(cfg.head)]
        cv = cross_validate(feats, labels[idx], names, cfg.cv_folds, cfg.seed)
        for name, r in cv.items():
            say(
                f"  {name:<13} {r['folds']}-fold accuracy {r['accuracy_mean']:.4f} "
                f"+/- {r['accuracy_std']:.4f}"
            )
        chosen = max(cv, key=lambda n: cv[n]["accuracy_mean"])
        head, _ = fit_head(chosen, feats, labels[idx], self.classes, cfg.seed)
        say(f"head: {chosen} on {feats.shape[1]} features")
        more = {"classical": {"head": chosen, "features": base_name, "cross_validation": cv}}
        return extractor, head, f"{base_name}+{chosen}", more

    # -- scoring ------------------------------------------------------------------------
    def _score(
        self, folder: Path, images: np.ndarray, labels: np.ndarray, say: Callable[[str], None]
    ) -> dict[str, Any]:
        """Score the test split through the app's inference path and put it in the card."""
        from micro_app.core.models.classifier import Classifier
        from micro_app.training.evaluate import predict_images
        from micro_app.training.metrics import classification_report
        from micro_app.training.plots import confusion_matrix_png

        pkg = load_package(folder)
        probs = predict_images(Classifier(pkg), images)
        t = pkg.card.unidentified_threshold
        report = classification_report(labels, probs, pkg.card.classes, 0.5 if t is None else t)
        report["note"] = (
            "test split of the training dataset; no patient identifiers, so a random split "
            "can put one patient's cells on both sides and the score is optimistic"
        )
        metrics = dict(pkg.card.metrics, test=report)
        atomic_write_json(folder / CARD_FILE, replace(pkg.card, metrics=metrics).to_dict())
        confusion_matrix_png(
            report["confusion_matrix"],
            list(pkg.card.classes),
            folder / "test_confusion_matrix.png",
            f"{pkg.card.name}: test split",
        )
        atomic_write_json(folder / "test_metrics.json", report)
        say(
            f"test split: accuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f} "
            f"on {report['n_images']} images -> {folder}"
        )
        return metrics


def describe_architectures() -> list[str]:
    from micro_app.core.models.architectures import NAMES

    lines = []
    for name in NAMES:
        a = architecture(name)
        h, w = a.default_input
        imagenet = "imagenet" if a.imagenet_file else "-"
        lines.append(f"{name:<26}{h}x{w:<6}{imagenet:<10}{a.description}")
    return lines
