"""Classical classifier heads on CNN features, stored without pickle and run in numpy.

A head is one ``.npz`` file read with ``allow_pickle=False`` (loading cannot run code):
a ``meta`` entry (UTF-8 JSON: kind, classes, parameters) and plain arrays. Features are
standardised with the stored mean and scale, then:

- ``svm``: libsvm's one-vs-one support vector machine (kernels ``linear``, ``rbf``
  (Gaussian), ``poly`` (cubic with degree 3)) with its Platt-scaled pairwise
  probabilities coupled as libsvm does (Wu, Lin and Weng 2004), so the probabilities equal
  scikit-learn's ``SVC(probability=True).predict_proba``;
- ``knn``: nearest neighbour (k = 1) in Euclidean distance, one-hot probabilities;
- ``lda``: linear discriminant analysis, softmax (sigmoid for two classes) of the
  linear decision function;
- ``tree``: a decision tree, the class fractions of the leaf reached.

Converting a fitted scikit-learn model into a head lives in ``micro_app.training.classical``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.errors import ModelPackageError

HEAD_FORMAT = "micro_app.classical_head"
HEAD_VERSION = 1
KINDS = ("svm", "knn", "lda", "tree")
SVM_KERNELS = ("linear", "rbf", "poly")
_ARRAYS = {
    "svm": ("support_vectors", "dual_coef", "intercept", "n_support", "prob_a", "prob_b"),
    "knn": ("points", "labels"),
    "lda": ("coef", "intercept"),
    "tree": ("left", "right", "feature", "threshold", "value"),
}


@dataclass
class ClassicalHead:
    kind: str
    classes: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    arrays: dict[str, np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ModelPackageError(
                f"classical head kind must be one of {KINDS}, got {self.kind!r}"
            )
        missing = [k for k in _ARRAYS[self.kind] if k not in self.arrays]
        if missing:
            raise ModelPackageError(
                f"classical {self.kind} head lacks arrays {missing}: re-train it"
            )
        if self.mean.shape != self.scale.shape or self.mean.ndim != 1:
            raise ModelPackageError(
                f"classical head mean {self.mean.shape} and scale {self.scale.shape} differ"
            )
        if len(self.classes) < 2:
            raise ModelPackageError(f"classical head needs 2+ classes, got {list(self.classes)}")
        if self.kind == "svm" and self.params.get("kernel") not in SVM_KERNELS:
            raise ModelPackageError(
                f"svm kernel must be one of {SVM_KERNELS}, got {self.params.get('kernel')!r}"
            )

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def name(self) -> str:
        if self.kind == "svm":
            kernel = {"linear": "linear", "rbf": "gaussian", "poly": "cubic"}[self.params["kernel"]]
            return f"svm_{kernel}"
        return {"knn": "knn1", "lda": "lda", "tree": "tree"}[self.kind]

    # -- prediction -------------------------------------------------------------------
    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """``(N, n_features)`` -> ``(N, n_classes)`` float32 probabilities."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"classical head takes (N, {self.n_features}) features, got shape {x.shape}"
            )
        n_cls = len(self.classes)
        if len(x) == 0:
            return np.zeros((0, n_cls), np.float32)
        x = (x - self.mean) / self.scale
        fn = {"svm": self._svm, "knn": self._knn, "lda": self._lda, "tree": self._tree}[self.kind]
        return np.asarray(fn(x), np.float32)

    def _kernel(self, x: np.ndarray, sv: np.ndarray) -> np.ndarray:
        kernel = self.params["kernel"]
        dot = x @ sv.T
        if kernel == "linear":
            return dot
        gamma = float(self.params["gamma"])
        if kernel == "rbf":
            d2 = (x * x).sum(1)[:, None] - 2 * dot + (sv * sv).sum(1)[None, :]
            return np.exp(-gamma * np.maximum(d2, 0.0))
        return (gamma * dot + float(self.params["coef0"])) ** int(self.params["degree"])

    def _svm(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        k_mat = self._kernel(x, a["support_vectors"])
        n_sv = a["n_support"].astype(int)
        start = np.concatenate([[0], np.cumsum(n_sv)[:-1]])
        coef = a["dual_coef"]
        n_cls = len(self.classes)
        r = np.zeros((len(x), n_cls, n_cls))
        p = 0
        for i in range(n_cls):
            for j in range(i + 1, n_cls):
                si, sj = start[i], start[j]
                ci, cj = n_sv[i], n_sv[j]
                dec = (
                    k_mat[:, si : si + ci] @ coef[j - 1, si : si + ci]
                    + k_mat[:, sj : sj + cj] @ coef[i, sj : sj + cj]
                    + a["intercept"][p]
                )
                f_ab = dec * a["prob_a"][p] + a["prob_b"][p]
                prob = np.where(
                    f_ab >= 0, np.exp(-f_ab) / (1 + np.exp(-f_ab)), 1 / (1 + np.exp(f_ab))
                )
                prob = np.clip(prob, 1e-7, 1 - 1e-7)
                r[:, i, j] = prob
                r[:, j, i] = 1 - prob
                p += 1
        return _couple(r)  # also for two classes, as scikit-learn's libsvm does

    def _knn(self, x: np.ndarray) -> np.ndarray:
        pts = self.arrays["points"]
        d2 = (x * x).sum(1)[:, None] - 2 * x @ pts.T + (pts * pts).sum(1)[None, :]
        nearest = self.arrays["labels"].astype(int)[np.argmin(d2, axis=1)]
        return np.eye(len(self.classes))[nearest]

    def _lda(self, x: np.ndarray) -> np.ndarray:
        d = x @ self.arrays["coef"].T + self.arrays["intercept"]
        if d.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-d[:, 0]))
            return np.stack([1 - p1, p1], axis=1)
        d = d - d.max(axis=1, keepdims=True)
        e = np.exp(d)
        return e / e.sum(axis=1, keepdims=True)

    def _tree(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        left, right = a["left"].astype(int), a["right"].astype(int)
        feature, threshold = a["feature"].astype(int), a["threshold"]
        x32 = x.astype(np.float32)  # scikit-learn compares float32 features
        node = np.zeros(len(x), int)
        rows = np.arange(len(x))
        for _ in range(len(left)):
            inner = left[node] >= 0
            if not inner.any():
                break
            go_left = x32[rows, np.maximum(feature[node], 0)] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        value = a["value"][node]
        return value / np.maximum(value.sum(axis=1, keepdims=True), 1e-12)

    # -- storage ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        meta = {
            "format": HEAD_FORMAT,
            "version": HEAD_VERSION,
            "kind": self.kind,
            "classes": list(self.classes),
            "params": self.params,
        }
        arrays: dict[str, Any] = {f"a_{k}": np.asarray(v) for k, v in self.arrays.items()}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
        arrays["mean"], arrays["scale"] = self.mean, self.scale
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    def save(self, path: Path) -> Path:
        Path(path).write_bytes(self.to_bytes())
        return Path(path)


def load_head(path: Path) -> ClassicalHead:
    """Read a head written by ``ClassicalHead.save``; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            arrays = {k[2:]: data[k] for k in data.files if k.startswith("a_")}
            mean, scale = data["mean"], data["scale"]
    except (OSError, ValueError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelPackageError(
            f"cannot read classical head {Path(path).name} ({exc}): re-train the model"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != HEAD_FORMAT:
        raise ModelPackageError(f"{Path(path).name} is not a micro_app classical head")
    if meta.get("version") != HEAD_VERSION:
        raise ModelPackageError(
            f"classical head version {meta.get('version')} is not supported: update micro_app"
        )
    return ClassicalHead(
        kind=str(meta.get("kind")),
        classes=tuple(str(c) for c in meta.get("classes", [])),
        mean=mean.astype(np.float64),
        scale=scale.astype(np.float64),
        arrays=arrays,
        params=dict(meta.get("params", {})),
    )


def _couple(r: np.ndarray) -> np.ndarray:
    """libsvm's ``multiclass_probability`` for a batch of pairwise matrices ``(N, k, k)``."""
    n, k, _ = r.shape
    q = -r.transpose(0, 2, 1) * r  # Q[t][j] = -r[j][t] * r[t][j]
    diag = (r.transpose(0, 2, 1) ** 2).sum(axis=2) - np.einsum("nii->ni", r) ** 2
    idx = np.arange(k)
    q[:, idx, idx] = diag
    p = np.full((n, k), 1.0 / k)
    eps = 0.005 / k
    active = np.ones(n, bool)
    for _ in range(max(100, k)):
        qp = np.einsum("ntj,nj->nt", q, p)
        pqp = (p * qp).sum(axis=1)
        active &= np.abs(qp - pqp[:, None]).max(axis=1) >= eps
        if not active.any():
            break
        for t in range(k):
            diff = np.where(active, (-qp[:, t] + pqp) / q[:, t, t], 0.0)
            p[:, t] += diff
            pqp = (pqp + diff * (diff * q[:, t, t] + 2 * qp[:, t])) / (1 + diff) / (1 + diff)
            qp = (qp + diff[:, None] * q[:, t, :]) / (1 + diff)[:, None]
            p = p / (1 + diff)[:, None]
    return p
