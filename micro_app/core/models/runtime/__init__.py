"""Where a model runs: one small runner protocol, one module per backend.

``open_runner(package, backend)`` checks the sha256 of the weights it is about to run and
returns a callable ``runner(batch) -> (probabilities, features or None)`` with ``device``
(what it runs on, for the status bar, sidecars and ``bench``) and ``backend``. TensorFlow
is imported only by the TensorFlow runner: a package run on ONNX Runtime starts in well
under a second. ``auto`` on a computer without a GPU runs the package's 8-bit weights
(``models/int8.py``) when they passed their check, FP32 ONNX otherwise."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from micro_app.core.errors import ModelPackageError
from micro_app.core.models.runtime.names import (
    AUTO,
    BACKENDS,
    FORMATS,
    ONNX,
    ONNX_INT8,
    TENSORFLOW,
    canonical,
)

__all__ = [
    "AUTO",
    "BACKENDS",
    "FORMATS",
    "ONNX",
    "ONNX_INT8",
    "TENSORFLOW",
    "Runner",
    "canonical",
    "open_runner",
    "resolve",
]


class Runner(Protocol):
    @property
    def backend(self) -> str: ...

    @property
    def device(self) -> str: ...

    @property
    def gives_features(self) -> bool: ...

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def resolve(card: Any, backend: str = AUTO) -> str:
    """The backend ``backend`` means for this card: ``auto`` is ONNX Runtime when the
    package has ONNX weights, it can run them (no classical head) and onnxruntime is
    installed (its 8-bit weights when they are usable and this onnxruntime has no GPU
    device), else TensorFlow."""
    from micro_app.core.models import int8

    backend = canonical(backend)
    if backend not in BACKENDS and backend not in FORMATS:
        raise ModelPackageError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != AUTO:
        return backend
    if ONNX in card.weights and "classical" not in card.weights and onnxruntime_installed():
        from micro_app.core.models.runtime.onnx_runtime import has_gpu_device

        return ONNX_INT8 if int8.usable(card) and not has_gpu_device() else ONNX
    return TENSORFLOW


def open_runner(
    package: Any,
    backend: str = AUTO,
    *,
    on_message: Callable[[str], None] | None = None,
    providers: list[str] | None = None,
) -> Runner:
    """The runner for ``package`` (a ``ModelPackage``; its Keras model is loaded only for
    TensorFlow). Features come along when the card has an open-set check and the weights
    give them."""
    from micro_app.core.models.package import verify_weights

    card = package.card
    chosen = resolve(card, backend)
    features = "open_set" in card.extra and package.head is None
    if chosen == TENSORFLOW:
        from micro_app.core.models.runtime.tf_runtime import TensorFlowRunner

        return TensorFlowRunner(package.keras_model(), card.input_size, features, on_message)
    if chosen not in card.weights:
        fmt = chosen.split("_")[0]
        quant = " --quantize" if chosen.endswith("int8") else ""
        raise ModelPackageError(
            f"{package.path} has no {chosen} weights: run micro-app export {package.path} "
            f"--to {fmt}{quant}"
        )
    if chosen.startswith("onnx"):
        from micro_app.core.models.runtime.onnx_runtime import OnnxRunner

        path = verify_weights(package.path, card, chosen)
        return OnnxRunner(path, providers=providers, on_message=on_message, backend=chosen)
    path = verify_weights(package.path, card, chosen)
    from micro_app.core.models.runtime.tflite_runtime import TfliteRunner

    return TfliteRunner(path)
