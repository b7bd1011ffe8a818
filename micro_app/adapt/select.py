"""Which collected cells to ask the technician about first: those that teach most.

With a few labels per class, the cells that teach most are the *typical* ones of each
kind the class comes in, not the odd ones: in the low-budget regime, uncertainty and
outlier-seeking selection lose to typicality (Hacohen et al. 2022, "Active learning on a
budget", TypiClust). Measured here first the other way round: a greedy k-centre walk
weighted by the model's doubt (Sener & Savarese 2018) chose mis-cropped, faint and
cut cells, and teaching them left BCCD's other cells at 0.820 right against 0.848 for
random cells (docs/models.md, section G).

So, within each suggested class, the cells are clustered on the network's features into
as many groups as labels are wanted (k-means, cosine); the grid shows first the most
typical cell of each group, the largest group first (the kinds the class comes in), then
the rest by typicality (the inverse mean distance to its nearest neighbours). The doubt
of each cell is kept for reference. Pure numpy.

Measured on BCCD's test half (``bench_adapt.py --select app``, three draws), this order
is not better than random cells either: 0.803 +- 0.043 right against 0.848 +- 0.010; the
spread between draws exceeds the differences between the rules tried (docs/models.md,
section G). It is kept for the best mean of the orders the grid could show and because a
technician confirms a run of one suggested class quickly.
"""

from __future__ import annotations

import numpy as np

NEIGHBOURS = 5
ITERATIONS = 20


def doubt(probs: np.ndarray) -> np.ndarray:
    """One minus the margin between the two most probable classes (0 sure, 1 torn)."""
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top2 = np.sort(probs, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def _unit(f: np.ndarray) -> np.ndarray:
    f = f.reshape(len(f), -1).astype(np.float64)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def typicality(features: np.ndarray) -> np.ndarray:
    """Inverse mean cosine distance to the nearest ``NEIGHBOURS`` other cells."""
    n = len(features)
    if n < 2:
        return np.ones(n)
    f = _unit(features)
    dist = np.maximum(1.0 - f @ f.T, 0.0)
    np.fill_diagonal(dist, np.inf)
    k = min(NEIGHBOURS, n - 1)
    near = np.sort(dist, axis=1)[:, :k]
    return 1.0 / (near.mean(axis=1) + 1e-6)


def kmeans(features: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Cluster labels of unit features (k-means++ seeding, cosine, a few iterations)."""
    f = _unit(features)
    n = len(f)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centres = [f[int(rng.integers(n))]]
    for _ in range(1, k):
        d = np.min([1.0 - f @ c for c in centres], axis=0).clip(0)
        p = d / d.sum() if d.sum() > 0 else np.full(n, 1 / n)
        centres.append(f[int(rng.choice(n, p=p))])
    c = np.stack(centres)
    labels = np.zeros(n, int)
    for _ in range(ITERATIONS):
        labels = (f @ c.T).argmax(axis=1)
        for j in range(k):
            members = f[labels == j]
            if len(members):
                m = members.mean(axis=0)
                c[j] = m / max(np.linalg.norm(m), 1e-12)
    return labels


def teaching_order(features: np.ndarray | None, wanted: int, seed: int = 0) -> np.ndarray:
    """Indices of one class's cells, the ones to label first first: the most typical cell
    of each of ``wanted`` clusters (largest first), then the rest by typicality."""
    if features is None or len(features) == 0:
        return np.zeros(0, int)
    typ = typicality(features)
    groups = kmeans(features, wanted, seed)
    sizes = np.bincount(groups)
    first = [
        int(np.flatnonzero(groups == g)[np.argmax(typ[groups == g])])
        for g in np.argsort(-sizes, kind="stable")
        if sizes[g]
    ]
    rest = [int(i) for i in np.argsort(-typ, kind="stable") if i not in set(first)]
    return np.array(first + rest, int)


def grid_order(
    probs: np.ndarray, features: np.ndarray | None, wanted: int, seed: int = 0
) -> np.ndarray:
    """The set-up grid's order of all cells: grouped by suggested class (in class order),
    within a class ``teaching_order``; without features, the surest first."""
    top = probs.argmax(axis=1)
    out: list[int] = []
    for c in range(probs.shape[1]):
        idx = np.flatnonzero(top == c)
        if not len(idx):
            continue
        if features is None:
            out += idx[np.argsort(-probs[idx, c], kind="stable")].tolist()
        else:
            out += idx[teaching_order(features[idx], wanted, seed)].tolist()
    return np.array(out, int)
