"""The unlabelled cells a set-up collected, put to work: pseudo-labels the model is sure of.

A set-up collects hundreds of this microscope's cells and the technician labels a few
dozen. The others still say how this lab's cells look and how often each kind occurs (a
slide is mostly neutrophils; the labelled set is ten of each). Each collected cell is
classified in five views (as it is, turned by 90, 180 and 270 degrees, mirrored); a cell
keeps its class as a pseudo-label only when all five views agree and their mean
probability reaches the model's ``unidentified`` threshold (self-training with a
consistency check, as in FixMatch, Sohn et al. 2020). Before that, the probabilities are
re-weighted to this slide's mix of classes, estimated from the collected cells by EM
(Saerens et al. 2002: the model was trained on classes weighted equally, a slide is
mostly neutrophils), within a factor of four either way; the re-weighting only chooses
pseudo-labels, it never changes what the model says live. A collected cell nearer (in the
network's features) to a labelled cell of a class the lab is adding than to any other
labelled cell is left out: the model cannot name that class yet, so its confident answer
for such a cell would teach the wrong class.

Measured on BCCD's test half (docs/models.md, section G): ten labels per class alone
took the default from 0.75 to 0.74 right; with the pseudo-labelled cells, to 0.84.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from micro_app.core.models.card import ModelCard

VIEWS = 5
PRIOR_LIMIT = 4.0  # the slide's mix may re-weight a class by at most this factor


def views(images: np.ndarray) -> list[np.ndarray]:
    """The cell as it is, turned by 90, 180 and 270 degrees, and mirrored."""
    out = [images]
    out += [np.ascontiguousarray(np.rot90(images, k, axes=(1, 2))) for k in (1, 2, 3)]
    out.append(np.ascontiguousarray(images[:, :, ::-1]))
    return out


@dataclass
class PseudoLabels:
    images: np.ndarray
    labels: np.ndarray
    offered: int  # collected cells looked at (labelled ones and their copies left out)
    near_new_class: int  # left out: nearer a cell of a class being added

    def summary(self, classes: tuple[str, ...]) -> dict[str, Any]:
        counts = np.bincount(self.labels, minlength=len(classes))
        return {
            "offered": self.offered,
            "kept": len(self.labels),
            "left_out_near_new_class": self.near_new_class,
            "per_class": {c: int(n) for c, n in zip(classes, counts, strict=False) if n},
            "rule": f"all {VIEWS} views agree and their mean probability reaches the threshold",
        }


def _digest(img: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


def pseudo_label(
    model: Any,
    card: ModelCard,
    pool: np.ndarray,
    threshold: float,
    labelled: np.ndarray,
    labelled_classes: np.ndarray,
    new_classes: set[int],
    held_back: np.ndarray | None = None,
) -> PseudoLabels:
    """Pseudo-labels of ``pool`` (uint8 crops at the model input) from Keras ``model``
    (its outputs are the card's classes); ``labelled`` (with their class indices, which may
    include ``new_classes``) are the lab's labelled training cells; ``held_back`` the
    labelled cells kept to measure the result, which must never train (the pool of a
    set-up holds them too)."""
    from micro_app.training.architectures import feature_extractor
    from micro_app.training.pipeline import batch_predictor

    empty = np.zeros((0, *card.input_size, 3), np.uint8)
    taken = {_digest(x) for x in labelled}
    taken |= {_digest(x) for x in (held_back if held_back is not None else [])}
    pool = np.asarray([x for x in pool if _digest(x) not in taken]) if len(pool) else empty
    if len(pool) == 0:
        return PseudoLabels(empty, np.zeros(0, int), 0, 0)
    run = batch_predictor(model, card)
    probs = [run(v) for v in views(pool)]
    weights = mix_weights(np.mean(probs, axis=0))
    probs = [_normalise(p * weights) for p in probs]
    mean = np.mean(probs, axis=0)
    top = mean.argmax(axis=1)
    agree = np.all([p.argmax(axis=1) == top for p in probs], axis=0)
    keep = agree & (mean.max(axis=1) >= threshold)
    near_new = np.zeros(len(pool), bool)
    if new_classes and len(labelled):
        features = batch_predictor(feature_extractor(model), card)
        f_pool = _unit(features(pool))
        f_lab = _unit(features(labelled))
        nearest = labelled_classes[(f_pool @ f_lab.T).argmax(axis=1)]
        near_new = np.isin(nearest, list(new_classes))
        keep &= ~near_new
    return PseudoLabels(pool[keep], top[keep], len(pool), int(np.sum(near_new & agree)))


def mix_weights(probs: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Per class, this pool's share over the training share (equal), by EM on the model's
    probabilities (Saerens et al. 2002), clipped to ``1/PRIOR_LIMIT..PRIOR_LIMIT``."""
    n = probs.shape[1]
    train = np.full(n, 1.0 / n)
    mix = train.copy()
    for _ in range(iterations):
        q = _normalise(probs * (mix / train))
        new = q.mean(axis=0)
        if np.abs(new - mix).max() < 1e-6:
            mix = new
            break
        mix = new
    return np.clip(mix / train, 1.0 / PRIOR_LIMIT, PRIOR_LIMIT)


def _normalise(p: np.ndarray) -> np.ndarray:
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)


def _unit(f: np.ndarray) -> np.ndarray:
    f = f.reshape(len(f), -1).astype(np.float32)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
