"""Before and after on the lab's held-back cells, and the one-line verdict the user reads.

"Right class" counts a cell withheld as ``unidentified`` as wrong; it is also given per
class and averaged over classes (a lab sees many more neutrophils than monocytes). The
verdict is a paired comparison on the same held-back cells: the cells the new model gets
right that the old did not (gained) against the reverse (lost), judged with an exact
sign test, so that a handful of cells never reads as "better" or "worse" (with four
held-back cells, one of them decided the verdict before).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from micro_app.core.models.classifier import Classifier
from micro_app.core.results import UNIDENTIFIED

MIN_VERDICT_CELLS = 8  # fewer held-back cells cannot tell better from worse
SIGNIFICANCE = 0.2  # two-sided sign test: a gain this unlikely by chance is called real


def predict_all(clf: Classifier, images: np.ndarray, batch: int = 64) -> np.ndarray:
    n = len(clf.classes)
    if len(images) == 0:
        return np.zeros((0, n), np.float32)
    return np.concatenate(
        [clf.predict(images[i : i + batch]) for i in range(0, len(images), batch)]
    )


def right_cells(probs: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Per cell: top class is the label and its probability reaches the threshold."""
    if len(labels) == 0:
        return np.zeros(0, bool)
    return (probs.argmax(axis=1) == labels) & (probs.max(axis=1) >= threshold)


def score_probs(
    probs: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], threshold: float
) -> dict[str, Any]:
    """Right class, per class and class-averaged, right top class, and cells withheld, of
    labelled cells (``labels`` index ``classes``, which may name more classes than the
    model that gave ``probs``: a class it lacks is never right)."""
    if len(labels) == 0:
        return {"cells": 0}
    top = probs.argmax(axis=1)
    kept = probs.max(axis=1) >= threshold
    right = (top == labels) & kept
    per_class = {
        classes[k]: round(float(np.mean(right[labels == k])), 4)
        for k in sorted(set(labels.tolist()))
    }
    return {
        "cells": len(labels),
        "accuracy": round(float(right.mean()), 4),
        "balanced_accuracy": round(float(np.mean(list(per_class.values()))), 4),
        "top_class_accuracy": round(float(np.mean(top == labels)), 4),
        UNIDENTIFIED: int(np.sum(~kept)),
        "recall": per_class,
        "threshold": threshold,
    }


def score_cells(
    clf: Classifier,
    images: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    classes: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    return score_probs(predict_all(clf, images), labels, classes or clf.classes, threshold)


def sign_test(gained: int, lost: int) -> float:
    """Two-sided exact binomial p-value of ``gained`` against ``lost`` at even odds."""
    n = gained + lost
    if n == 0:
        return 1.0
    k = min(gained, lost)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare(right_before: np.ndarray, right_after: np.ndarray) -> dict[str, Any]:
    """The paired comparison of two models on the same held-back cells."""
    gained = int(np.sum(right_after & ~right_before))
    lost = int(np.sum(right_before & ~right_after))
    return {
        "cells": len(right_before),
        "gained": gained,
        "lost": lost,
        "p_value": round(sign_test(gained, lost), 4),
    }


def verdict(change: dict[str, Any]) -> str:
    """One line the user reads before choosing the taught version."""
    n, gained, lost = change["cells"], change["gained"], change["lost"]
    if not n:
        return "not measured (no held-back cells): use it only if you have checked it yourself"
    tally = f"{gained} held-back cells gained, {lost} lost, of {n}"
    if n < MIN_VERDICT_CELLS:
        return (
            f"too few held-back cells to tell ({tally}): label more cells (every fourth of a "
            "class is held back) and teach again before relying on it"
        )
    if gained > lost and change["p_value"] < SIGNIFICANCE:
        return f"better: {gained - lost} more of the {n} held-back cells right ({tally})"
    if lost > gained and change["p_value"] < SIGNIFICANCE:
        return (
            f"worse: {lost - gained} fewer of the {n} held-back cells right ({tally}); keep "
            "the current model, or label more cells and teach again"
        )
    return (
        f"no clear difference ({tally}); keep the current model, or label more cells and "
        "teach again"
    )
