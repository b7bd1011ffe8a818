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

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.errors import ModelPackageError, SettingsError
from micro_app.core.models.card import CARD_FILE, ModelCard, Preprocessing
from micro_app.core.models.package import load_package
from micro_app.training import split as splits
from micro_app.training.architectures import architecture
from micro_app.training.config import DEFAULTS, RunData, TrainConfig, TrainResult
from micro_app.training.dataset import (
    dataset_info,
    duplicate_groups,
    list_dataset,
    read_samples_with_sources,
    subsample,
)
from micro_app.training.pipeline import choose_strategy, is_chief
from micro_app.training.run import TrainingRun

__all__ = ["TrainConfig", "TrainResult", "describe_architectures", "train"]


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
    source_size = _source_size(cfg, input_size)
    samples, images, sources = read_samples_with_sources(
        cfg.dataset, items, input_size, source_size=source_size
    )
    assert images is not None
    classes = tuple(sorted({s.label for s in samples}))
    labels = np.array([classes.index(s.label) for s in samples], int)
    extra = _read_extra(cfg, classes, samples, input_size, source_size, say)
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
    if extra is not None:
        info = dict(info, also_trained_on=extra[3])
    imagenet = None
    if cfg.weights == "imagenet" and source is None:
        from micro_app.training.imagenet_weights import ensure_cached, provenance

        ensure_cached(arch.name, say)
        imagenet = provenance(arch.name)
    if source is not None:
        _check_features_split(source.path, samples, runs)
    results: list[TrainResult] = []
    for k, sides in enumerate(runs):
        meta = dict(split_meta, **({"fold": k} if cfg.folds else {}))
        record = splits.split_record(cfg.dataset, samples, sides, groups, meta)
        target = out if k == 0 and is_chief() else Path(tempfile.mkdtemp(prefix="fold")) / "pkg"
        if cfg.folds:
            say(f"fold {k + 1}/{cfg.folds}")
        ctx = TrainingRun(
            cfg, arch, source, classes, input_size, prep, hyper, info, strategy, imagenet
        )
        data = RunData(images, labels, np.array(sides), sources)
        if extra is not None:
            data.extra_images, data.extra_sources, data.extra_labels = extra[:3]
            data.extra_repeat = cfg.extra_train_repeat
        res = ctx.run(data, record, target, say)
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
    fine = arch.fine_tune
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


def _source_size(cfg: TrainConfig, input_size: tuple[int, int]) -> tuple[int, int] | None:
    """Twice the input (at most 512) when the simulated camera is on: its JPEG blocks, noise
    and blur belong to the camera's pixels, which are finer than the model's."""
    if cfg.scope != "cell" or not cfg.augment.camera_params().enabled:
        return None
    return (min(512, 2 * input_size[0]), min(512, 2 * input_size[1]))


def _read_extra(
    cfg: TrainConfig,
    classes: tuple[str, ...],
    samples: list[Any],
    input_size: tuple[int, int],
    source_size: tuple[int, int] | None,
    say: Callable[[str], None],
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, dict[str, Any]] | None:
    """The ``--extra-train`` images (classes must be among the dataset's), their labels and
    the card's note about them; a copy of a dataset image is refused."""
    if cfg.extra_train is None:
        return None
    items = list_dataset(cfg.extra_train)
    unknown = sorted({label for _, label in items} - set(classes))
    if unknown:
        raise SettingsError(
            f"--extra-train {cfg.extra_train} has classes {unknown} that {cfg.dataset} has "
            f"not; rename or remove those folders (known: {', '.join(classes)})"
        )
    found, images, sources = read_samples_with_sources(
        cfg.extra_train, items, input_size, source_size=source_size
    )
    assert images is not None
    known = {s.sha256 for s in samples}
    copies = [s.path for s in found if s.sha256 in known]
    if copies:
        raise SettingsError(
            f"{len(copies)} --extra-train images are copies of {cfg.dataset} images (first: "
            f"{copies[0]}): remove them so that no test image is trained on"
        )
    labels = np.array([classes.index(s.label) for s in found], int)
    counts = {c: int(np.sum(labels == i)) for i, c in enumerate(classes) if np.any(labels == i)}
    say(f"extra training images from {cfg.extra_train}: {counts}")
    note = dict(
        dataset_info(cfg.extra_train),
        images=len(found),
        classes=counts,
        repeat=cfg.extra_train_repeat,
        files=sorted(s.path for s in found),
        use="training split only; never validated, calibrated or tested on",
    )
    return images, sources, labels, note


def describe_architectures() -> list[str]:
    from micro_app.training.architectures import NAMES

    lines = []
    for name in NAMES:
        a = architecture(name)
        h, w = a.default_input
        imagenet = "imagenet" if a.imagenet_file else "-"
        lines.append(f"{name:<26}{h}x{w:<6}{imagenet:<10}{a.description}")
    return lines
