"""A flag for cells that fit no class: the energy score of the network's own logits.

The thesis is about leukaemia, and blasts, plasma cells, smudge cells and artefacts will
pass under the camera; no class of a model trained on healthy blood fits them, yet softmax
gives one of its classes anyway, often with high confidence. Each cell's penultimate-layer
features (the global average pooling before the classifier) are turned back into the
classifier's logits, and the cell is scored by its energy, minus the log-sum-exp of the
logits (Liu et al. 2020, "Energy-based out-of-distribution detection"): a cell that
excites no class strongly scores high. The threshold is a high percentile of the
validation cells' scores: known cells are flagged at about that rate, cells unlike every
class more often. ``docs/models.md`` measures how much more, with PBC classes held out of
training in turn, and why this replaced a Mahalanobis distance on the same features (it
scored a held-out class *nearer* than the known cells: ROC AUC 0.36 against 0.95).

Stored in the package as a plain ``openset.npz`` (read with ``allow_pickle=False``): the
classifier layer's kernel and bias, so the score needs only the features every runtime
already returns, and the threshold; its sha256 and threshold are in the card.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write
from micro_app.core.errors import ModelPackageError

OPENSET_FILE = "openset.npz"
DEFAULT_PERCENTILE = 95.0  # known validation cells flagged: about 5 %
METHOD = "energy score: minus the log-sum-exp of the logits (Liu et al. 2020)"


@dataclass(frozen=True)
class OpenSetStats:
    kernel: np.ndarray  # (D, C) the classifier layer's weights: features -> logits
    bias: np.ndarray  # (C,)
    threshold: float = float("inf")

    def __post_init__(self) -> None:
        if self.kernel.ndim != 2 or self.bias.shape != (self.kernel.shape[1],):
            raise ValueError(f"kernel {self.kernel.shape} and bias {self.bias.shape} differ")

    @classmethod
    def from_head(cls, kernel: np.ndarray, bias: np.ndarray) -> OpenSetStats:
        """The check of a classifier layer ``logits = features @ kernel + bias``."""
        return cls(np.asarray(kernel, np.float32), np.asarray(bias, np.float32))

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """Energy per cell: larger is less like any class."""
        feats = np.asarray(feats, np.float32).reshape(len(feats), -1)
        if len(feats) == 0:
            return np.zeros(0, np.float32)
        if feats.shape[1] != self.kernel.shape[0]:
            raise ValueError(f"{feats.shape[1]} features, the check expects {self.kernel.shape[0]}")
        logits = feats @ self.kernel + self.bias
        top = logits.max(1)
        return -(top + np.log(np.exp(logits - top[:, None]).sum(1)))

    def with_threshold(self, validation_feats: np.ndarray, percentile: float) -> OpenSetStats:
        t = float(np.percentile(self.scores(validation_feats), percentile))
        return replace(self, threshold=t)

    def flags(self, feats: np.ndarray) -> np.ndarray:
        return self.scores(feats) > self.threshold

    # -- in the package ------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    kernel=self.kernel,
                    bias=self.bias,
                    threshold=np.array(self.threshold, np.float64),
                )

        return atomic_write(Path(path), write)

    @classmethod
    def load(cls, path: Path, sha256: str | None = None) -> OpenSetStats:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelPackageError(f"{path} cannot be read ({exc}): re-copy the package") from exc
        if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
            raise ModelPackageError(f"{path.name} does not match the card: re-copy the package")
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as d:
                if "kernel" not in d.files and "class_means" in d.files:
                    raise ModelPackageError(
                        f"{path.name} holds the first version of the open-set check: "
                        "re-fit it with benchmarks/refit_open_set.py or retrain the model"
                    )
                return cls(d["kernel"], d["bias"], float(d["threshold"]))
        except (ValueError, KeyError, OSError) as exc:
            raise ModelPackageError(f"{path.name} is not an open-set file ({exc})") from exc


def card_entry(stats: OpenSetStats, path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "file": Path(path).name,
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "threshold": round(stats.threshold, 4),
        "method": METHOD,
        **extra,
    }
