"""Classification metrics in numpy, from true labels and predicted probabilities.

Accuracy; per-class precision, recall (sensitivity), specificity, F1 and one-vs-rest ROC
AUC; macro and weighted averages; the confusion matrix (rows: true class, columns:
predicted); expected calibration error (15 equal-width confidence bins); and the share of
cells whose top probability is under the ``unidentified`` threshold with the accuracy on
the others.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

ECE_BINS = 15


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), int)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties averaged); None with one class only."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_calibration_error(
    probs: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS
) -> float:
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(ece)


def _div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def classification_report(
    y_true: np.ndarray, probs: np.ndarray, classes: tuple[str, ...] | list[str], threshold: float
) -> dict[str, Any]:
    y_true = np.asarray(y_true, int)
    probs = np.asarray(probs, np.float64)
    n_cls = len(classes)
    if probs.ndim != 2 or probs.shape != (len(y_true), n_cls):
        raise ValueError(f"probabilities {probs.shape} do not match {len(y_true)} x {n_cls}")
    n = len(y_true)
    y_pred = probs.argmax(axis=1) if n else np.zeros(0, int)
    cm = confusion(y_true, y_pred, n_cls)
    per_class: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(classes):
        tp = cm[k, k]
        fp = cm[:, k].sum() - tp
        fn = cm[k, :].sum() - tp
        tn = n - tp - fp - fn
        precision, recall = _div(tp, tp + fp), _div(tp, tp + fn)
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "specificity": _div(tn, tn + fp),
            "f1": _div(2 * precision * recall, precision + recall),
            "support": int(cm[k, :].sum()),
            "roc_auc": roc_auc(probs[:, k], y_true == k) if n else None,
        }
    support = np.array([per_class[c]["support"] for c in classes], float)
    averages: dict[str, dict[str, float]] = {"macro": {}, "weighted": {}}
    for key in ("precision", "recall", "specificity", "f1"):
        vals = np.array([per_class[c][key] for c in classes])
        averages["macro"][key] = float(vals.mean())
        averages["weighted"][key] = _div(float((vals * support).sum()), float(support.sum()))
    aucs = [per_class[c]["roc_auc"] for c in classes if per_class[c]["roc_auc"] is not None]
    conf = probs.max(axis=1) if n else np.zeros(0)
    above = conf >= threshold
    return {
        "n_images": n,
        "classes": list(classes),
        "accuracy": _div(float((y_pred == y_true).sum()), n),
        "macro_f1": averages["macro"]["f1"],
        "weighted_f1": averages["weighted"]["f1"],
        "macro": averages["macro"],
        "weighted": averages["weighted"],
        "roc_auc_macro": float(np.mean(aucs)) if aucs else None,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "ece": expected_calibration_error(probs, y_true) if n else 0.0,
        "unidentified": {
            "threshold": threshold,
            "share_below": _div(float((~above).sum()), n),
            "accuracy_on_rest": _div(float((y_pred[above] == y_true[above]).sum()), above.sum()),
            "n_rest": int(above.sum()),
        },
    }
