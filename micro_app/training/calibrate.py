"""After training, on the validation split only: fit the softmax temperature, choose the
``unidentified`` threshold, and record what the training images looked like.

- Temperature scaling (Guo et al. 2017): one scalar T, ``softmax(logits / T)``, chosen by
  the lowest negative log-likelihood of the validation images; it changes confidences,
  never the predicted class.
- Threshold: the lowest top-class probability at which the validation cells kept reach
  ``target_accuracy``, withholding at most ``max_withheld`` of them.
- Appearance (``core.appearance``): centre and spread of the training images' colour and
  nucleus numbers, per source: the dataset (the validation images' 99th percentile as
  threshold) and each ``--extra-train`` set (its own cells, a third held out for the
  threshold), so that a cell like any one source is not "unlike the training images".
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.appearance import Appearance, AppearanceStats, features_batch, fit_source
from micro_app.core.atomic import atomic_write_json
from micro_app.core.models.card import CARD_FILE, ModelCard
from micro_app.core.models.classifier import apply_temperature

TEMPERATURES = np.round(np.exp(np.linspace(np.log(0.25), np.log(8.0), 121)), 4)
THRESHOLDS = np.round(np.arange(0.30, 0.991, 0.01), 2)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    return float(-np.mean(np.log(p)))


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature with the lowest validation NLL (1.0 when there is nothing to fit)."""
    if len(labels) == 0 or probs.shape[1] < 2:
        return 1.0
    losses = [nll(apply_temperature(probs, float(t)), labels) for t in TEMPERATURES]
    best = float(TEMPERATURES[int(np.argmin(losses))])
    return best if nll(apply_temperature(probs, best), labels) < nll(probs, labels) else 1.0


def choose_threshold(
    probs: np.ndarray,
    labels: np.ndarray,
    target_accuracy: float = 0.99,
    max_withheld: float = 0.15,
) -> dict[str, Any]:
    """Lowest threshold whose kept validation cells reach ``target_accuracy``; if none does
    within ``max_withheld``, the threshold that withholds about ``max_withheld``."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    chosen, rule = None, "target"
    for t in THRESHOLDS:
        kept = conf >= t
        withheld = 1.0 - kept.mean()
        if withheld > max_withheld:
            break
        if kept.any() and right[kept].mean() >= target_accuracy:
            chosen = float(t)
            break
    if chosen is None:
        rule = "max_withheld"
        ok = [float(t) for t in THRESHOLDS if 1.0 - (conf >= t).mean() <= max_withheld]
        chosen = max(ok) if ok else float(THRESHOLDS[0])
    kept = conf >= chosen
    return {
        "threshold": chosen,
        "rule": rule,
        "target_accuracy": target_accuracy,
        "max_withheld": max_withheld,
        "validation_withheld": float(1.0 - kept.mean()),
        "validation_accuracy_kept": float(right[kept].mean()) if kept.any() else 0.0,
        "validation_accuracy_all": float(right.mean()),
    }


def calibrate_package(
    folder: Path,
    raw_val_probs: np.ndarray,
    val_labels: np.ndarray,
    train_images: np.ndarray,
    val_images: np.ndarray,
    *,
    fixed_threshold: float | None = None,
    target_accuracy: float = 0.99,
    source_name: str = "training images",
    extra_sources: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Write temperature, threshold and appearance into the package's card; return a
    summary for the training log. ``raw_val_probs`` come from the uncalibrated model.
    ``train_images``/``val_images`` describe the dataset (``source_name``);
    ``extra_sources``: name -> images of each other source the model trained on."""
    from micro_app.training.metrics import expected_calibration_error

    card = ModelCard.read(folder)
    t = fit_temperature(raw_val_probs, val_labels) if len(val_labels) else 1.0
    probs = apply_temperature(raw_val_probs, t)
    summary: dict[str, Any] = {"temperature": t}
    if len(val_labels):
        summary["validation_ece_before"] = expected_calibration_error(raw_val_probs, val_labels)
        summary["validation_ece_after"] = expected_calibration_error(probs, val_labels)
    if fixed_threshold is not None:
        threshold = fixed_threshold
        summary["threshold"] = {"threshold": fixed_threshold, "rule": "given"}
    elif len(val_labels):
        choice = choose_threshold(probs, val_labels, target_accuracy)
        threshold = choice["threshold"]
        summary["threshold"] = choice
    else:
        threshold = card.unidentified_threshold if card.unidentified_threshold is not None else 0.5
        summary["threshold"] = {"threshold": threshold, "rule": "default (no validation split)"}
    stats = AppearanceStats.fit(
        features_batch(train_images), features_batch(val_images) if len(val_images) else None
    )
    appearance = Appearance.single(source_name, stats)
    for name, images in (extra_sources or {}).items():
        if len(images) >= 2:
            appearance = appearance.with_source(name, fit_source(features_batch(images)))
    summary["appearance_sources"] = list(appearance.names)
    metrics = dict(card.metrics, calibration=summary)
    new = replace(
        card,
        temperature=t,
        unidentified_threshold=threshold,
        appearance=appearance.to_dict(),
        metrics=metrics,
    )
    atomic_write_json(Path(folder) / CARD_FILE, new.to_dict())
    return summary
