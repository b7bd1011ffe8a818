"""Run converted weights of a package: ONNX (onnxruntime) and TFLite (LiteRT).

Each runner is a callable ``float32 (N, H, W, 3) -> float32 (N, outputs)``, taking the same
input as the Keras model (after the card's preprocessing). onnxruntime is an optional
dependency (``pip install -e ".[export]"``); TFLite runs on ``ai_edge_litert`` when it is
installed, else on TensorFlow's own interpreter.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.errors import ModelPackageError
from micro_app.core.models.card import ModelCard
from micro_app.core.models.package import verify_weights

BACKENDS = ("keras", "onnx", "onnx_int8", "tflite", "tflite_int8")


class OnnxRunner:
    def __init__(self, path: Path, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelPackageError(
                'onnxruntime is not installed: run pip install -e ".[export]" to use ONNX weights'
            ) from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self._session.run(None, {self._input: np.ascontiguousarray(x, np.float32)})
        return np.asarray(out[0], np.float32)


class TfliteRunner:
    def __init__(self, path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TF's interpreter warns that it is deprecated
            self._interp: Any = Interpreter(model_path=str(path))
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._batch = -1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        if len(x) != self._batch:
            self._interp.resize_tensor_input(self._in, x.shape, strict=False)
            self._interp.allocate_tensors()
            self._batch = len(x)
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out), np.float32)


def open_runner(folder: Path, card: ModelCard, backend: str) -> Any:
    """The runner for the package's ``backend`` weights, after checking their sha256."""
    if backend not in BACKENDS or backend == "keras":
        raise ModelPackageError(f"backend must be one of {BACKENDS[1:]}, got {backend!r}")
    if backend not in card.weights:
        raise ModelPackageError(
            f"{folder} has no {backend} weights: run micro-app export {folder} --to "
            f"{backend.split('_')[0]}{' --quantize' if backend.endswith('int8') else ''}"
        )
    path = verify_weights(folder, card, backend)
    return OnnxRunner(path) if backend.startswith("onnx") else TfliteRunner(path)
