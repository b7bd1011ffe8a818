"""Calibrate a model to this microscope without labels.

The user points the camera at a few fields (or gives a folder of images); the app locates
the white cells exactly as it does live, cuts them as the model sees them, and writes a
new package derived from the model: its batch-normalisation statistics re-estimated on
those cells (``adapt.batchnorm``) where that is safe (``adapt.guard``: otherwise the
parent's normalisation stays), this microscope added as a source of the "unlike the
training images" check (a cell like this microscope's is no longer provisional), and a
card recording the parent, the number of images and cells, their colour statistics, the
guard's numbers and the date. The learned weights, the stain reference, the temperature
and the threshold are the parent's.

A calibrated model is not a validated one: no label was used, so the card says
``validated: false`` until cells the lab labelled measure it (``adapt.teach``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.adapt import library
from micro_app.adapt.batchnorm import recalibrate_batchnorm
from micro_app.adapt.guard import normalisation_check
from micro_app.adapt.openset_refit import refit_open_set
from micro_app.core.appearance import Appearance, features_batch, fit_source
from micro_app.core.engine import Engine
from micro_app.core.errors import InputError
from micro_app.core.models.classifier import prepare_batch
from micro_app.core.models.package import ModelPackage, load_package, save_package
from micro_app.core.models.replay import REPLAY_FILE
from micro_app.core.stain import StainReference
from micro_app.training.export import export_beside_keras
from micro_app.training.pipeline import predict_features

log = logging.getLogger("micro_app")
MIN_CELLS = 20  # fewer cells give batch statistics too noisy to trust
ADVISED_CELLS = 150
PACKAGE_FILES = (REPLAY_FILE, "split.json")  # carried from parent to child


def collect_cells(engine: Engine, images: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """The located cells of each image, cut as the engine's model sees them, and the
    number of images read."""
    crops, n = [], 0
    for image in images:
        crops.append(engine.crops(image))
        n += 1
    h, w = engine.classifier.card.input_size if engine.classifier else (0, 0)
    return (np.concatenate(crops) if crops else np.zeros((0, h, w, 3), np.uint8)), n


def check_enough(n_cells: int, n_images: int, min_cells: int = MIN_CELLS) -> None:
    if n_cells < min_cells:
        raise InputError(
            f"only {n_cells} white cells found in {n_images} images: calibration needs at "
            f"least {min_cells} (about {ADVISED_CELLS} is better); add more fields"
        )


THIS_MICROSCOPE = "this microscope"


def appearance_for(
    parent: dict[str, Any] | None, feats: np.ndarray, name: str = THIS_MICROSCOPE, seed: int = 0
) -> Appearance:
    """The parent's appearance sources with this microscope's cells (their
    ``features_batch``) added as one more (or replacing an earlier set-up of the same)."""
    stats = fit_source(feats, seed)
    if parent is None:
        return Appearance.single(name, stats)
    return Appearance.from_dict(parent).with_source(name, stats)


def calibrate(
    parent: ModelPackage,
    crops: np.ndarray,
    out: Path | None = None,
    *,
    n_images: int,
    library_root: Path | None = None,
    seed: int = 0,
    progress: Callable[[str, float], None] | None = None,
    min_cells: int = MIN_CELLS,
    source_name: str = THIS_MICROSCOPE,
    cancel: threading.Event | None = None,
) -> library.NewVersion:
    """Write a package derived from ``parent`` and calibrated to ``crops`` (uint8 cells
    at the model input, as ``collect_cells`` gives them). ``out``: the package folder;
    None puts it in the library as its next version. ``source_name``: how the
    appearance check names this microscope. ``cancel``: set it to stop before anything
    is written (``library.Cancelled`` is raised)."""
    card = parent.card
    if card.scope != "cell":
        raise InputError("calibration adapts cell models; this model classifies whole fields")
    check_enough(len(crops), n_images, min_cells)
    tell = progress or (lambda _text, _share: None)

    def say(text: str, share: float) -> None:
        if cancel is not None and cancel.is_set() and share < 0.85:
            raise library.Cancelled("calibration was stopped; nothing was written")
        tell(text, share)

    say("reading the model", 0.05)
    work = load_package(parent.path)  # a fresh copy: the running model is never touched
    feats = features_batch(crops)
    before = _unlike_share(card.appearance, feats)
    say(f"re-estimating normalisation on {len(crops)} cells", 0.15)
    probs_before = predict_features(work.model, crops, card)
    layers = recalibrate_batchnorm(
        work.model,
        prepare_batch(crops, card),
        seed=seed,
        progress=lambda k, n: say("re-estimating normalisation", 0.15 + 0.55 * k / n),
    )
    guard = normalisation_check(
        probs_before, predict_features(work.model, crops, card), card.classes
    )
    if layers and not guard["keep"]:
        say("calibration would harm this model here: its own normalisation stays", 0.75)
        work = load_package(parent.path)
    stats = appearance_for(card.appearance, feats, source_name, seed)
    colour = StainReference.from_images(crops)
    adaptation = {
        "images": n_images,
        "cells": len(crops),
        "labels_used": 0,
        "validated": False,
        "batchnorm_layers": layers,
        "normalisation": "calibrated" if guard["keep"] or not layers else "parent",
        "guard": guard,
        "colour_lab": colour.to_dict(),
        "unlike_share_before": before,
        "unlike_share_after": _unlike_share(stats.to_dict(), feats),
        "appearance_source": source_name,
        "note": "batch-normalisation and appearance statistics re-estimated on this "
        "microscope's cells without labels; accuracy here is unmeasured until labelled "
        "cells are checked",
    }
    if layers and not guard["keep"]:
        adaptation["note"] = (
            f"the parent's normalisation was kept: {guard['reason']}; this microscope was "
            "added to the unlike-the-training-images check; no labels were used"
        )
    if not layers:
        adaptation["note"] = (
            "this network has no batch normalisation: only the appearance statistics were "
            "re-estimated; accuracy here is unmeasured"
        )
    version, default_out = library.next_version(card, library_root)
    target = Path(out) if out is not None else default_out
    new_card = library.derived_card(
        parent.path,
        card,
        "calibration",
        adaptation,
        version=version,
        appearance=stats.to_dict(),
    )
    say("writing the package", 0.85)
    save_derived(work.model, new_card, target, parent.path)
    say("re-fitting the check for cells unlike every class", 0.9)
    refit_open_set(target, seed=seed)
    say("adding ONNX weights", 0.95)
    export_beside_keras(target, lambda text: log.info("%s", text))
    say("done", 1.0)
    log.info(
        "calibrated %s on %d cells of %d images -> %s", card.name, len(crops), n_images, target
    )
    return library.NewVersion(target, version, adaptation)


def save_derived(model: Any, card: Any, target: Path, parent_folder: Path) -> Path:
    """Save a derived package, never over an existing folder, with the parent's replay
    set and split carried over (the card's sha256 of the replay file stays valid)."""
    parent_folder = Path(parent_folder)
    files = {n: parent_folder / n for n in PACKAGE_FILES if (parent_folder / n).is_file()}
    return save_package(model, card, target, files=files)


def _unlike_share(appearance: dict[str, Any] | None, feats: np.ndarray) -> float | None:
    """Share of cells (their appearance features) the ``appearance`` check flags."""
    if appearance is None or not len(feats):
        return None
    return Appearance.from_dict(appearance).shares(feats)["unlike"]
