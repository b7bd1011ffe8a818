"""A sample of a model's own training cells, carried in its package (``replay.npz``).

Fine-tuning on a lab's few corrected cells alone would make the network forget the rest
of what it learned; mixing in some of its original training cells ("replay") prevents
that. Lab machines do not have the training dataset, so a package carries a small sample
of its training split: JPEG-encoded crops (quality 95, no chroma subsampling) at the
model's input size, their class indices and the class names, in a plain ``.npz`` read with
``allow_pickle=False`` (no code can run on load). ``micro-app train`` writes it; a package
whose data licence forbids sharing images is trained with ``--replay-per-class 0``.

    python -m micro_app.training.replay_tool MODEL DATASET   # add one to an older package
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app.core.atomic import atomic_write
from micro_app.core.confine import inside
from micro_app.core.errors import ModelPackageError
from micro_app.core.models.card import ModelCard
from micro_app.core.models.package import sha256_file

REPLAY_FILE = "replay.npz"
DEFAULT_PER_CLASS = 32
# Quality 95 without chroma subsampling: the default model's top-class accuracy on its own
# replay crops is 0.961 raw, 0.961 stored so (1.8 MB for 256 crops), but 0.902 with JPEG's
# usual 4:2:0 chroma subsampling (1.4 MB): the stain's colour edges carry the class.
JPEG_PARAMS = [
    cv2.IMWRITE_JPEG_QUALITY,
    95,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
]


@dataclass(frozen=True)
class ReplaySet:
    images: np.ndarray  # uint8 (N, H, W, 3) RGB at the model's input size
    labels: np.ndarray  # int (N,), indices into ``classes``
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"replay images must be uint8 (N, H, W, 3), got {self.images.shape}")
        if len(self.labels) != len(self.images):
            raise ValueError("replay labels and images differ in number")
        if len(self.labels) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < len(
            self.classes
        ):
            raise ValueError("replay labels point outside its classes")

    def __len__(self) -> int:
        return len(self.images)

    def counts(self) -> dict[str, int]:
        n = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, n, strict=True)}

    def save(self, path: Path) -> Path:
        blobs = []
        for img in self.images:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), JPEG_PARAMS)
            if not ok:
                raise ModelPackageError("could not encode a replay image as JPEG")
            blobs.append(buf.ravel())
        offsets = np.cumsum([0, *[len(b) for b in blobs]]).astype(np.int64)
        data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)

        def write(tmp: Path) -> None:
            out = io.BytesIO()
            np.savez(
                out,
                jpeg=data,
                offsets=offsets,
                labels=self.labels.astype(np.int32),
                classes=np.array(self.classes, dtype=str),
                size=np.array(self.images.shape[1:3], np.int32),
            )
            tmp.write_bytes(out.getvalue())

        return atomic_write(Path(path), write)

    @classmethod
    def load(cls, path: Path, keep: np.ndarray | None = None) -> ReplaySet:
        """The set in ``path``; ``keep``: only these cells, in this order (decoding all
        335 of the default's takes about 0.1 s)."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                data, offsets = z["jpeg"], z["offsets"]
                labels, classes, size = z["labels"], z["classes"], z["size"]
        except (OSError, KeyError, ValueError) as exc:
            raise ModelPackageError(
                f"{path} is not a replay set ({exc}): re-copy the model package"
            ) from exc
        h, w = int(size[0]), int(size[1])
        order = np.arange(len(labels)) if keep is None else np.asarray(keep, int)
        if len(order) and not 0 <= int(order.min()) <= int(order.max()) < len(labels):
            raise ModelPackageError(f"{path} has no cell {int(order.max())}: re-copy the package")
        images = np.empty((len(order), h, w, 3), np.uint8)
        for j, i in enumerate(order):
            img = cv2.imdecode(data[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR)
            if img is None or img.shape[:2] != (h, w):
                raise ModelPackageError(f"{path} holds a broken image: re-copy the model package")
            images[j] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return cls(images, labels[order].astype(int), tuple(str(c) for c in classes))


def pick(labels: np.ndarray, n_classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``per_class`` items of each class, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == k))[:per_class] for k in range(n_classes)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)


def sample(
    images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], per_class: int, seed: int
) -> ReplaySet:
    """At most ``per_class`` images of each class, drawn with ``seed``."""
    keep = pick(labels, len(classes), per_class, seed)
    return ReplaySet(np.ascontiguousarray(images[keep]), labels[keep].astype(int), classes)


def replay_entry(replay: ReplaySet, path: Path, source: str) -> dict[str, Any]:
    """What the card says about its replay file (``card.extra["replay"]``)."""
    return {
        "file": REPLAY_FILE,
        "sha256": sha256_file(path),
        "cells": len(replay),
        "per_class": replay.counts(),
        "source": source,
    }


def load_replay(folder: Path, card: ModelCard, keep: np.ndarray | None = None) -> ReplaySet | None:
    """The package's replay set after checking its sha256, or None when it has none;
    ``keep``: only these cells (``ReplaySet.load``)."""
    entry = card.extra.get("replay")
    if not entry:
        return None
    path = inside(Path(folder), entry.get("file", REPLAY_FILE), "the card's replay set")
    if not path.is_file():
        raise ModelPackageError(f"{path} is missing: copy the whole package folder")
    if sha256_file(path) != entry.get("sha256"):
        raise ModelPackageError(
            f"{path.name} does not match the card's sha256: re-copy the model package"
        )
    replay = ReplaySet.load(path, keep)
    if replay.classes != card.classes:
        raise ModelPackageError(
            f"the replay set's classes {list(replay.classes)} differ from the card's: "
            "re-copy the model package"
        )
    return replay
