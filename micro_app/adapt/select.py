"""Which collected cells to ask the technician about first: those that teach most.

Ten easy neutrophils teach a model little; ten that differ from each other and that the
model hesitates on teach it much more. The order is a greedy k-centre walk over the
network's features (Sener & Savarese 2018, "core-set" selection): each next cell is the
one farthest (cosine distance) from every cell already chosen, its distance weighted up
by the model's doubt about it (one minus the margin between its two most probable
classes), starting from the most doubtful cell. The set-up grid shows each suggested
class's cells in this order, so the first ten of a class a technician confirms cover
that class and its borders. Pure numpy.
"""

from __future__ import annotations

import numpy as np

DOUBT_WEIGHT = 1.0  # score = distance * (1 + weight * doubt)


def doubt(probs: np.ndarray) -> np.ndarray:
    """One minus the margin between the two most probable classes (0 sure, 1 torn)."""
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top2 = np.sort(probs, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def teaching_order(probs: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
    """Indices of all cells, the most informative first."""
    n = len(probs)
    if n == 0:
        return np.zeros(0, int)
    d = doubt(probs)
    if features is None or len(features) != n:
        return np.argsort(-d, kind="stable")
    f = features.reshape(n, -1).astype(np.float64)
    f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    weight = 1.0 + DOUBT_WEIGHT * d
    first = int(np.argmax(d))
    order = [first]
    chosen = np.zeros(n, bool)
    chosen[first] = True
    dist = 1.0 - f @ f[first]
    while len(order) < n:
        score = np.where(chosen, -np.inf, np.maximum(dist, 0.0) * weight)
        nxt = int(np.argmax(score))
        order.append(nxt)
        chosen[nxt] = True
        dist = np.minimum(dist, 1.0 - f @ f[nxt])
    return np.array(order)


def rank(probs: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
    """Each cell's position in ``teaching_order`` (0: ask first)."""
    order = teaching_order(probs, features)
    out = np.empty(len(order), int)
    out[order] = np.arange(len(order))
    return out
