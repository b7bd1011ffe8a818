"""What ``micro-app train`` is asked to do (``TrainConfig``), the arrays one training run
gets (``RunData``), and what it gives back (``TrainResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.errors import SettingsError
from micro_app.core.models.card import SCOPES
from micro_app.core.stain import STAIN_MODES
from micro_app.training.augment import Augment

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
    # pretrained weights: epochs that train the new head alone before every layer trains
    # (``training.finetune``; 0: everything from the start, as before version 0.2)
    warmup_epochs: int = 3
    fine_tune_lr: float | None = None  # the rate after the warm-up (default: three tenths)
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
    # given on the command line: a model that misses it, or is not fit to use, exits 1
    require_target: bool = False
    calibrate: bool = True  # temperature, threshold and appearance from the validation split
    scope: str = "cell"  # "field": the model classifies whole frames
    crop_um: float | None = None  # side of the training crops in µm (cell scope)
    stain: str = "none"  # "reinhard": colour-normalise to the training images' statistics
    # another folder of class folders (another lab, camera or stain) used for training only:
    # never in validation, test, calibration or the replay sample; each image ``repeat`` times
    extra_train: Path | None = None
    extra_train_repeat: int = 1
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
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs <= 100:
            raise SettingsError(f"warm-up epochs must be 0..100, got {self.warmup_epochs!r}")
        if self.fine_tune_lr is not None and not 0 < self.fine_tune_lr < 1:
            raise SettingsError(
                f"fine-tuning learning rate must be in (0, 1), got {self.fine_tune_lr!r}"
            )
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
        if not isinstance(self.extra_train_repeat, int) or not 1 <= self.extra_train_repeat <= 100:
            raise SettingsError(
                f"extra training repeat must be 1..100, got {self.extra_train_repeat!r}"
            )
        if self.stain not in STAIN_MODES:
            raise SettingsError(f"stain must be one of {STAIN_MODES}, got {self.stain!r}")


@dataclass
class TrainResult:
    package: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # not fit to use, target missed


@dataclass
class RunData:
    """Every image of the dataset at the model input (``images``), optionally at a higher
    resolution for the simulated camera (``sources``), with its class index and side; and
    the images of ``--extra-train``, which only ever train."""

    images: np.ndarray
    labels: np.ndarray
    sides: np.ndarray
    sources: np.ndarray | None = None
    extra_images: np.ndarray | None = None
    extra_sources: np.ndarray | None = None
    extra_labels: np.ndarray | None = None
    extra_repeat: int = 1

    def side(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.sides == name)

    def training_set(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(images, sources or None, labels)`` of the training split plus the extra
        images, each repeated ``extra_repeat`` times."""
        tr = self.side("train")
        x, y = [self.images[tr]], [self.labels[tr]]
        src = None if self.sources is None else [self.sources[tr]]
        if self.extra_images is not None and self.extra_labels is not None:
            k = self.extra_repeat
            x.append(np.repeat(self.extra_images, k, axis=0))
            y.append(np.repeat(self.extra_labels, k))
            if src is not None and self.extra_sources is not None:
                src.append(np.repeat(self.extra_sources, k, axis=0))
        return (
            np.concatenate(x),
            None if src is None else np.concatenate(src),
            np.concatenate(y),
        )
