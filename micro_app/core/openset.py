"""A flag for cells that fit no class: Mahalanobis distance on the network's own features.

The thesis is about leukaemia, and blasts, plasma cells, smudge cells and artefacts will
pass under the camera; no class of a model trained on healthy blood fits them, yet softmax
gives one of its classes anyway, often with high confidence. Following Lee et al. (2018,
"A simple unified framework for detecting out-of-distribution samples"), each cell's
penultimate-layer features (the global average pooling before the classifier) are scored
by their Mahalanobis distance to the nearest class mean, with one covariance shared by the
classes. The covariance is modelled as in probabilistic PCA: full on the leading principal
components of the training features, one shared variance on the rest, so a cell that
differs in directions the training cells never varied in still scores far, and the
covariance stays well conditioned with a few thousand cells. The threshold is a high
percentile of the validation cells' scores: known cells are flagged at about that rate,
cells unlike every class more often (docs/models.md measures
how much more, with PBC classes held out of training in turn).

Stored in the package as a plain ``openset.npz`` (read with ``allow_pickle=False``) whose
sha256 and threshold are in the card.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write
from micro_app.core.errors import ModelPackageError

OPENSET_FILE = "openset.npz"
DEFAULT_DIMS = 64
DEFAULT_PERCENTILE = 95.0  # known validation cells flagged: about 5 %
SHRINK = 0.05  # covariance shrinkage toward its diagonal mean


@dataclass(frozen=True)
class OpenSetStats:
    centre: np.ndarray  # (D,) mean feature of the training cells
    components: np.ndarray  # (k, D) principal directions
    class_means: np.ndarray  # (C, k)
    precision: np.ndarray  # (k, k) inverse of the shared, shrunk covariance
    residual_var: float  # variance per dimension outside the principal components
    threshold: float = float("inf")

    @classmethod
    def fit(
        cls, feats: np.ndarray, labels: np.ndarray, n_classes: int, dims: int = DEFAULT_DIMS
    ) -> OpenSetStats:
        feats = np.asarray(feats, np.float64).reshape(len(feats), -1)
        if len(feats) < 2 * n_classes:
            raise ValueError(f"too few cells to fit the open-set check: {len(feats)}")
        centre = feats.mean(0)
        x = feats - centre
        k = int(min(dims, x.shape[1], len(x) - 1))
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        comps = vt[:k]
        z = x @ comps.T
        rest = max(1, x.shape[1] - k)
        residual_var = float(np.mean(np.sum((x - z @ comps) ** 2, 1)) / rest) + 1e-12
        means = np.zeros((n_classes, k))
        resid = []
        for c in range(n_classes):
            zc = z[labels == c]
            if len(zc):
                means[c] = zc.mean(0)
                resid.append(zc - means[c])
        r = np.concatenate(resid)
        cov = r.T @ r / max(1, len(r) - n_classes)
        cov = (1 - SHRINK) * cov + SHRINK * np.eye(k) * np.trace(cov) / k
        present = np.array([np.any(labels == c) for c in range(n_classes)])
        means[~present] = np.inf  # a class absent from training is never the nearest
        return cls(
            centre.astype(np.float32),
            comps.astype(np.float32),
            means.astype(np.float32),
            np.linalg.inv(cov).astype(np.float32),
            residual_var,
        )

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """Distance to the nearest class mean, per cell: larger is less like any class."""
        feats = np.asarray(feats, np.float32).reshape(len(feats), -1)
        if len(feats) == 0:
            return np.zeros(0, np.float32)
        x = feats - self.centre
        z = x @ self.components.T  # (N, k)
        off = np.sum((x - z @ self.components) ** 2, 1) / self.residual_var
        d = z[:, None, :] - self.class_means[None, :, :]  # (N, C, k)
        m = np.einsum("nck,kl,ncl->nc", d, self.precision, d)
        near = np.min(np.where(np.isfinite(m), m, np.inf), 1)
        return np.sqrt(np.maximum(near + off, 0.0))

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
                    centre=self.centre,
                    components=self.components,
                    class_means=self.class_means,
                    precision=self.precision,
                    residual_var=np.array(self.residual_var, np.float64),
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
        import io

        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as d:
                stats = cls(
                    d["centre"],
                    d["components"],
                    d["class_means"],
                    d["precision"],
                    float(d["residual_var"]),
                    float(d["threshold"]),
                )
        except (ValueError, KeyError, OSError) as exc:
            raise ModelPackageError(f"{path.name} is not an open-set file ({exc})") from exc
        k, dim = stats.components.shape
        if (
            stats.centre.shape != (dim,)
            or stats.class_means.shape[1:] != (k,)
            or stats.precision.shape != (k, k)
        ):
            raise ModelPackageError(f"{path.name} has inconsistent shapes: re-copy the package")
        return stats


def card_entry(stats: OpenSetStats, path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "file": Path(path).name,
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "threshold": round(stats.threshold, 4),
        "dims": int(stats.components.shape[0]),
        "method": "Mahalanobis distance to the nearest class mean of the penultimate "
        "features (PCA, shared covariance; Lee et al. 2018)",
        **extra,
    }
